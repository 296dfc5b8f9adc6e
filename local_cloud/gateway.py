"""API Gateway HTTP API emulation: HTTP request -> payload format 2.0 event -> function -> HTTP response.

It routes exactly as template.yaml's HttpApi events say, throttles each route as the template's
DefaultRouteSettings and RouteSettings say (429 {"message":"Too Many Requests"}), enforces the JWT authorizer a
route's `Auth` names (local_cloud/authorizer.py: 401 {"message":"Unauthorized"} before any function runs),
answers CORS preflights from the template's CorsConfiguration, and, like API Gateway, answers unrouted requests
itself ({"message":"Not Found"}).
Local-only extras (never in template.yaml): GET /openapi.json, the merged OpenAPI document of every
function's app, which the fuzz tests and developers use; POST /dev/payments/{payment_id}/succeed|fail,
which make the local payment provider send its signed webhook, as Stripe would; POST
/dev/shipments/{tracking_number}/advance, which moves a local carrier's parcel on (it sends the signed tracking
update); GET /dev/events, the integration events published so far; POST /dev/queues/{queue}/redrive, which
moves a dead-letter queue's messages back to their queue (SQS's StartMessageMoveTask); GET /dev/emails and
GET /dev/emails/{id}, the customer emails sent through the local SES and one email's HTML; POST /dev/auth/token,
a real access token of the authorizer's user pool for a throwaway user in the groups asked for, and GET
/dev/auth/config, what a browser page needs to sign in to that pool (local_cloud/user_pool.py); GET /images/...,
the product images from the images bucket, as the CloudFront distribution serves them on AWS; and the static files
of web/ (the demo storefront, and the admin page at /manage/) for GET requests no template route claims, as S3 +
CloudFront would serve them on AWS.
"""

from __future__ import annotations

import base64
import json
import logging
import mimetypes
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from local_cloud.authorizer import jwt_authorizers
from local_cloud.cloud import LocalCloud
from local_cloud.functions import FunctionError
from local_cloud.servers import BackgroundServer
from local_cloud.template import ACCOUNT_ID, Route
from local_cloud.user_pool import LocalUserPool

log = logging.getLogger("local_cloud.gateway")

WEB_ROOT = Path(__file__).resolve().parents[1] / "web"  # the demo storefront (static files)
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
API_ID = "localapi"
IMAGES_BUCKET = "ProductImagesBucket"  # the template's bucket that GET /images/... reads
Headers = list[tuple[str, str]]
HttpResponse = tuple[int, Headers, bytes]
JSON = ("Content-Type", "application/json")
UNAUTHORIZED = b'{"message":"Unauthorized"}'
# Bodies API Gateway passes as text; everything else arrives base64-encoded with isBase64Encoded=true.
_TEXT_TYPES = re.compile(r"^(text/.*|application/(json|.*\+json|xml|.*\+xml|javascript|x-www-form-urlencoded))$")


@dataclass(frozen=True)
class CompiledRoute:
    route: Route
    pattern: re.Pattern[str]

    @classmethod
    def of(cls, route: Route) -> CompiledRoute:
        regex = ""
        for part in re.split(r"(\{[^}]+\})", route.path):
            if part.startswith("{") and part.endswith("+}"):
                regex += f"(?P<{part[1:-2]}>.+)"
            elif part.startswith("{"):
                regex += f"(?P<{part[1:-1]}>[^/]+)"
            else:
                regex += re.escape(part)
        return cls(route, re.compile(f"^{regex}$"))


@dataclass(frozen=True)
class LocalRoute:
    """A route the local stack adds beside the template's (dev tools); handler(request) -> (status, headers, body)."""

    method: str
    pattern: re.Pattern[str]
    handler: Callable[[dict[str, str], bytes], HttpResponse]  # (path groups, body)


