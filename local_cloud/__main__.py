"""`python -m local_cloud serve` runs the storefront locally; `python -m local_cloud invoke` is a Docker-free
`sam local invoke`; `python -m local_cloud openapi` prints the API's OpenAPI document. All build everything from
template.yaml; see docs/local-cloud.md."""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import json
import logging
import math
import os
import signal
import sys
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

LOCAL_ORIGINS = "http://localhost:*,http://127.0.0.1:*"
LOCAL_ADMIN_EMAIL = "admin@example.com"


# Where `make dev` serves the API (and the images) unless PORT says otherwise: what `invoke` configures the stack with.
LOCAL_DEV_URL = f"http://127.0.0.1:{os.environ.get('PORT', '3000')}"


def _start_cloud(with_demo_data: bool, carrier_step_seconds: float | None = None, public_url: str = "") -> Any:
    """`public_url` is where the gateway will serve the API; it serves product images there too, as the edge does."""
    from local_cloud.cloud import LocalCloud
    from local_cloud.demo_data import seed

    overrides = {"AllowedOrigins": LOCAL_ORIGINS, "ImageBaseUrl": public_url}
    if timeout := os.environ.get("PAYMENT_TIMEOUT_SECONDS"):
        overrides["PaymentTimeoutSeconds"] = timeout
    level = os.environ.get("LOCAL_CLOUD_LOG_LEVEL", "WARNING")
    if logging.getLevelName(level.upper()) > logging.INFO:
        # Quiet, as the functions are: the demo data's own service calls (a demo shipment) count business metrics too.
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    cloud = LocalCloud(
        parameter_overrides=overrides, carrier_step_seconds=carrier_step_seconds, function_log_level=level
    ).start()
    if with_demo_data:
        seed(cloud)
    return cloud


def seed_admin(gateway: Any, environ: dict[str, str]) -> tuple[str, str]:
    """The operator `make dev` prints: admin@example.com in group admin, with a permanent password, the value of
    LOCAL_ADMIN_PASSWORD or else a random strong one. ValueError when the pool's password policy refuses it."""
    from botocore.exceptions import ClientError

    from local_cloud.user_pool import strong_password

    password = environ.get("LOCAL_ADMIN_PASSWORD") or strong_password()
    try:
        gateway.user_pool.create_user(LOCAL_ADMIN_EMAIL, password, ["admin"])
    except ClientError as error:
        if error.response["Error"]["Code"] != "InvalidPasswordException":
            raise
        raise ValueError(
            "LOCAL_ADMIN_PASSWORD does not meet the user pool's password policy (template.yaml, "
            "AdminUserPool: at least 12 characters with upper and lower case, a digit and a symbol)"
        ) from None
    return LOCAL_ADMIN_EMAIL, password


def serve(args: argparse.Namespace) -> int:
    from local_cloud.gateway import Gateway

    started = time.perf_counter()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    # The local carrier moves every parcel on by itself: in transit, out for delivery, delivered.
    step = float(os.environ.get("LOCAL_CARRIER_STEP_SECONDS", "5"))
    cloud = _start_cloud(
        with_demo_data=not args.no_demo_data,
        carrier_step_seconds=step if step > 0 else None,
        public_url=f"http://{args.host}:{args.port}",
    )
    gateway = Gateway(cloud, host=args.host, port=args.port).start()
    url = gateway.url
    try:
        admin_email, admin_password = seed_admin(gateway, dict(os.environ))
    except ValueError as error:
        print(error, file=sys.stderr, flush=True)
        gateway.stop()
        cloud.stop()
        return 2
    pool = gateway.user_pool
    print(
        f"""
Storefront local cloud is up ({time.perf_counter() - started:.1f}s); no Docker, no AWS account.

  storefront     {url}/   (web/: the demo shop; buy something and watch it be delivered)
  admin page     {url}/manage/   (web/manage/: products, stock, orders, refunds; sign in as below)
  API            {url}
    catalog      {url}/products   {url}/products/linen-shirt   {url}/categories
    cart         POST {url}/carts   then /carts/<id>/items, /carts/<id>/shipping, GET {url}/shipping-methods?country=DE
    checkout     POST {url}/checkout (Idempotency-Key)   GET {url}/orders/<id>
    payments     POST {url}/dev/payments/<payment_id>/succeed | fail   (the local provider sends the signed webhook)
    shipping     paid orders ship with the local carrier and move on every {step:g}s (LOCAL_CARRIER_STEP_SECONDS);
                 POST {url}/dev/shipments/<tracking_number>/advance moves one on now
    events       GET {url}/dev/events   (integration events: order.placed, order.paid, ..., stock.low)
    emails       GET {url}/dev/emails   (customer emails sent through the local SES; /dev/emails/<id> shows one)
    DLQ redrive  POST {url}/dev/queues/FulfilmentDeadLetterQueue/redrive
    schedules    POST {url}/dev/schedules/Reconcile/run   (the reconciler also runs at the template's rate)
    OpenAPI      {url}/openapi.json
  admin          {url}/admin/products, /admin/inventory/<sku>, /admin/orders, /admin/audit, ... (docs/api.md, "Admin")
                 with Authorization: Bearer <token> (the template's JWT authorizer checks it); GET {url}/admin/me
    images       {url}/images/<product>/<file>   (the images bucket, as the CDN serves it on AWS)
    sign in as   {admin_email} / {admin_password}   (group admin; LOCAL_ADMIN_PASSWORD sets the password)
    Cognito      {pool.endpoint_url}   InitiateAuth USER_PASSWORD_AUTH, client id {pool.client_id},
                 user pool {pool.pool_id}   (all of it: GET {url}/dev/auth/config)
    tokens       POST {url}/dev/auth/token {{"groups": ["admin"]}}   (for scripts: "admin", "staff", or [] for none)
  AWS (moto)     {cloud.endpoint_url}   e.g. aws --endpoint-url {cloud.endpoint_url} dynamodb list-tables
  functions      {", ".join(sorted(cloud.functions))}
  tables         {", ".join(cloud.physical_id(t) for t in sorted(cloud.template.of_type("AWS::DynamoDB::Table")))}

Ctrl-C or SIGTERM stops it.""",
        flush=True,
    )
    stop.wait()
    print("Stopping...", flush=True)
    gateway.stop()
    cloud.stop()
    print("Stopped.", flush=True)
    return 0


