"""Opaque, tamper-proof cursors for list endpoints.

A cursor is `<payload>.<mac>`, both base64url: the payload holds the DynamoDB key to resume from and
the filter it was issued for; the mac is HMAC-SHA256 over the payload with a secret the client never
sees. A cursor that was edited, truncated, forged or issued for another filter is rejected as
`invalid_cursor` (400) before it gets anywhere near DynamoDB.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable
from functools import cached_property

from storefront.errors import InvalidCursor

MAX_CURSOR_LENGTH = 1024
_MAC_BYTES = 16


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    """Signs and verifies cursors. The secret is fetched on first use only (most requests need none)."""

    def __init__(self, secret_provider: Callable[[], str]) -> None:
        self._secret_provider = secret_provider

    @cached_property
    def _key(self) -> bytes:
        return self._secret_provider().encode("utf-8")

    def _mac(self, payload: str) -> str:
        digest = hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest()
        return _b64encode(digest[:_MAC_BYTES])

    def encode(self, key: dict[str, str], scope: str) -> str:
        payload = _b64encode(json.dumps({"k": key, "s": scope}, separators=(",", ":"), sort_keys=True).encode())
        return f"{payload}.{self._mac(payload)}"

    def decode(self, cursor: str, scope: str) -> dict[str, str]:
        if len(cursor) > MAX_CURSOR_LENGTH or cursor.count(".") != 1:
            raise InvalidCursor("The cursor is not one this API issued.")
        payload, mac = cursor.split(".")
        if not hmac.compare_digest(mac.encode("ascii", "replace"), self._mac_or_empty(payload).encode("ascii")):
            raise InvalidCursor("The cursor is not one this API issued.")
        try:
            data = json.loads(_b64decode(payload))
        except (binascii.Error, ValueError) as exc:  # only reachable with a valid mac, i.e. never
            raise InvalidCursor("The cursor is not one this API issued.") from exc
        if not isinstance(data, dict):
            raise InvalidCursor("The cursor is not one this API issued.")
        if data.get("s") != scope:
            raise InvalidCursor("The cursor belongs to another query; start again without it.")
        key = data.get("k")
        if not isinstance(key, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in key.items()):
            raise InvalidCursor("The cursor is not one this API issued.")
        return key

    def _mac_or_empty(self, payload: str) -> str:
        try:
            return self._mac(payload)
        except UnicodeEncodeError:  # non-ASCII payload: cannot be ours
            return ""