class Cors:
    def __init__(self, config: dict[str, Any] | None) -> None:
        config = config or {}
        self.origins: list[str] = list(config.get("AllowOrigins", []))
        self.methods = ", ".join(config.get("AllowMethods", []))
        self.headers = ", ".join(config.get("AllowHeaders", []))
        self.expose = ", ".join(config.get("ExposeHeaders", []))
        self.max_age = str(config.get("MaxAge", 0))
        self.credentials = bool(config.get("AllowCredentials", False))

    @property
    def enabled(self) -> bool:
        return bool(self.origins)

    def allowed(self, origin: str | None) -> str | None:
        if not origin:
            return None
        for allowed in self.origins:
            if allowed == "*":
                return "*"
            if _origin_pattern(allowed).fullmatch(origin):
                return origin
        return None

    def response_headers(self, origin: str | None) -> Headers:
        allowed = self.allowed(origin)
        if not allowed:
            return []
        headers = [("Access-Control-Allow-Origin", allowed)]
        if self.expose:
            headers.append(("Access-Control-Expose-Headers", self.expose))
        if self.credentials:
            headers.append(("Access-Control-Allow-Credentials", "true"))
        if allowed != "*":
            headers.append(("Vary", "Origin"))
        return headers

    def preflight_headers(self, origin: str | None) -> Headers:
        headers = self.response_headers(origin)
        if headers:
            headers += [
                ("Access-Control-Allow-Methods", self.methods),
                ("Access-Control-Allow-Headers", self.headers),
                ("Access-Control-Max-Age", self.max_age),
            ]
        return headers