# Webhook routes whose sample events (events/payment_webhook/, events/fulfilment/) are signed with the local cloud's
# webhook secrets: the signature header the route checks, and the template's secret that holds the local secret.
SIGNED_WEBHOOK_ROUTES = {
    "POST /webhooks/payments/{provider}": ("stripe-signature", "PaymentWebhookSecret"),
    "POST /webhooks/carriers/{carrier}": ("carrier-signature", "CarrierWebhookSecret"),
}


def resign_stale_webhook(event: Any, secret_values: dict[str, str], now: int | None = None) -> tuple[Any, str | None]:
    """A sample webhook's signature is stale a few minutes after it was made. If `event` is an API Gateway event
    for a signed webhook route whose signature was made with the local secret (verified at its own timestamp),
    return a copy with the exact same body signed with that secret now, and a line saying so. Anything else (not a
    webhook, a fresh signature, one the local secret did not make) is returned as it is, with None."""
    from storefront.webhooks.signatures import TOLERANCE_SECONDS, InvalidSignature, parse_secrets, sign, verify

    if not isinstance(event, dict) or event.get("version") != "2.0" or not isinstance(event.get("headers"), dict):
        return event, None
    route = event.get("routeKey")
    if not isinstance(route, str) or route not in SIGNED_WEBHOOK_ROUTES:
        return event, None
    header_name, secret_id = SIGNED_WEBHOOK_ROUTES[route]
    key = next((k for k in event["headers"] if isinstance(k, str) and k.lower() == header_name), None)
    header = event["headers"].get(key) if key is not None else None
    secrets = parse_secrets(secret_values.get(secret_id, ""))
    raw = event.get("body") or ""
    if not isinstance(header, str) or not secrets or not isinstance(raw, str):
        return event, None
    try:
        body = base64.b64decode(raw, validate=True) if event.get("isBase64Encoded") else raw.encode("utf-8")
        signed_at = int(next(part.strip()[2:] for part in header.split(",") if part.strip().startswith("t=")))
    except (ValueError, StopIteration):
        return event, None  # not a signature header the function could accept either
    current = int(time.time()) if now is None else now
    try:
        verify(body, header, secrets, now=current)
        return event, None  # still fresh: the function accepts it as it is
    except InvalidSignature:
        pass
    for secret in secrets:
        try:
            verify(body, header, [secret], now=signed_at)
        except InvalidSignature:
            continue
        fresh = copy.deepcopy(event)
        fresh["headers"][key] = sign(body, secret, current)
        return fresh, (
            f"local_cloud invoke: {header_name} was made with the local secret at t={signed_at}, outside "
            f"the {TOLERANCE_SECONDS} s tolerance; re-signed the same body with it at t={current}"
        )
    return event, None  # not made with the local secret: left alone, so the function shows its 400


