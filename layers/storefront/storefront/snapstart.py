"""Lambda SnapStart's runtime hooks: what a function restored from a snapshot must not share with its other copies.

With SnapStart (template.yaml, docs/architecture.md "Cold starts") Lambda runs a function version's init once, when
the version is published, snapshots the memory, and starts every new execution environment from that snapshot,
hours or days later. What init left in memory is then the same in every copy, and as old as the snapshot. After each
restore this module therefore:
- reseeds `random` from the operating system: every copy would otherwise draw the same "random" jitter
  (storefront.dynamodb.backoff, the carrier's and the cart's retries), and retries meant to spread out would
  collide again, in step, on the hot item they retry;
- clears Powertools' parameter caches (storefront.secrets): a secret cached before the snapshot may have been
  rotated since. (Init reads no secret today; this keeps it so if one ever does.)
Before the snapshot it runs what `prime` was given: imports and clients deferred so that a plain cold start, or a
function that rarely needs them, does not pay for them (the Stripe SDK, storefront.aws.LazyClient), but which a
restored copy should already hold.

Not needed: boto3 clients made at init fetch their credentials from the container credentials endpoint under
SnapStart, and refresh them; their connection pools are empty (init calls nothing) and urllib3 reconnects anyway.
Powertools' cold-start flag is still set in the snapshot, so each restored copy counts one ColdStart.

The hooks come from `snapshot_restore_py`, which the Lambda Python runtime (3.12+) provides; anywhere else (tests,
the local cloud) there is no snapshot and nothing registers. In the runtime, a function without SnapStart simply
never runs them.
"""

from __future__ import annotations

import importlib
import random
import sys
from collections.abc import Callable
from typing import Any

try:
    from snapshot_restore_py import register_after_restore, register_before_snapshot
except ImportError:  # not the Lambda runtime: no snapshot is ever taken
    register_after_restore = register_before_snapshot = None

_to_prime: list[str | Callable[[], Any]] = []


def prime(*steps: str | Callable[[], Any]) -> None:
    """Before the snapshot is taken, import these modules (names) or call these (plain cold starts do neither)."""
    _to_prime.extend(step for step in steps if step not in _to_prime)


def before_snapshot() -> None:
    for step in _to_prime:
        if isinstance(step, str):
            importlib.import_module(step)
        else:
            step()


def after_restore() -> None:
    random.seed()  # from os.urandom: each restored copy its own sequence
    parameters = sys.modules.get("aws_lambda_powertools.utilities.parameters")
    if parameters is not None:  # nothing was ever cached if the utility was never imported
        parameters.clear_caches()


if register_before_snapshot is not None and register_after_restore is not None:
    register_before_snapshot(before_snapshot)
    register_after_restore(after_restore)