class RouteThrottles:
    """API Gateway's stage throttling: one token bucket per route, shared by every client. A bucket holds at most
    `ThrottlingBurstLimit` requests and refills at `ThrottlingRateLimit` per second, from the template's
    DefaultRouteSettings, replaced for a route key by its RouteSettings entry. A request that finds its route's
    bucket empty is answered 429 {"message":"Too Many Requests"} and never reaches the function. (The account-level
    limit, 10,000 requests per second by default, is far beyond what a local machine sends.)"""

    def __init__(
        self,
        default: tuple[float, float] | None,
        per_route: dict[str, tuple[float, float]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._default = default  # (rate per second, burst); None: unthrottled
        self._per_route = per_route
        self._clock = clock
        self._buckets: dict[str, list[float]] = {}  # route key -> [tokens, last refill]
        self._lock = threading.Lock()

    @classmethod
    def of(cls, api_properties: dict[str, Any]) -> RouteThrottles:
        """From an AWS::Serverless::HttpApi's (resolved) properties."""

        def limits(settings: dict[str, Any] | None) -> tuple[float, float] | None:
            if not settings or "ThrottlingRateLimit" not in settings or "ThrottlingBurstLimit" not in settings:
                return None
            return float(settings["ThrottlingRateLimit"]), float(settings["ThrottlingBurstLimit"])

        per_route = {
            route_key: found
            for route_key, settings in (api_properties.get("RouteSettings") or {}).items()
            if (found := limits(settings)) is not None
        }
        return cls(limits(api_properties.get("DefaultRouteSettings")), per_route)

    def limits(self, route_key: str) -> tuple[float, float] | None:
        return self._per_route.get(route_key, self._default)

    def allow(self, route_key: str) -> bool:
        """Take a token from the route's bucket; False when it is empty."""
        limits = self.limits(route_key)
        if limits is None:
            return True
        rate, burst = limits
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.get(route_key, [burst, now])
            tokens = min(burst, tokens + (now - last) * rate)
            allowed = tokens >= 1
            self._buckets[route_key] = [tokens - 1 if allowed else tokens, now]
            return allowed


def _origin_pattern(allowed: str) -> re.Pattern[str]:
    """An allowed origin, where `:*` is any port (the local default) and `*.` any one subdomain label."""
    regex = re.escape(allowed).replace(r":\*", r":[0-9]{1,5}").replace(r"\*\.", r"[a-z0-9-]+\.")
    return re.compile(regex)


class Gateway:
    def __init__(self, cloud: LocalCloud, host: str = "127.0.0.1", port: int = 3000) -> None:
        self.cloud = cloud
        self.routes = [CompiledRoute.of(r) for r in cloud.template.routes()]
        self.local_routes: list[LocalRoute] = [
            LocalRoute("GET", re.compile(r"^/openapi\.json$"), self._openapi),
            # The local payment provider's "customer pays / is declined", as Stripe's test mode would do.
            LocalRoute(
                "POST",
                re.compile(r"^/dev/payments/(?P<payment_id>[A-Za-z0-9_]{1,64})/(?P<outcome>succeed|fail)$"),
                self._dev_payment,
            ),
            LocalRoute(
                "POST",
                re.compile(r"^/dev/shipments/(?P<tracking_number>[A-Z0-9]{1,32})/advance$"),
                self._dev_advance_shipment,
            ),
            LocalRoute("GET", re.compile(r"^/dev/events$"), self._dev_events),
            LocalRoute("POST", re.compile(r"^/dev/queues/(?P<queue>[A-Za-z0-9]{1,128})/redrive$"), self._dev_redrive),
            LocalRoute("POST", re.compile(r"^/dev/schedules/(?P<name>[A-Za-z0-9]{1,64})/run$"), self._dev_schedule),
            # Customer emails sent through the local SES: the list (newest first), and one email as its HTML.
            LocalRoute("GET", re.compile(r"^/dev/emails$"), self._dev_emails),
            LocalRoute("GET", re.compile(r"^/dev/emails/(?P<email_id>[A-Za-z0-9-]{1,128})$"), self._dev_email),
            LocalRoute("POST", re.compile(r"^/dev/auth/token$"), self._dev_token),
            LocalRoute("GET", re.compile(r"^/dev/auth/config$"), self._dev_auth_config),
            # Product images, as the edge's /images/* behaviour serves them from the images bucket on AWS.
            LocalRoute(
                "GET", re.compile(r"^/(?P<key>images/[A-Za-z0-9_.-]{1,128}/[A-Za-z0-9_.-]{1,128})$"), self._image
            ),
        ]
        api = next(iter(cloud.template.of_type("AWS::Serverless::HttpApi").values()), {}).get("Properties", {})
        cors_config = api.get("CorsConfiguration")
        self.cors = Cors(cloud.template.resolve(cors_config) if cors_config else None)
        self.authorizers = jwt_authorizers(
            cloud.template.resolve(api.get("Auth", {})), cloud.region, cloud.endpoint_url
        )
        for compiled in self.routes:
            if compiled.route.authorizer is not None and compiled.route.authorizer not in self.authorizers:
                raise KeyError(
                    f"{compiled.route.route_key} names the authorizer {compiled.route.authorizer}, "
                    f"which the HttpApi does not declare"
                )
        # The dev routes sign in to the pool of the API's (first) authorizer, through its first audience: the app
        # client.
        first = next(iter(self.authorizers.values()), None)
        self.user_pool = (
            None
            if first is None
            else LocalUserPool(
                cloud.client("cognito-idp"),
                first.issuer.rsplit("/", 1)[1],
                first.audiences[0],
                cloud.region,
                cloud.endpoint_url,
            )
        )
        self.throttles = RouteThrottles.of(
            cloud.template.resolve({k: v for k, v in api.items() if k in ("DefaultRouteSettings", "RouteSettings")})
        )
        self._http = BackgroundServer(host, port, _handler_class(self), "gateway")

    @property
    def url(self) -> str:
        return self._http.url

    def start(self) -> Gateway:
        if self.cloud.payments is not None:  # the provider sends its webhooks here, as Stripe would
            self.cloud.payments.webhook_url = f"{self.url}/webhooks/payments/fake"
        if self.cloud.carrier is not None:
            self.cloud.carrier.webhook_url = f"{self.url}/webhooks/carriers/local"
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    # ---------------------------------------------------------------- dispatch

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for compiled in self.routes:
            if compiled.route.method in (method, "ANY") and (m := compiled.pattern.match(path)):
                return compiled.route, {k: unquote(v) for k, v in m.groupdict().items()}
        return None

    def handle(self, method: str, target: str, headers: Headers, body: bytes, source_ip: str) -> HttpResponse:
        path = urlsplit(target).path
        origin = next((v for k, v in headers if k.lower() == "origin"), None)
        if (
            method == "OPTIONS"
            and self.cors.enabled
            and any(k.lower() == "access-control-request-method" for k, _ in headers)
        ):
            return 204, self.cors.preflight_headers(origin), b""
        for local in self.local_routes:
            if local.method == method and (found := local.pattern.match(path)):
                status, response_headers, response_body = local.handler(found.groupdict(), body)
                return status, response_headers + self.cors.response_headers(origin), response_body
        matched = self.match(method, path)
        if matched is None:
            if method in ("GET", "HEAD") and (static := self._static_file(path)) is not None:
                return static
            return 404, [JSON], b'{"message":"Not Found"}'
        route, path_parameters = matched
        if not self.throttles.allow(route.route_key):
            return 429, [JSON, *self.cors.response_headers(origin)], b'{"message":"Too Many Requests"}'
        authorizer = None
        if route.authorizer is not None:
            authorizer = self.authorizers[route.authorizer].authorize(headers)
            if authorizer is None:  # API Gateway's own answer; the function never runs
                return 401, [JSON, ("WWW-Authenticate", "Bearer"), *self.cors.response_headers(origin)], UNAUTHORIZED
        event = build_event(route, method, target, headers, body, path_parameters, source_ip, authorizer)
        try:
            result = self.cloud.functions[route.function].invoke(event)
        except FunctionError:
            return 500, [JSON], b'{"message":"Internal Server Error"}'
        status, response_headers, response_body = to_http_response(result)
        return status, response_headers + self.cors.response_headers(origin), response_body

    @staticmethod
    def _static_file(path: str) -> HttpResponse | None:
        """A file of web/ (the demo shop, and the admin page in web/manage/), or None; a folder's address ending in
        `/` is its index.html (`/`, `/manage/`), one without is redirected there; nothing outside web/ is reachable."""
        relative = unquote(path).lstrip("/")
        file = (WEB_ROOT / relative).resolve()
        if not file.is_relative_to(WEB_ROOT):
            return None
        if file.is_dir():
            if not path.endswith("/"):  # the page's relative links need the slash
                return 301, [("Location", f"{path}/")], b""
            file = file / "index.html"
        if not file.is_file():
            return None
        content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type in ("application/javascript", "image/svg+xml"):
            content_type += "; charset=utf-8"
        # no-cache: a developer's edit shows on the next reload (CloudFront would cache by its own policy)
        return 200, [("Content-Type", content_type), ("Cache-Control", "no-cache")], file.read_bytes()

    def _openapi(self, _: dict[str, str], __: bytes) -> HttpResponse:
        return 200, [JSON], json.dumps(merged_openapi(self.cloud)).encode()

    def _dev_payment(self, groups: dict[str, str], _: bytes) -> HttpResponse:
        payments = self.cloud.payments
        if payments is None:
            return 404, [JSON], b'{"message":"Not Found"}'
        outcome = payments.succeed if groups["outcome"] == "succeed" else payments.fail
        try:
            webhook_status = outcome(groups["payment_id"])
        except KeyError:
            return 404, [JSON], json.dumps({"message": f"no payment {groups['payment_id']}"}).encode()
        except ValueError as error:  # PaymentStateError: it succeeded or was canceled already
            return 409, [JSON], json.dumps({"message": str(error)}).encode()
        return (
            200,
            [JSON],
            json.dumps(
                {"payment_id": groups["payment_id"], "outcome": groups["outcome"], "webhook_status": webhook_status}
            ).encode(),
        )

    def _dev_advance_shipment(self, groups: dict[str, str], _: bytes) -> HttpResponse:
        carrier = self.cloud.carrier
        if carrier is None:
            return 404, [JSON], b'{"message":"Not Found"}'
        try:
            shipment_id = carrier.shipment_id(groups["tracking_number"])
            webhook_status = carrier.advance(shipment_id)
        except KeyError:
            return 404, [JSON], json.dumps({"message": f"no shipment {groups['tracking_number']}"}).encode()
        except ValueError as error:
            return 409, [JSON], json.dumps({"message": str(error)}).encode()
        return (
            200,
            [JSON],
            json.dumps(
                {
                    "tracking_number": groups["tracking_number"],
                    "shipment_id": shipment_id,
                    "status": carrier.shipments[shipment_id]["status"],
                    "webhook_status": webhook_status,
                }
            ).encode(),
        )

    def _dev_token(self, _: dict[str, str], body: bytes) -> HttpResponse:
        if self.user_pool is None:
            return 404, [JSON], b'{"message":"Not Found"}'
        try:
            request = json.loads(body)
        except ValueError:
            request = None
        groups = request.get("groups") if isinstance(request, dict) and set(request) == {"groups"} else None
        if not isinstance(groups, list) or not all(isinstance(group, str) for group in groups):
            return (
                400,
                [JSON],
                json.dumps(
                    {"message": 'the body must be {"groups": [group names]}, e.g. {"groups": ["admin"]}'}
                ).encode(),
            )
        try:
            token = self.user_pool.mint_token(groups)
        except ValueError as error:
            return 400, [JSON], json.dumps({"message": str(error)}).encode()
        return 200, [JSON, ("Cache-Control", "no-store")], json.dumps(token).encode()

    def _dev_auth_config(self, _: dict[str, str], __: bytes) -> HttpResponse:
        if self.user_pool is None:
            return 404, [JSON], b'{"message":"Not Found"}'
        return 200, [JSON], json.dumps(self.user_pool.settings()).encode()

    def _image(self, groups: dict[str, str], _: bytes) -> HttpResponse:
        if IMAGES_BUCKET not in self.cloud.template.physical:
            return 404, [JSON], b'{"message":"Not Found"}'
        s3 = self.cloud.client("s3")
        try:
            found = s3.get_object(Bucket=self.cloud.physical_id(IMAGES_BUCKET), Key=groups["key"])
        except s3.exceptions.NoSuchKey:
            return 404, [JSON], b'{"message":"Not Found"}'
        headers = [
            ("Content-Type", found["ContentType"]),
            ("ETag", found["ETag"]),
            ("X-Content-Type-Options", "nosniff"),
        ]
        if found.get("CacheControl"):
            headers.append(("Cache-Control", found["CacheControl"]))
        return 200, headers, found["Body"].read()

    def _dev_events(self, _: dict[str, str], __: bytes) -> HttpResponse:
        return 200, [JSON], json.dumps({"items": self.cloud.integration_events()}).encode()

    def _dev_emails(self, _: dict[str, str], __: bytes) -> HttpResponse:
        return 200, [JSON], json.dumps({"items": self.cloud.sent_emails()}).encode()

    def _dev_email(self, groups: dict[str, str], _: bytes) -> HttpResponse:
        email = next((e for e in self.cloud.sent_emails() if e["id"] == groups["email_id"]), None)
        if email is None or email["html"] is None:
            return 404, [JSON], json.dumps({"message": f"no email {groups['email_id']}"}).encode()
        # As a careful webmail shows a mail: nothing it could load or run (the templates use inline styles only).
        return (
            200,
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("X-Content-Type-Options", "nosniff"),
                (
                    "Content-Security-Policy",
                    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
                    "form-action 'none'; frame-ancestors 'none'",
                ),
            ],
            email["html"].encode(),
        )

    def _dev_schedule(self, groups: dict[str, str], _: bytes) -> HttpResponse:
        schedule = self.cloud.schedules.get(groups["name"])
        if schedule is None:
            return 404, [JSON], json.dumps({"message": f"no schedule {groups['name']}"}).encode()
        try:
            result = schedule.run_now()
        except FunctionError as error:
            return 500, [JSON], json.dumps({"schedule": groups["name"], "error": error.payload}).encode()
        return 200, [JSON], json.dumps({"schedule": groups["name"], "result": result}).encode()

    def _dev_redrive(self, groups: dict[str, str], _: bytes) -> HttpResponse:
        try:
            moved = self.cloud.redrive(groups["queue"])
        except KeyError:
            return 404, [JSON], json.dumps({"message": f"no dead-letter queue {groups['queue']}"}).encode()
        return 200, [JSON], json.dumps({"queue": groups["queue"], "moved": moved}).encode()


def merged_openapi(cloud: LocalCloud) -> dict[str, Any]:
    """One OpenAPI document for the whole API: every function app's paths, restricted to the template's routes, with
    the template's JWT authorizers as bearer security schemes on the routes behind them (what API Gateway enforces).
    `python -m local_cloud openapi` writes it; openapi.json at the repository's root is a copy (a test compares)."""
    routes = {(r.method.lower(), r.path): r for r in cloud.template.routes()}
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Storefront API", "version": "1"},
        "paths": {},
        "components": {"schemas": {}},
    }
    schemes: dict[str, Any] = {}
    for function in cloud.functions.values():
        app = getattr(function.module, "app", None)
        if app is None or not hasattr(app, "openapi"):
            continue
        spec = app.openapi()
        for path, operations in spec.get("paths", {}).items():
            for method, operation in operations.items():
                route = routes.get((method, path))
                if route is None:
                    continue
                if route.authorizer is not None:
                    operation = {**operation, "security": [{route.authorizer: []}]}
                    schemes[route.authorizer] = {
                        "type": "http",
                        "scheme": "bearer",
                        "bearerFormat": "JWT",
                        "description": "An access (or ID) token of the operators' Cognito user pool, checked by API "
                        "Gateway's JWT authorizer before the function runs",
                    }
                document["paths"].setdefault(path, {})[method] = operation
        for name, schema in spec.get("components", {}).get("schemas", {}).items():
            known = document["components"]["schemas"].setdefault(name, schema)
            if known != schema:  # two apps' models of one name: the merged document could describe only one
                raise ValueError(f"two functions' OpenAPI documents define the schema {name!r} differently")
    if schemes:
        document["components"]["securitySchemes"] = schemes
    return document


