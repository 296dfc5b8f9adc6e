"""`python -m local_cloud serve` runs the storefront locally; `python -m local_cloud invoke` is a Docker-free
`sam local invoke`. Both build everything from template.yaml; see README.md."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

LOCAL_ORIGINS = "http://localhost:*,http://127.0.0.1:*"


def _start_cloud(with_demo_data: bool, carrier_step_seconds: float | None = None) -> Any:
    from local_cloud.cloud import LocalCloud
    from local_cloud.demo_data import seed

    overrides = {"AllowedOrigins": LOCAL_ORIGINS}
    if timeout := os.environ.get("PAYMENT_TIMEOUT_SECONDS"):
        overrides["PaymentTimeoutSeconds"] = timeout
    cloud = LocalCloud(parameter_overrides=overrides, carrier_step_seconds=carrier_step_seconds).start()
    if with_demo_data:
        seed(cloud)
    return cloud


def serve(args: argparse.Namespace) -> int:
    from local_cloud.gateway import Gateway

    started = time.perf_counter()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    # The local carrier moves every parcel on by itself: in transit, out for delivery, delivered.
    step = float(os.environ.get("LOCAL_CARRIER_STEP_SECONDS", "5"))
    cloud = _start_cloud(with_demo_data=not args.no_demo_data, carrier_step_seconds=step if step > 0 else None)
    gateway = Gateway(cloud, host=args.host, port=args.port).start()
    url = gateway.url
    print(f"""
Storefront local cloud is up ({time.perf_counter() - started:.1f}s); no Docker, no AWS account.

  storefront     {url}/   (web/: the demo shop; buy something and watch it be delivered)
  API            {url}
    catalog      {url}/products   {url}/products/linen-shirt   {url}/categories
    cart         POST {url}/carts   then /carts/<id>/items, /carts/<id>/shipping, GET {url}/shipping-methods?country=DE
    checkout     POST {url}/checkout (Idempotency-Key)   GET {url}/orders/<id>
    payments     POST {url}/dev/payments/<payment_id>/succeed | fail   (the local provider sends the signed webhook)
    shipping     paid orders ship with the local carrier and move on every {step:g}s (LOCAL_CARRIER_STEP_SECONDS);
                 POST {url}/dev/shipments/<tracking_number>/advance moves one on now
    events       GET {url}/dev/events   (integration events: order.placed, order.paid, ..., stock.low)
    DLQ redrive  POST {url}/dev/queues/FulfilmentDeadLetterQueue/redrive
    OpenAPI      {url}/openapi.json
  AWS (moto)     {cloud.endpoint_url}   e.g. aws --endpoint-url {cloud.endpoint_url} dynamodb list-tables
  functions      {", ".join(sorted(cloud.functions))}
  tables         {", ".join(cloud.physical_id(t) for t in sorted(cloud.template.of_type("AWS::DynamoDB::Table")))}

Ctrl-C or SIGTERM stops it.""", flush=True)
    stop.wait()
    print("Stopping...", flush=True)
    gateway.stop()
    cloud.stop()
    print("Stopped.", flush=True)
    return 0


def invoke(args: argparse.Namespace) -> int:
    """Like `sam local invoke`: the function's logs go to stderr, its response alone to stdout."""
    from local_cloud.functions import FunctionError

    event = json.loads(Path(args.event).read_text()) if args.event else {}
    with contextlib.redirect_stdout(sys.stderr):  # handlers log to stdout, as on Lambda
        cloud = _start_cloud(with_demo_data=not args.no_demo_data)
        try:
            if args.function not in cloud.functions:
                print(f"no function {args.function!r}; the template has {sorted(cloud.functions)}")
                return 2
            try:
                result, failed = cloud.functions[args.function].invoke(event), False
            except FunctionError as error:
                result, failed = error.payload, True
        finally:
            cloud.stop()
    print(json.dumps(result, indent=2))
    return 1 if failed else 0


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
    invoke_parser.add_argument("-e", "--event", help="path of the event JSON file (events/<function>/...)")
    invoke_parser.add_argument("--no-demo-data", action="store_true", help="start with empty tables")
    invoke_parser.set_defaults(run=invoke)
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("LOCAL_CLOUD_LOG_LEVEL", "WARNING"),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
