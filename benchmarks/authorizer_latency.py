"""What the local JWT authorizer adds to a request: `GET /admin/me` with the token verified (the gateway as `make dev`
runs it) against the same route with verification taken out, and the verification alone.

"Without verification" is the same gateway whose AdminJwt authorizer is replaced by a stand-in that returns the
claims the real one produced for the same token, so both variants build and deliver the same event to the same
function. Variants alternate in rounds, so drift on a shared machine hits both alike. This measures the emulator
(joserfc, RS256) on this machine, not API Gateway, which caches verified tokens on its side.

    PYTHONPATH=layers/storefront:. .venv/bin/python -m benchmarks.authorizer_latency [--requests 1000] [--rounds 10]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import multiprocessing
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from benchmarks.catalog_latency import percentiles


def http_latencies(url: str, path: str, headers: dict[str, str], requests: int) -> list[float]:
    """Runs in the load process: `requests` GETs, one at a time on one keep-alive connection; ms each."""
    address = urlsplit(url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    latencies = []
    for _ in range(requests):
        sent = time.perf_counter()
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}")
        latencies.append((time.perf_counter() - sent) * 1000)
    connection.close()
    return latencies


class PreverifiedClaims:
    """Stands in for the authorizer: the context the real one produced for the benchmark's token, unverified."""

    def __init__(self, context: dict[str, Any]) -> None:
        self.context = context

    def authorize(self, headers: list[tuple[str, str]]) -> dict[str, Any]:
        return self.context


def _row(label: str, latencies: list[float]) -> str:
    p50, p90, p99 = percentiles(latencies)
    return f"| {label} | {len(latencies)} | {p50:.2f} | {p90:.2f} | {p99:.2f} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="requests per variant, over HTTP and in-process")
    parser.add_argument("--rounds", type=int, default=10, help="alternations of the two variants")
    parser.add_argument("--verifications", type=int, default=5000, help="calls of the verification alone")
    parser.add_argument("--cold", type=int, default=50, help="first verifications by a new authorizer (keys fetched)")
    args = parser.parse_args(argv)

    from local_cloud.__main__ import _start_cloud
    from local_cloud.authorizer import jwt_authorizers
    from local_cloud.gateway import Gateway

    print(
        f"The local JWT authorizer on GET /admin/me (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f})\n",
        flush=True,
    )
    with contextlib.ExitStack() as stack:
        cloud = _start_cloud(with_demo_data=False)
        stack.callback(cloud.stop)
        verified = Gateway(cloud, port=0).start()
        stack.callback(verified.stop)
        assert verified.user_pool is not None
        token = verified.user_pool.mint_token(["admin"])["access_token"]
        headers = [("Authorization", f"Bearer {token}")]
        authorizer = verified.authorizers["AdminJwt"]
        context = authorizer.authorize(headers)
        assert context is not None, "the minted token was refused"
        unverified = Gateway(cloud, port=0)
        unverified.authorizers = {"AdminJwt": PreverifiedClaims(context)}  # type: ignore[dict-item]
        unverified.start()
        stack.callback(unverified.stop)
        load = stack.enter_context(ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")))

        def over_http(gateway: Gateway, requests: int) -> list[float]:
            return load.submit(http_latencies, gateway.url, "/admin/me", dict(headers), requests).result()

        def in_process(gateway: Gateway, requests: int) -> list[float]:
            latencies = []
            for _ in range(requests):
                sent = time.perf_counter()
                status, _, _ = gateway.handle("GET", "/admin/me", headers, b"", "127.0.0.1")
                latencies.append((time.perf_counter() - sent) * 1000)
                assert status == 200, status
            return latencies

        for gateway in (verified, unverified):  # warm-up: imports, connections, the key set's first fetch
            over_http(gateway, 50)
            in_process(gateway, 50)
        per_round = max(1, args.requests // args.rounds)
        samples: dict[str, list[float]] = {name: [] for name in ("http+", "http-", "handle+", "handle-")}
        for _ in range(args.rounds):
            samples["http+"] += over_http(verified, per_round)
            samples["http-"] += over_http(unverified, per_round)
            samples["handle+"] += in_process(verified, per_round)
            samples["handle-"] += in_process(unverified, per_round)
        verification = []
        for _ in range(args.verifications):
            sent = time.perf_counter()
            authorizer.authorize(headers)
            verification.append((time.perf_counter() - sent) * 1000)
        api_auth = cloud.template.resolve(cloud.template.resources["HttpApi"]["Properties"]["Auth"])
        cold = []
        for _ in range(args.cold):  # a new authorizer fetches the discovery document, then the key set, from moto
            fresh = jwt_authorizers(api_auth, cloud.region, cloud.endpoint_url)["AdminJwt"]
            sent = time.perf_counter()
            fresh.authorize(headers)
            cold.append((time.perf_counter() - sent) * 1000)

        print("| measurement | samples | p50 ms | p90 ms | p99 ms |")
        print("|---|---:|---:|---:|---:|")
        print(_row("`GET /admin/me` over HTTP, token verified", samples["http+"]))
        print(_row("`GET /admin/me` over HTTP, verification taken out", samples["http-"]))
        print(_row("gateway `handle()` in-process, token verified", samples["handle+"]))
        print(_row("gateway `handle()` in-process, verification taken out", samples["handle-"]))
        print(_row("verification alone (`JwtAuthorizer.authorize`, keys cached)", verification))
        print(_row("first verification of a new authorizer (discovery + key set fetched from moto)", cold))
        added_http = statistics.median(samples["http+"]) - statistics.median(samples["http-"])
        added_handle = statistics.median(samples["handle+"]) - statistics.median(samples["handle-"])
        print(
            f"\nAdded by verification, difference of medians: {added_http:.2f} ms over HTTP, "
            f"{added_handle:.2f} ms in-process; verification alone {statistics.median(verification):.2f} ms."
        )
        print(f"Load average after the runs: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
