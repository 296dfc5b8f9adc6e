"""Domain errors. Services raise these; storefront.http turns each into an RFC 9457 problem."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


class StorefrontError(Exception):
    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"
    # Read-only: one class's headers are shared by all its errors (RateLimited sets its own per instance).
    headers: Mapping[str, str] = MappingProxyType({})

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class NotFound(StorefrontError):
    status, code, title = 404, "not_found", "Not found"


class InvalidCursor(StorefrontError):
    status, code, title = 400, "invalid_cursor", "Invalid cursor"


class ValidationFailed(StorefrontError):
    """A request that is well-formed but breaks a business rule (unknown SKU, too many lines, ...)."""

    status, title = 422, "Validation failed"

    def __init__(self, code: str, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail, errors)
        self.code = code


class InsufficientStock(StorefrontError):
    status, code, title = 409, "insufficient_stock", "Insufficient stock"


class VersionConflict(StorefrontError):
    status, code, title = 412, "version_conflict", "Version conflict"


class Busy(StorefrontError):
    """Too many concurrent writers on one resource; the client should retry shortly."""

    status, code, title = 503, "busy", "Busy, retry"
    headers = MappingProxyType({"Retry-After": "1"})


class Unauthorized(StorefrontError):
    """No verified identity reached the function (on AWS API Gateway's authorizer answers 401 before it runs)."""

    status, code, title = 401, "unauthorized", "Unauthorized"
    headers = MappingProxyType({"WWW-Authenticate": "Bearer"})


class Forbidden(StorefrontError):
    """A verified caller whose groups do not allow the operation."""

    status, code, title = 403, "forbidden", "Forbidden"


class Conflict(StorefrontError):
    """A valid request that the resource's current state refuses (a SKU another product has, a product that exists)."""

    status, title = 409, "Conflict"

    def __init__(self, code: str, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail, errors)
        self.code = code


class NotConfigured(StorefrontError):
    """The stack was deployed without what this operation needs (a template parameter left empty)."""

    status, code, title = 503, "not_configured", "Not configured"
