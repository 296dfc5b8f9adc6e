"""Where moto differs from AWS in ways that would make local results wrong, and the fix for each.

DynamoDB: moto's backend is not thread-safe. Under concurrent TransactWriteItems it let conditional
decrements both succeed (measured: 103 successful reservations for 100 units) and returned 500s.
Real DynamoDB serialises conflicting writes (TransactionConflict), so the fix is to serialise moto's
DynamoDB request handling. The lock is re-entrant because moto can handle a DynamoDB call while
handling another (Step Functions' dynamodb:* tasks); one lock over the whole server deadlocks there.
tests/integration/test_local_cloud.py::test_concurrent_conditional_writes_never_oversell fails without it:
rerun it with LOCAL_CLOUD_UNSAFE_DYNAMODB=1 to see the flaw.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Any

_dynamodb_lock = threading.RLock()


def serialize_dynamodb() -> None:
    if os.environ.get("LOCAL_CLOUD_UNSAFE_DYNAMODB") == "1":
        return
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action
    if getattr(original, "_local_cloud", False):
        return

    @functools.wraps(original)
    def call_action(self: Any) -> Any:
        with _dynamodb_lock:
            return original(self)

    call_action._local_cloud = True  # type: ignore[attr-defined]
    DynamoHandler.call_action = call_action  # type: ignore[method-assign]

