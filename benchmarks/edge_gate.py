"""What the edge's gate (storefront/http.py, EdgeOnly) costs a request: one HTTP function's route through Mangum, as
Lambda runs it, with the edge off, with CloudFront's origin header (the secret cached, as in a warm environment),
and refused (no header; a wrong one). The secret sits in an in-process moto Secrets Manager; after the first
request of each variant it comes from Powertools' cache, so no variant's timings include a Secrets Manager call.
Variants alternate in rounds, so drift on a shared machine hits them alike.

    PYTHONPATH=layers/storefront:. .venv/bin/python -m benchmarks.edge_gate [--requests 2000] [--rounds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

from fastapi import Request  # at module level: the route's annotation is resolved from this module's names

from benchmarks.catalog_latency import percentiles

ORIGIN_HEADER_VALUE = secrets.token_hex(32)


def _function(secret_id: str) -> Callable[[dict[str, str]], dict[str, Any]]:
    """A minimal HTTP function (create_app, http_handler) whose one route answers the client's address."""
    from aws_lambda_powertools import Logger
    from storefront.config import EdgeSettings
    from storefront.http import client_ip, create_app
    from storefront.observability import http_handler

    from local_cloud.functions import LambdaContext

    app = create_app("bench", edge=EdgeSettings(EDGE_ORIGIN_SECRET_ID=secret_id))

    @app.get("/shop")
    def shop(request: Request) -> dict[str, str]:
        return {"client_ip": client_ip(request)}

    handler = http_handler(app, Logger(service="bench", level="WARNING"))
    context = LambdaContext("bench", "arn:aws:lambda:us-east-1:123456789012:function:bench", 1024, 10)

    def call(headers: dict[str, str]) -> dict[str, Any]:
        event = {
            "version": "2.0",
            "routeKey": "GET /shop",
            "rawPath": "/shop",
            "rawQueryString": "",
            "headers": {"host": "api-origin.shop.example.com", **headers},
            "isBase64Encoded": False,
            "requestContext": {
                "http": {
                    "method": "GET",
                    "path": "/shop",
                    "protocol": "HTTP/1.1",
                    "sourceIp": "130.176.0.10",
                    "userAgent": "Amazon CloudFront",
                },
                "requestId": "r",
                "routeKey": "GET /shop",
                "stage": "$default",
            },
        }
        return handler(event, context)  # type: ignore[no-any-return]

    return call


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="requests per variant")
    parser.add_argument("--rounds", type=int, default=10, help="alternations of the variants")
    args = parser.parse_args(argv)

    import boto3
    from moto import mock_aws

    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # no EMF blob printed per request
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "bench")
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    )
    print(
        f"The edge's gate on GET /shop through Mangum (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f})\n",
        flush=True,
    )
    with mock_aws():
        arn = boto3.client("secretsmanager").create_secret(
            Name="edge-origin", SecretString=json.dumps({"blue": ORIGIN_HEADER_VALUE, "green": ""})
        )["ARN"]
        off, on = _function(""), _function(arn)
        passed = "edge on, CloudFront's header (secret cached)"
        variants: dict[str, tuple[Callable[[dict[str, str]], dict[str, Any]], dict[str, str], int]] = {
            "edge off": (off, {}, 200),
            passed: (
                on,
                {"x-origin-verify": ORIGIN_HEADER_VALUE, "cloudfront-viewer-address": "198.51.100.7:443"},
                200,
            ),
            "edge on, no header: refused": (on, {}, 403),
            "edge on, a wrong header: refused": (on, {"x-origin-verify": "x" * 64}, 403),
        }
        latencies: dict[str, list[float]] = {name: [] for name in variants}
        for call, headers, status in variants.values():
            warm = call(headers)  # imports, the secret into the cache
            if warm["statusCode"] != status:
                raise RuntimeError(f"warm-up answered {warm['statusCode']} {warm['body']}")
        per_round = max(1, args.requests // args.rounds)
        for _ in range(args.rounds):
            for name, (call, headers, status) in variants.items():
                for _ in range(per_round):
                    started = time.perf_counter()
                    response = call(headers)
                    latencies[name].append((time.perf_counter() - started) * 1000)
                    if response["statusCode"] != status:
                        raise RuntimeError(f"{name}: {response['statusCode']} {response['body']}")
    print("| request | samples | p50 ms | p90 ms | p99 ms |\n|---|---:|---:|---:|---:|")
    for name, values in latencies.items():
        p50, p90, p99 = percentiles(values)
        print(f"| {name} | {len(values)} | {p50:.3f} | {p90:.3f} | {p99:.3f} |")
    base = statistics.median(latencies["edge off"])
    print(
        f"\nAdded by the gate to a request it passes, difference of medians: "
        f"{statistics.median(latencies[passed]) - base:.3f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
