"""Webhook signatures, Stripe's scheme (docs/api.md, "Payment webhooks"), which the carrier API shares.

    Stripe-Signature (or Carrier-Signature): t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>[,v1=...]

The HMAC covers the raw body exactly as received: never verify a re-serialised JSON document.
Several v1 values may appear (Stripe signs with every active secret while one is being rolled), and
we may hold several secrets ourselves for the same reason: any secret matching any v1 accepts.
The timestamp is signed too; a window of TOLERANCE_SECONDS either side of our clock stops replays.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterable

TOLERANCE_SECONDS = 300
SCHEME = "v1"
_HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_HEADER_LENGTH = 4096  # a handful of signatures; anything longer is not a signature header


class InvalidSignature(ValueError):
    """The request is not provably from the provider: missing, malformed, stale or wrong signature."""


def compute(payload: bytes, secret: str, timestamp: int) -> str:
    signed = str(timestamp).encode("ascii") + b"." + payload
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The signature header value a sender holding `secret` sends with `payload`."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},{SCHEME}={compute(payload, secret, t)}"


def parse_secrets(value: str) -> list[str]:
    """A stored secret value may hold several secrets (rotation), separated by commas or whitespace."""
    return [s for s in re.split(r"[\s,]+", value) if s]


def verify(
    payload: bytes,
    header: str | None,
    secrets: str | Iterable[str],
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> int:
    """Return the signed timestamp if `header` proves `payload` came from a holder of one of `secrets`;
    raise InvalidSignature otherwise."""
    timestamp, signatures = _parse(header)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise InvalidSignature("timestamp outside the tolerance window")
    candidates = [secrets] if isinstance(secrets, str) else list(secrets)
    if not candidates:
        raise InvalidSignature("no webhook secret configured")
    matched = False
    # Compare against every pair without stopping early: timing reveals neither which nor how many matched.
    for secret in candidates:
        expected = compute(payload, secret, timestamp).encode("ascii")
        for signature in signatures:
            matched |= hmac.compare_digest(expected, signature.encode("ascii"))
    if not matched:
        raise InvalidSignature("no signature matches the payload")
    return timestamp


def _parse(header: str | None) -> tuple[int, list[str]]:
    if not header:
        raise InvalidSignature("missing signature header")
    if len(header) > MAX_HEADER_LENGTH or not header.isascii():
        raise InvalidSignature("malformed signature header")
    timestamps: list[str] = []
    signatures: list[str] = []
    for element in header.split(","):
        name, separator, value = element.strip().partition("=")
        if not separator:
            raise InvalidSignature("malformed signature header")
        if name == "t":
            timestamps.append(value)
        elif name == SCHEME and _HEX_SHA256.match(value):
            signatures.append(value)
        # Other schemes (v0 is Stripe's test-mode scheme) and unknown elements are ignored, as Stripe says.
    if len(timestamps) != 1 or not timestamps[0].isdigit() or len(timestamps[0]) > 12:
        raise InvalidSignature("malformed signature header: no single timestamp")
    if not signatures:
        raise InvalidSignature(f"no {SCHEME} signature in the signature header")
    return int(timestamps[0]), signatures
