"""One hot SKU on the local cloud: how many orders a second its stock level takes through the stock function, with and
without DynamoDB refusing a share of the transactions on it (TransactionConflict / ThrottlingError, injected inside
moto by local_cloud/faults.py, as real DynamoDB answers a contended item).

Each order is what the saga does to the hot item: a reserve, then a commit (paid) or, one order in ten, a release,
each through the real stock function (its handler, its repository's retries and jittered backoff), from --workers
threads at once, for --seconds. A movement that gives up (StockContention) is invoked again, as the workflow's Retry
does (without its seconds of waiting), and counted. The inventory invariant is checked at the end.

    PYTHONPATH=layers/storefront:. .venv/bin/python -m benchmarks.hot_sku [--workers 1 8 32] [--refused 0 0.3]
        [--seconds 15]

Locally moto serialises every DynamoDB request (local_cloud/moto_fixes.py), so the absolute rates are the emulator's
and the machine's, not AWS's (docs/capacity.md prices the item on AWS). What carries over is the cost of the
refusals: attempts per movement, the time lost to backoff, and that none of it sells a unit twice.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from typing import Any

UNITS = 1_000_000  # never sold out: the benchmark measures the item's pace, not the sold-out path


@dataclass
class Run:
    workers: int
    refused_share: float
    orders: int = 0
    movements: int = 0
    contention: int = 0  # movements that gave up (StockContention) and were invoked again
    latencies_ms: list[float] = field(default_factory=list)  # per order: reserve + commit/release, retries included
    attempts: int = 0  # transactions on the level (DynamoDB's attempts, refused ones included)
    refused: int = 0
    seconds: float = 0.0

    def row(self) -> str:
        p50 = statistics.median(self.latencies_ms)
        p99 = (
            statistics.quantiles(self.latencies_ms, n=100)[98]
            if len(self.latencies_ms) >= 100
            else max(self.latencies_ms)
        )
        return (
            f"| {self.workers} | {self.refused_share:.0%} | {self.orders / self.seconds:.1f} | "
            f"{self.attempts / self.movements:.2f} | {self.refused} of {self.attempts} | {self.contention} | "
            f"{p50:.0f} | {p99:.0f} |"
        )


def run(stock: Any, sku: str, workers: int, refused_share: float, seconds: float) -> Run:
    from local_cloud.faults import TransactionRefusals
    from local_cloud.functions import FunctionError

    result = Run(workers, refused_share)
    lock = threading.Lock()
    start = threading.Barrier(workers)
    deadline = 0.0

    def move(action: str, order_id: str) -> None:
        while True:  # the workflow's Retry, without its waits
            try:
                stock.invoke({"action": action, "order_id": order_id, "lines": [{"sku": sku, "quantity": 1}]})
                return
            except FunctionError as error:
                if error.payload["errorType"] != "StockContention":
                    raise
                with lock:
                    result.contention += 1

    def buyer(index: int) -> None:
        start.wait()
        number = 0
        while time.monotonic() < deadline:
            order_id = uuid.uuid4().hex
            began = time.perf_counter()
            move("reserve", order_id)
            move("release" if (index + number) % 10 == 0 else "commit", order_id)
            with lock:
                result.latencies_ms.append((time.perf_counter() - began) * 1000)
                result.orders += 1
                result.movements += 2
            number += 1

    with TransactionRefusals(share=refused_share, partitions={f"SKU#{sku}"}) as refusals:
        threads = [threading.Thread(target=buyer, args=(i,)) for i in range(workers)]
        deadline = time.monotonic() + seconds + 0.5  # the barrier's wait is not measured
        began = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        result.seconds = time.monotonic() - began
    result.attempts = sum(refusals.attempts.values())
    result.refused = refusals.total_refused
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 8, 32], help="orders in flight at once")
    parser.add_argument(
        "--refused",
        type=float,
        nargs="+",
        default=[0.0, 0.3],
        help="shares of the level's transactions DynamoDB refuses",
    )
    parser.add_argument("--seconds", type=float, default=15, help="how long each level runs")
    args = parser.parse_args(argv)

    from storefront.inventory.invariant import check_inventory
    from storefront.inventory.repository import InventoryRepository

    from benchmarks.checkout_throughput import quiet_handlers
    from local_cloud.cloud import LocalCloud

    print(
        f"One hot SKU through the stock function, {args.seconds:g} s per level (Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f})\n",
        flush=True,
    )
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    with LocalCloud(
        stack_name=f"hot-sku-{uuid.uuid4().hex[:6]}", poll_queues=False, function_log_level="WARNING"
    ) as cloud:
        quiet_handlers(cloud)
        dynamodb = cloud.client("dynamodb")
        table = cloud.physical_id("InventoryTable")
        sku = f"HOT-{uuid.uuid4().hex[:8]}".upper()
        InventoryRepository(dynamodb, table).put_level(sku, UNITS)
        stock = cloud.functions["StockFunction"]
        print(
            "| orders in flight | level transactions refused | orders/s | DynamoDB attempts per movement | "
            "refused | movements given up (StockContention), invoked again | order p50 ms | order p99 ms |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for refused in args.refused:
            for workers in args.workers:
                print(run(stock, sku, workers, refused, args.seconds).row(), flush=True)
        violations = check_inventory(dynamodb, table, [sku])
    print(f"\nInventory invariant after every level: {violations or 'holds'}; load average {os.getloadavg()[0]:.2f}")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
