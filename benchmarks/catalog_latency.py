"""Catalog latency and throughput over HTTP, against the local cloud (moto + the real handler in-process).

This measures the emulator on this machine, not AWS: every request goes through the gateway emulation,
the catalog handler (FastAPI behind Mangum) and boto3 calls to moto over loopback, all in one Python process.

The load comes from a separate process (threads, one keep-alive connection each), so the clients do not
compete with the server for its GIL. Each level stops at --requests or --time-limit, whichever comes first.

    PYTHONPATH=layers/storefront:. .venv/bin/python -m benchmarks.catalog_latency [--clients 1 8] [--requests 2000]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import multiprocessing
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class Result:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    stopped_by: str


def drive(url: str, paths: list[str], clients: int, max_requests: int, time_limit: float) -> Result:
    """Runs in the load process: `clients` threads share a request budget and a deadline."""
    address = urlsplit(url)
    budget = itertools.count()  # next() on it is atomic under the GIL: a shared request counter without a lock
    samples: list[tuple[float, bool]] = []
    lock = threading.Lock()
    started = time.perf_counter()
    deadline = started + time_limit

    def client() -> None:
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        mine: list[tuple[float, bool]] = []
        while time.perf_counter() < deadline and (i := next(budget)) < max_requests:
            sent = time.perf_counter()
            try:
                connection.request("GET", paths[i % len(paths)])
                response = connection.getresponse()
                response.read()  # drain the body, or the keep-alive connection cannot be reused
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()  # http.client reconnects on the next request
            mine.append(((time.perf_counter() - sent) * 1000, ok))
        connection.close()
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    return Result(
        requests=len(samples),
        errors=sum(not ok for _, ok in samples),
        seconds=seconds,
        latencies_ms=[ms for ms, _ in samples],
        stopped_by="request count" if len(samples) >= max_requests else "time limit",
    )


def percentiles(latencies: list[float]) -> tuple[float, float, float]:
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return cuts[49], cuts[89], cuts[98]


def in_process_ms(call: Callable[[], object], times: int) -> tuple[float, float, float]:
    """p50/p90/p99 of `call()` made `times` times in this process, one at a time (after one untimed call)."""
    call()
    latencies = []
    for _ in range(times):
        sent = time.perf_counter()
        call()
        latencies.append((time.perf_counter() - sent) * 1000)
    return percentiles(latencies)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8], help="concurrency levels for one product")
    parser.add_argument("--requests", type=int, default=2000, help="requests per level at most")
    parser.add_argument("--list-requests", type=int, default=100, help="GET /products?limit=20 requests (1 client)")
    parser.add_argument("--time-limit", type=float, default=30.0, help="seconds per level at most")
    parser.add_argument("--in-process", type=int, default=100, help="calls per row of the in-process breakdown")
    parser.add_argument("--warmup", type=int, default=50, help="requests sent and discarded before measuring")
    args = parser.parse_args(argv)

    # Heavy imports here, not at module level: the load process (spawned) imports this module too.
    from local_cloud.__main__ import _start_cloud
    from local_cloud.demo_data import PRODUCTS
    from local_cloud.gateway import Gateway, build_event

    product_paths = [f"/products/{product[0]}" for product in PRODUCTS]
    list_paths = ["/products?limit=20"]
    print(
        f"Catalog over HTTP against the local cloud (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f})\n",
        flush=True,
    )

    with contextlib.ExitStack() as stack:  # unwinds in reverse: load process, gateway, then the cloud
        started = time.perf_counter()
        cloud = _start_cloud(with_demo_data=True)  # exactly as `make dev` starts it
        stack.callback(cloud.stop)
        gateway = Gateway(cloud, port=0).start()
        stack.callback(gateway.stop)
        print(
            f"Local cloud up, demo data seeded, gateway on {gateway.url}: {time.perf_counter() - started:.1f} s\n",
            flush=True,
        )
        load = stack.enter_context(ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")))

        def run(paths: list[str], clients: int, requests: int) -> Result:
            return load.submit(drive, gateway.url, paths, clients, requests, args.time_limit).result()

        # Warm-up: the load process's imports and connections, the handler's first calls (secret, clients).
        run(product_paths + list_paths, 1, args.warmup)
        levels = [
            (f"`GET /products/{{id}}` ({len(product_paths)} demo ids)", product_paths, c, args.requests)
            for c in args.clients
        ]
        levels.append(("`GET /products?limit=20`", list_paths, 1, args.list_requests))
        print("| request | clients | requests | errors | requests/s | p50 ms | p90 ms | p99 ms | stopped by |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---|", flush=True)
        errors = 0
        for label, paths, clients, requests in levels:
            result = run(paths, clients, requests)
            errors += result.errors
            p50, p90, p99 = percentiles(result.latencies_ms)
            print(
                f"| {label} | {clients} | {result.requests} | {result.errors} | "
                f"{result.requests / result.seconds:.0f} | {p50:.1f} | {p90:.1f} | {p99:.1f} | "
                f"{result.stopped_by} |",
                flush=True,
            )

        # Where one product request's time goes, without HTTP between client and gateway: the handler alone
        # (payload v2 event in, response out; it calls moto twice), and one of those moto calls alone.
        route = next(r for r in cloud.template.routes() if r.path == "/products/{product_id}")
        product_id = PRODUCTS[0][0]
        event = build_event(
            route,
            "GET",
            f"/products/{product_id}",
            [("host", "localhost")],
            b"",
            {"product_id": product_id},
            "127.0.0.1",
        )
        function = cloud.functions[route.function]
        dynamodb = cloud.client("dynamodb")
        key = {"pk": {"S": f"PRODUCT#{product_id}"}, "sk": {"S": "PRODUCT"}}
        rows = [
            (
                f"{route.function} handler invoked in-process with a `GET /products/{{id}}` event",
                lambda: function.invoke(event),
            ),
            (
                "one boto3 `GetItem` to moto over loopback",
                lambda: dynamodb.get_item(TableName=cloud.physical_id("CatalogTable"), Key=key),
            ),
        ]
        print(f"\nIn-process breakdown, 1 caller, {args.in_process} calls each\n")
        print("| call | p50 ms | p90 ms | p99 ms |")
        print("|---|---:|---:|---:|")
        for label, call in rows:
            p50, p90, p99 = in_process_ms(call, args.in_process)
            print(f"| {label} | {p50:.1f} | {p90:.1f} | {p99:.1f} |", flush=True)
        print(f"\nLoad average after the runs: {os.getloadavg()[0]:.2f}")
    return 1 if errors else 0  # a failing request is a regression, not a data point


if __name__ == "__main__":
    sys.exit(main())