def build_event(
    route: Route,
    method: str,
    target: str,
    headers: Headers,
    body: bytes,
    path_parameters: dict[str, str],
    source_ip: str,
    authorizer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The event API Gateway HTTP API sends a Lambda proxy integration (payload format 2.0); `authorizer` is what
    the route's authorizer verified (requestContext.authorizer), absent on public routes."""
    split = urlsplit(target)
    merged_headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        lower = name.lower()
        if lower == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        merged_headers[lower] = f"{merged_headers[lower]},{value}" if lower in merged_headers else value
    query: dict[str, str] = {}
    for name, value in parse_qsl(split.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    content_type = merged_headers.get("content-type", "").split(";")[0].strip().lower()
    is_text = not body or bool(_TEXT_TYPES.match(content_type))
    now = datetime.now(UTC)
    request_id = base64.b32encode(uuid.uuid4().bytes[:10]).decode().rstrip("=")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": split.path,
        "rawQueryString": split.query,
        "headers": merged_headers,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": merged_headers.get("host", "127.0.0.1"),
            "domainPrefix": merged_headers.get("host", "127").split(".")[0],
            "http": {
                "method": method,
                "path": split.path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged_headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route.route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": not is_text,
    }
    if authorizer is not None:
        event["requestContext"]["authorizer"] = authorizer
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body:
        event["body"] = body.decode("utf-8", "replace") if is_text else base64.b64encode(body).decode("ascii")
    return event


def to_http_response(result: Any) -> HttpResponse:
    """Payload format 2.0 responses: a dict with statusCode, or anything else taken as a 200 JSON body."""
    if not isinstance(result, dict) or "statusCode" not in result:
        return 200, [JSON], json.dumps(result).encode()
    headers = [(k, str(v)) for k, v in (result.get("headers") or {}).items()]
    headers += [(name, ", ".join(map(str, values))) for name, values in (result.get("multiValueHeaders") or {}).items()]
    headers += [("Set-Cookie", cookie) for cookie in result.get("cookies") or []]
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
    return int(result["statusCode"]), headers, raw


def _handler_class(gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes: don't wait for delayed ACKs
        server_version = "local-api-gateway"

        def _serve(self) -> None:
            started = time.perf_counter()
            declared = (self.headers.get("Content-Length") or "").strip() or "0"
            if not declared.isdigit():  # API Gateway refuses it before routing
                self._reply(400, [JSON], b'{"message":"Bad Request"}')
                self.close_connection = True
                return
            length = int(declared)
            if length > MAX_BODY_BYTES:
                self._reply(413, [JSON], b'{"message":"Request Entity Too Large"}')
                self.close_connection = True
                return
            body = self.rfile.read(length) if length else b""
            try:
                status, headers, payload = gateway.handle(
                    self.command, self.path, list(self.headers.items()), body, self.client_address[0]
                )
            except Exception:
                log.exception("gateway error on %s %s", self.command, self.path)
                status, headers, payload = 500, [JSON], b'{"message":"Internal Server Error"}'
            self._reply(status, headers, payload)
            log.info("%s %s -> %s (%.1f ms)", self.command, self.path, status, (time.perf_counter() - started) * 1000)

        def _reply(self, status: int, headers: Headers, payload: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in {"content-length", "connection", "transfer-encoding"}:
                    self.send_header(name, value)
            if status in (204, 304):
                payload = b""  # no body, and no Content-Length, by definition
            else:
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def __getattr__(self, name: str) -> Any:
            # Every method, TRACE and inventions included, goes through routing, as in API Gateway.
            if name.startswith("do_"):
                return self._serve
            raise AttributeError(name)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # _serve logs one line per request

    return Handler
