"""What every HTTP function shares: the FastAPI app factory, RFC 9457 problems, and HTTP caching.

Handlers stay thin: they parse the request, call a service, and return through these helpers.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException

from storefront.errors import StorefrontError, VersionConflict

# FastAPI 0.165 imports pydantic's whole v1 compatibility package (~35 ms of every HTTP function's cold start,
# docs/benchmarks.md part 7) only to refuse pydantic.v1 models, which this project never defines. Marked absent, it
# makes FastAPI take its own branch for a pydantic without v1 (fastapi/_compat/shared.py: ImportError -> not a v1
# model). tests/unit/test_http.py keeps the project off pydantic.v1.
sys.modules.setdefault("pydantic.v1", None)  # type: ignore[arg-type]

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "urn:storefront:problem:"

_logger = logging.getLogger("storefront.http")


class ProblemItem(BaseModel):
    model_config = ConfigDict(extra="allow")
    code: str
    message: str
    field: str | None = None
    sku: str | None = None


class Problem(BaseModel):
    """RFC 9457 problem details, plus a stable machine-readable `code` and per-field `errors`."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[ProblemItem] = []


def problem_response(status: int, code: str, title: str, detail: str, errors: list[dict[str, Any]] | None = None,
                     headers: dict[str, str] | None = None) -> Response:
    body = Problem(type=PROBLEM_TYPE_BASE + code, title=title, status=status, detail=detail, code=code,
                   errors=[ProblemItem(**e) for e in errors or []])
    return Response(body.model_dump_json(exclude_none=True), status_code=status, media_type=PROBLEM_MEDIA_TYPE,
                    headers=headers)


def client_ip(request: Request, trusted_header: str = "") -> str:
    """The client's IP address: API Gateway's `sourceIp`; or, behind a proxy that is the only way in (CloudFront,
    when the template puts it there), the address that proxy names in `trusted_header` ("<ip>:<port>")."""
    if trusted_header and (named := request.headers.get(trusted_header)):
        return named.rsplit(":", 1)[0].strip("[]")
    source = (request.scope.get("aws.event") or {}).get("requestContext", {}).get("http", {}).get("sourceIp")
    return source or (request.client.host if request.client else "")


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the problems a route can answer with."""
    return {status: {"model": Problem, "description": "Problem details (RFC 9457)"} for status in statuses}


class GatewayMessage(BaseModel):
    """API Gateway's own answer when it refuses a request before any function runs."""

    message: str


def unauthorized_responses() -> dict[int | str, dict[str, Any]]:
    """The OpenAPI 401 of a route behind the JWT authorizer. API Gateway answers a missing, expired or invalid
    token itself with `{"message":"Unauthorized"}`; the function answers a problem only if the route reached
    it without verified claims (deployed without the authorizer). Use beside problem_responses()."""
    return {401: {"model": GatewayMessage,
                  "description": "No valid token (API Gateway's answer), or no verified claims (a problem)",
                  "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}}


_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "payload_too_large",
               415: "unsupported_media_type", 429: "too_many_requests"}


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"} and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts)


async def _on_storefront_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StorefrontError)
    return problem_response(exc.status, exc.code, exc.title, exc.detail, exc.errors, headers=exc.headers or None)


async def _on_validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": _field(tuple(e.get("loc", ()))), "code": e.get("type", "invalid"), "message": e.get("msg", "")}
              for e in exc.errors()]
    if any(e["code"] == "json_invalid" for e in errors):
        return problem_response(400, "malformed_json", "Malformed JSON", "The request body is not valid JSON.")
    return problem_response(422, "validation_error", "Validation failed",
                            "The request has invalid or missing fields; see `errors`.", errors)


async def _on_http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    title = code.replace("_", " ").capitalize()
    detail = exc.detail if isinstance(exc.detail, str) else title
    return problem_response(exc.status_code, code, title, detail, headers=exc.headers)


async def _on_unexpected_error(_: Request, exc: Exception) -> Response:
    _logger.exception("unhandled error", exc_info=exc)
    return problem_response(500, "internal_error", "Internal error",
                            "Something went wrong on our side. It has been logged; please retry later.")


MAX_BODY_BYTES = 16 * 1024  # every request body this API takes is far smaller


class _BodyTooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: a body over the limit is a 413 problem before anything parses it; a Content-Length that is
    not a number is a 400 (an empty one means no body)."""

    def __init__(self, app: Any, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"").strip() or b"0"
        if not declared.isdigit():
            response = problem_response(400, "bad_request", "Bad request", "Content-Length must be a number of bytes.")
            await response(scope, receive, send)
            return
        if int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        received = 0

        async def counted_receive() -> Any:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _BodyTooLarge
            return message

        try:
            await self.app(scope, counted_receive, send)
        except _BodyTooLarge:
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Any, receive: Any, send: Any) -> None:
        response = problem_response(413, "payload_too_large", "Payload too large",
                                    f"Request bodies are limited to {self.max_bytes} bytes.")
        await response(scope, receive, send)


def create_app(title: str, description: str = "") -> FastAPI:
    """A FastAPI app whose every error is problem+json, documented as such in its OpenAPI document."""
    app = FastAPI(title=title, description=description, version="1", docs_url=None, redoc_url=None,
                  openapi_url="/openapi.json")
    app.add_middleware(BodyLimit)
    app.add_exception_handler(StorefrontError, _on_storefront_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected_error)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            _problems_as_problem_json(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _problems_as_problem_json(schema: dict[str, Any]) -> None:
    """FastAPI documents every response as application/json; problems are application/problem+json (API Gateway's
    own errors, GatewayMessage, stay application/json)."""
    gateway_message = {"$ref": f"#/components/schemas/{GatewayMessage.__name__}"}
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                as_json = content.get("application/json")
                if status[0] in "45" and as_json is not None and as_json.get("schema") != gateway_message:
                    content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")


# --- HTTP caching ---------------------------------------------------------------------------------

def strong_etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: If-None-Match uses the weak comparison, and `*` matches any current entity."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    candidates = (tag.strip().removeprefix("W/") for tag in if_none_match.split(","))
    return etag in candidates


def cacheable_json(request: Request, payload: BaseModel, max_age: int) -> Response:
    """200 with a strong ETag and Cache-Control, or 304 with no body when the client's copy is current."""
    body = payload.model_dump_json().encode("utf-8")
    etag = strong_etag(body)
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={max_age}"}
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def parse_if_match(header: str | None) -> int | None:
    """If-Match carries a resource version (`"3"`, `3` or `W/"3"`); None when absent or `*`.
    A value that cannot be any version can never match: 412, as RFC 9110 says."""
    if header is None or header.strip() == "*":
        return None
    value = header.strip().removeprefix("W/").strip('"')
    if not value.isdigit() or len(value) > 12:
        raise VersionConflict("If-Match does not name a version of this resource.")
    return int(value)


def versioned_json(payload: BaseModel, version: int, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A private, never-cached resource whose ETag is its version (what If-Match takes back)."""
    return Response(payload.model_dump_json(), status_code=status, media_type="application/json",
                    headers={"ETag": f'"{version}"', "Cache-Control": "no-store", **(headers or {})})
