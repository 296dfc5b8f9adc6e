"""What every HTTP function shares: the FastAPI app factory, RFC 9457 problems, and HTTP caching.

Handlers stay thin: they parse the request, call a service, and return through these helpers.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import sys
from collections.abc import Mapping
from typing import Any, Self

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.exceptions import HTTPException

from storefront.config import EdgeSettings
from storefront.errors import Busy, Forbidden, StorefrontError, VersionConflict
from storefront.secrets import get_secret

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


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = Problem(
        type=PROBLEM_TYPE_BASE + code,
        title=title,
        status=status,
        detail=detail,
        code=code,
        errors=[ProblemItem(**e) for e in errors or []],
    )
    return Response(
        body.model_dump_json(exclude_none=True), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def client_ip(request: Request) -> str:
    """The client's IP address: API Gateway's `sourceIp`; behind the edge (where that is CloudFront's), the viewer's
    address as CloudFront names it ("<ip>:<port>"), which EdgeOnly hands on only from a request it verified."""
    if viewer := request.scope.get(_VIEWER_ADDRESS):
        return str(viewer).rsplit(":", 1)[0].strip("[]")
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
    return {
        401: {
            "model": GatewayMessage,
            "description": "No valid token (API Gateway's answer), or no verified claims (a problem)",
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    }


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"} and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts)


def error_response(exc: StorefrontError) -> Response:
    return problem_response(exc.status, exc.code, exc.title, exc.detail, exc.errors, headers=exc.headers or None)


async def _on_storefront_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StorefrontError)
    return error_response(exc)


async def _on_validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _field(tuple(e.get("loc", ()))), "code": e.get("type", "invalid"), "message": e.get("msg", "")}
        for e in exc.errors()
    ]
    if any(e["code"] == "json_invalid" for e in errors):
        return problem_response(400, "malformed_json", "Malformed JSON", "The request body is not valid JSON.")
    return problem_response(
        422, "validation_error", "Validation failed", "The request has invalid or missing fields; see `errors`.", errors
    )


async def _on_http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    title = code.replace("_", " ").capitalize()
    detail = exc.detail if isinstance(exc.detail, str) else title
    return problem_response(exc.status_code, code, title, detail, headers=exc.headers)


async def _on_unexpected_error(_: Request, exc: Exception) -> Response:
    _logger.error("unhandled error", exc_info=exc)
    return problem_response(
        500,
        "internal_error",
        "Internal error",
        "Something went wrong on our side. It has been logged; please retry later.",
    )


MAX_BODY_BYTES = 16 * 1024  # every shopper's request body is far smaller (the admin's products: create_app's argument)


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
        response = problem_response(
            413, "payload_too_large", "Payload too large", f"Request bodies are limited to {self.max_bytes} bytes."
        )
        await response(scope, receive, send)


# --- the optional edge (template.yaml's Edge; docs/observability.md, "The edge") ---------------------------------
# CloudFront adds ORIGIN_SECRET_HEADER to every request it sends to the API (EdgeDistribution's OriginCustomHeaders)
# and names the viewer in VIEWER_ADDRESS_HEADER. The API's own domain is public, so either header may also come from
# anyone who calls that domain directly: only the first proves where a request came from.
ORIGIN_SECRET_HEADER = "x-origin-verify"  # noqa: S105  the header's name, not its value
VIEWER_ADDRESS_HEADER = "cloudfront-viewer-address"
_VIEWER_ADDRESS = "storefront.viewer_address"  # ASGI scope key: set by EdgeOnly, for a verified request only
_SLOT_VALUE = r"^([A-Za-z0-9]{32,256})?$"  # what the stack generates: 64 letters and digits; empty: a slot not in use


class OriginSecret(BaseModel):
    """The origin secret's value: two slots. CloudFront sends the one the stack's EdgeOriginHeaderSlot parameter
    names, the API accepts either, so a rotation fills the idle slot, flips the parameter, then empties the old one
    (docs/observability.md, "Rotating the origin header")."""

    # hide_input_in_errors: a validation error's message must never carry a value into the logs.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)
    blue: str = Field(default="", pattern=_SLOT_VALUE)
    green: str = Field(default="", pattern=_SLOT_VALUE)

    @model_validator(mode="after")
    def _a_slot_in_use(self) -> Self:
        if not (self.blue or self.green):
            raise ValueError("both slots are empty: CloudFront's requests would all be refused")
        return self

    def accepts(self, presented: bytes) -> bool:
        # Constant time, and every slot compared: the answer's timing tells nothing about the values.
        matches = [hmac.compare_digest(presented, value.encode("ascii")) for value in (self.blue, self.green) if value]
        return any(matches)


class EdgeOnly:
    """ASGI middleware: with the edge on (settings.origin_secret_id set), the API answers only requests that carry
    the origin secret (403 `forbidden` otherwise, before anything reads the request), and only from those does it
    take the viewer's address CloudFront names; with the edge off it changes nothing and trusts no such header.
    The secret comes through storefront.secrets (cached per execution environment, SECRET_CACHE_SECONDS)."""

    def __init__(self, app: Any, settings: EdgeSettings) -> None:
        self.app = app
        self.secret_id = settings.origin_secret_id

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.secret_id:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        refusal = self._refusal(headers.get(ORIGIN_SECRET_HEADER.encode("ascii")))
        if refusal is not None:
            await error_response(refusal)(scope, receive, send)
            return
        viewer = headers.get(VIEWER_ADDRESS_HEADER.encode("ascii"), b"").decode("latin-1")
        await self.app({**scope, _VIEWER_ADDRESS: viewer}, receive, send)

    def _refusal(self, presented: bytes | None) -> StorefrontError | None:
        """Why a request may not pass; None when it came through the edge."""
        if presented is None:  # refused without reading the secret: a flood of plain requests costs no secret reads
            return Forbidden(_NOT_THROUGH_THE_EDGE)
        try:
            secret = OriginSecret.model_validate_json(get_secret(self.secret_id))
        except Exception:  # unreadable (Secrets Manager throttled, down) or malformed: nothing can be verified
            _logger.exception("the edge's origin secret cannot be read")
            return Busy("The API cannot verify requests right now; please retry shortly.")
        return None if secret.accepts(presented) else Forbidden(_NOT_THROUGH_THE_EDGE)


_NOT_THROUGH_THE_EDGE = "This API answers only through the shop's CloudFront distribution: call the shop's address."


def create_app(
    title: str, description: str = "", edge: EdgeSettings | None = None, max_body_bytes: int = MAX_BODY_BYTES
) -> FastAPI:
    """A FastAPI app whose every error is problem+json, documented as such in its OpenAPI document, behind the edge
    when the function's environment says it has one (`edge`: EdgeSettings.from_env() unless given)."""
    app = FastAPI(
        title=title, description=description, version="1", docs_url=None, redoc_url=None, openapi_url="/openapi.json"
    )
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(EdgeOnly, settings=edge or EdgeSettings.from_env())  # the outermost: refuses first
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


def private_json(payload: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """An operator's view of the shop's data: JSON that no browser or CDN keeps."""
    return Response(
        payload.model_dump_json(),
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def versioned_json(
    payload: BaseModel, version: int, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A private, never-cached resource whose ETag is its version (what If-Match takes back)."""
    return Response(
        payload.model_dump_json(),
        status_code=status,
        media_type="application/json",
        headers={"ETag": f'"{version}"', "Cache-Control": "no-store", **(headers or {})},
    )