def run_invoke(cloud: Any, function: str, event: Any) -> tuple[Any, bool]:
    """Invoke `function` with `event` (a stale sample webhook re-signed first, said on stderr); returns
    (the function's result or its error payload, whether it failed). A REPORT line on stderr, as Lambda logs one."""
    from local_cloud.functions import FunctionError

    event, note = resign_stale_webhook(event, cloud.secret_values)
    if note:
        print(note, file=sys.stderr, flush=True)
    target = cloud.functions[function]
    request_id = str(uuid.uuid4())
    started = time.perf_counter()
    try:
        return target.invoke(event, request_id=request_id), False
    except FunctionError as error:
        return error.payload, True
    finally:
        elapsed = (time.perf_counter() - started) * 1000
        print(
            f"REPORT RequestId: {request_id}\tDuration: {elapsed:.2f} ms\tBilled Duration: {math.ceil(elapsed)} ms"
            f"\tMemory Size: {target.memory} MB",
            file=sys.stderr,
            flush=True,
        )


def decoded_body(result: Any) -> Any:
    """An HTTP function's response body, parsed (JSON, else the text); anything else as it is."""
    if not isinstance(result, dict) or "statusCode" not in result:
        return result
    body = result.get("body") or ""
    text = base64.b64decode(body).decode("utf-8", "replace") if result.get("isBase64Encoded") else body
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


def printed_result(result: Any, failed: bool, decode_body: bool) -> str:
    """What `invoke` prints on stdout: the function's result (an HTTP response's body alone, parsed, with
    --decode-body), as JSON, so that `make invoke ... | jq .` works."""
    return json.dumps(decoded_body(result) if decode_body and not failed else result, indent=2)


def invoke(args: argparse.Namespace) -> int:
    """Like `sam local invoke`: the function's logs go to stderr, its result alone to stdout (JSON)."""
    try:
        event = json.loads(Path(args.event).read_text())
    except (OSError, ValueError) as error:
        print(f"python -m local_cloud invoke: cannot read the event {args.event}: {error}", file=sys.stderr)
        return 2
    with contextlib.redirect_stdout(sys.stderr):  # handlers log to stdout, as on Lambda
        # Configured as `make dev` would be (images served at its address), though no gateway runs here.
        cloud = _start_cloud(with_demo_data=not args.no_demo_data, public_url=LOCAL_DEV_URL)
        try:
            if args.function not in cloud.functions:
                print(
                    f"python -m local_cloud invoke: no function {args.function!r}; the template has "
                    f"{', '.join(sorted(cloud.functions))}"
                )
                return 2
            sent_before = {email["id"] for email in cloud.sent_emails()}
            result, failed = run_invoke(cloud, args.function, event)
            for email in reversed([e for e in cloud.sent_emails() if e["id"] not in sent_before]):
                print(
                    f"local_cloud invoke: the local SES sent an email to {email['to']}: {email['subject']}\n"
                    f"{email['text']}"
                )
        finally:
            cloud.stop()
    print(printed_result(result, failed, args.decode_body))
    return 1 if failed else 0


def openapi(args: argparse.Namespace) -> int:
    """The merged OpenAPI document of the template's routes (openapi.json at the repository's root is this)."""
    from local_cloud.gateway import merged_openapi

    with contextlib.redirect_stdout(sys.stderr):  # handlers may log to stdout while they load
        cloud = _start_cloud(with_demo_data=False)
        try:
            document = merged_openapi(cloud)
        finally:
            cloud.stop()
    print(json.dumps(document, indent=2, ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_cloud", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the whole storefront locally")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    serve_parser.add_argument("--no-demo-data", action="store_true", help="start with empty tables")
    serve_parser.set_defaults(run=serve)
    invoke_parser = commands.add_parser("invoke", help="invoke one function with an event file (like sam local invoke)")
    invoke_parser.add_argument("function", help="the function's logical id in template.yaml, e.g. CatalogFunction")
    invoke_parser.add_argument(
        "-e", "--event", required=True, help="path of the event JSON file (events/<function>/...)"
    )
    invoke_parser.add_argument(
        "--decode-body",
        action="store_true",
        help="print an HTTP response's body, parsed, instead of the whole response",
    )
    invoke_parser.add_argument("--no-demo-data", action="store_true", help="start with empty tables")
    invoke_parser.set_defaults(run=invoke)
    openapi_parser = commands.add_parser(
        "openapi", help="print the API's OpenAPI document (python -m local_cloud openapi > openapi.json)"
    )
    openapi_parser.set_defaults(run=openapi)
    args = parser.parse_args(argv)
    # Powertools says so after every invocation that counted no business event: expected, and noise here.
    warnings.filterwarnings("ignore", "No application metrics to publish")
    logging.basicConfig(
        level=os.environ.get("LOCAL_CLOUD_LOG_LEVEL", "WARNING"),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
