"""Domain errors. Services raise these; storefront.http turns each into an RFC 9457 problem."""

from __future__ import annotations

from typing import Any


class StorefrontError(Exception):
    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class NotFound(StorefrontError):
    status, code, title = 404, "not_found", "Not found"


class InvalidCursor(StorefrontError):
    status, code, title = 400, "invalid_cursor", "Invalid cursor"
