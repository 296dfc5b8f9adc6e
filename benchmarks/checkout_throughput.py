"""Checkout throughput and latency over HTTP, against the local cloud (moto + the real handlers in-process).

This measures the emulator on this machine, not AWS: every request goes through the gateway emulation, the
checkout handler and boto3 calls to moto over loopback, and every saga runs in moto's Step Functions engine,
which invokes the stock and payments handlers and the local payment provider, all in one Python process.

Set-up, written directly (not timed, not over HTTP): one product with plenty of stock (so every reservation
updates the same SKU's level item: a hot item, as in a sale), and one ready cart (one line, one unit, shipping
chosen) per checkout. Then, per concurrency level, `clients` threads in a separate load process (so the clients
do not compete with the server for its GIL) each keep one keep-alive connection and POST /checkout with a fresh
Idempotency-Key, until the level's carts are used up or its time limit passes. Reported per level:

  - checkouts/s: 202 responses / wall time from the first request sent to the last answer received;
  - p50/p95 of the POST /checkout latency (the client's view: send to full answer);
  - p50/p95 from sending the POST to the order reaching `awaiting_payment` (ReserveStock and CreatePayment
    done: the shopper can pay). This is not polled: it is the timestamp the payments function writes into the
    order's `history` with the transition, minus the client's send time (both wall clock on this machine).
    Nothing polls while a level's POSTs run; afterwards, to know when the level is done, the runner reads the
    outstanding orders with one strongly consistent BatchGetItem (≤100 keys) every --poll seconds, straight
    from DynamoDB (not over HTTP: no handler runs for it);
  - orders→awaiting_payment/s: orders that got there / (last one's timestamp - first POST sent);
  - server CPU per order: this process's CPU time over the level / 202s, and where it went (CpuBreakdown):
    moto's DynamoDB, the function handlers, moto's Step Functions engine, the rest;
  - invocations that ran past their function's 10 s Timeout in-process (Lambda would have stopped them;
    the local cloud only warns, and those warnings are counted here instead of printed);
  - errors: non-202 answers and transport errors, and orders that did not reach awaiting_payment in time
    (or ended elsewhere, e.g. rejected). After the run the inventory invariant is checked (no oversell).

A level ends when its carts or its time limit run out; then the runner waits (at most --settle-limit s) for
its orders to reach awaiting_payment before the next level starts, so levels do not overlap. Orders stay
parked in awaiting_payment (WaitForPayment): a parked execution is a waiting thread, no CPU.

    PYTHONPATH=layers/storefront:. .venv/bin/python -m benchmarks.checkout_throughput
        [--clients 1 10 50] [--checkouts 30 100 150] [--time-limit 30] [--settle-limit 45]
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import multiprocessing
import os
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "Unter den Linden 1",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "DE",
}
LOCAL_ORIGINS = "http://localhost:*,http://127.0.0.1:*"
SETTLED = {"awaiting_payment", "paid", "rejected", "payment_failed", "expired", "cancelled"}


# ---------------------------------------------------------------- the load process


@dataclass
class Sample:
    cart_id: str
    sent_at: float  # wall clock (time.time()), to compare with the order's history timestamps
    latency_ms: float
    status: int  # 0: transport error
    order_id: str | None
    error: str = ""


@dataclass
class LoadResult:
    samples: list[Sample]
    seconds: float
    stopped_by: str


def checkout_body(cart_id: str) -> bytes:
    return json.dumps({"cart_id": cart_id, "email": "ada@example.com", "shipping_address": ADDRESS}).encode()


def drive(url: str, cart_ids: list[str], clients: int, time_limit: float) -> LoadResult:
    """Runs in the load process: `clients` threads share the carts and a deadline, one connection each."""
    address = urlsplit(url)
    carts = iter(cart_ids)
    take = threading.Lock()
    samples: list[Sample] = []
    lock = threading.Lock()
    started = [0.0]
    start = threading.Barrier(clients, action=lambda: started.__setitem__(0, time.perf_counter()))

    def client() -> None:
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=120)
        mine: list[Sample] = []
        start.wait()
        deadline = started[0] + time_limit
        while time.perf_counter() < deadline:
            with take:
                cart_id = next(carts, None)
            if cart_id is None:
                break
            sent_wall, sent = time.time(), time.perf_counter()
            try:
                connection.request(
                    "POST",
                    "/checkout",
                    body=checkout_body(cart_id),
                    headers={"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex},
                )
                response = connection.getresponse()
                body = response.read()  # drain the body, or the keep-alive connection cannot be reused
                order_id = json.loads(body).get("id") if response.status in (200, 202) else None
                sample = Sample(
                    cart_id,
                    sent_wall,
                    (time.perf_counter() - sent) * 1000,
                    response.status,
                    order_id,
                    "" if response.status == 202 else body[:200].decode("utf-8", "replace"),
                )
            except (OSError, http.client.HTTPException, ValueError) as error:
                connection.close()  # http.client reconnects on the next request
                sample = Sample(
                    cart_id, sent_wall, (time.perf_counter() - sent) * 1000, 0, None, f"{type(error).__name__}: {error}"
                )
            mine.append(sample)
        connection.close()
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ended = time.perf_counter()
    first_sent = min((s.sent_at for s in samples), default=0.0)
    last_done = max((s.sent_at + s.latency_ms / 1000 for s in samples), default=0.0)
    return LoadResult(
        samples,
        last_done - first_sent if samples else ended - started[0],
        "carts used up" if len(samples) == len(cart_ids) else "time limit",
    )


# ---------------------------------------------------------------- the shop, written directly


class Shop:
    """Products and ready carts written straight into the tables, and order reads straight from DynamoDB."""

    def __init__(self, cloud: Any, dynamodb: Any) -> None:
        from storefront.cart.repository import CartRepository
        from storefront.catalog.repository import CatalogRepository
        from storefront.inventory.repository import InventoryRepository

        self.cloud = cloud
        self.dynamodb = dynamodb
        self.catalog = CatalogRepository(dynamodb, cloud.physical_id("CatalogTable"))
        self.inventory = InventoryRepository(dynamodb, cloud.physical_id("InventoryTable"))
        self.carts = CartRepository(dynamodb, cloud.physical_id("CartTable"))
        self.orders_table = cloud.physical_id("OrdersTable")

    def product(self, units: int, price: int = 1000) -> str:
        """A new product with one SKU and `units` in stock; returns the SKU."""
        from storefront.catalog.models import StoredProduct, StoredVariant
        from storefront.money import Money

        product_id = f"bench-{uuid.uuid4().hex[:10]}"
        sku = product_id.upper() + "-ONE"
        self.catalog.put_product(
            StoredProduct(
                id=product_id,
                name="Benchmark product",
                description="",
                category="test",
                images=[],
                variants=[StoredVariant(sku=sku, title="One", price=Money(amount=price, currency="EUR"))],
            )
        )
        self.inventory.put_level(sku, units)
        return sku

    def cart(self, sku: str, quantity: int = 1, price: int = 1000) -> str:
        """A cart ready for checkout: one line, standard shipping to DE."""
        from storefront.cart.models import StoredCart, StoredLine, StoredShipping
        from storefront.money import Money

        now = datetime.now(UTC)
        cart_id = uuid.uuid4().hex
        self.carts.create(
            StoredCart(
                id=cart_id,
                currency="EUR",
                version=1,
                created_at=now,
                updated_at=now,
                expires_at=now + timedelta(hours=2),
                lines=[StoredLine(sku=sku, quantity=quantity, seen_price=Money(amount=price, currency="EUR"))],
                shipping=StoredShipping(country="DE", method="standard"),
            )
        )
        return cart_id

    def orders(self, order_ids: list[str]) -> dict[str, dict[str, Any]]:
        """{order id: {"status", "history": [(status, datetime)], "payment_id"}}, strongly consistent,
        100 keys per BatchGetItem."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(order_ids), 100):
            pending: dict[str, Any] = {
                self.orders_table: {
                    "Keys": [{"pk": {"S": f"ORDER#{i}"}, "sk": {"S": "ORDER"}} for i in order_ids[start : start + 100]],
                    "ConsistentRead": True,
                    "ProjectionExpression": "id, #status, history, payment",
                    "ExpressionAttributeNames": {"#status": "status"},
                }
            }
            while pending:
                response = self.dynamodb.batch_get_item(RequestItems=pending)
                for item in response["Responses"].get(self.orders_table, []):
                    history = [
                        (h["M"]["status"]["S"], datetime.fromisoformat(h["M"]["at"]["S"]))
                        for h in item.get("history", {}).get("L", [])
                    ]
                    payment = item.get("payment", {}).get("M", {})
                    found[item["id"]["S"]] = {
                        "status": item["status"]["S"],
                        "history": history,
                        "payment_id": payment.get("payment_id", {}).get("S"),
                    }
                pending = response.get("UnprocessedKeys") or {}
        return found

    def wait_until(
        self, order_ids: list[str], done: set[str], timeout: float, poll: float = 0.5
    ) -> dict[str, dict[str, Any]]:
        """Read the orders until every one has a status in `done`, or `timeout` passes; the last reading."""
        deadline = time.monotonic() + timeout
        settled: dict[str, dict[str, Any]] = {}
        outstanding = list(order_ids)
        while outstanding:
            for order_id, order in self.orders(outstanding).items():
                if order["status"] in done:
                    settled[order_id] = order
            outstanding = [i for i in outstanding if i not in settled]
            if not outstanding or time.monotonic() > deadline:
                break
            time.sleep(poll)
        if outstanding:
            settled.update(self.orders(outstanding))
        return settled


def start_cloud(parameter_overrides: dict[str, str] | None = None) -> tuple[Any, Any]:
    """LocalCloud + demo data + the gateway on a free port, as tests/integration/test_checkout_saga.py does."""
    from local_cloud.cloud import LocalCloud
    from local_cloud.demo_data import seed
    from local_cloud.gateway import Gateway

    # As `make dev` runs quiet: no EMF blobs (the demo data's own service calls count business metrics outside any
    # function, where no namespace is set). Metrics cost no AWS request, so nothing measured here changes.
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    cloud = LocalCloud(parameter_overrides={"AllowedOrigins": LOCAL_ORIGINS, **(parameter_overrides or {})})
    cloud.start()
    seed(cloud)
    quiet_handlers(cloud)
    gateway = Gateway(cloud, port=0).start()
    return cloud, gateway


def quiet_handlers(cloud: Any, level: str = "WARNING") -> None:
    """The handlers log every step at INFO to stdout (as on Lambda): keep the benchmark's output readable.
    Powertools loggers are per module; this sets the level of each loaded handler's `logger`."""
    for function in cloud.functions.values():
        logger = getattr(function.module, "logger", None)
        if logger is not None and hasattr(logger, "setLevel"):
            logger.setLevel(level)


# ---------------------------------------------------------------- where the server's CPU goes


class CpuBreakdown:
    """This process's CPU time by component, per thread (Linux per-thread CPU clocks, and each thread's own total
    when it ends) and per region (time.thread_time() around moto's DynamoDB request handling and around each
    function invocation). Buckets:

      DynamoDB (moto)        moto's DynamoDB request handling (DynamoHandler.call_action, the lock excluded);
      function handlers      LocalFunction.invoke, in whichever thread, plus FastAPI's worker threads that run the
                             sync endpoints: the handlers' own code and the client side of their boto3 calls;
      Step Functions engine  the threads moto's ASL interpreter runs executions in (and the client side of the
                             SDK calls it makes);
      the rest               every other thread's CPU: the HTTP servers (the gateway emulation, moto's werkzeug
                             request routing, the payment provider), moto's Lambda/Step Functions/SQS APIs.
    The runner's own thread (the main thread: set-up and the low-rate order reads) is left out."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._regions: Counter[str] = Counter()
        self._ended: list[tuple[threading.Thread, str, float]] = []
        self._baseline: dict[threading.Thread, float] = {}

    def install(self) -> None:
        from moto.dynamodb.responses import DynamoHandler

        from local_cloud.functions import LocalFunction

        breakdown = self
        original_action, original_invoke = DynamoHandler.call_action, LocalFunction.invoke
        original_boot = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

        def call_action(handler: Any) -> Any:
            started = time.thread_time()
            try:
                return original_action(handler)
            finally:
                breakdown._add("dynamodb", time.thread_time() - started)

        def invoke(function: Any, event: Any) -> Any:
            started = time.thread_time()
            try:
                return original_invoke(function, event)
            finally:
                breakdown._add("handlers", time.thread_time() - started)

        def bootstrap_inner(thread: threading.Thread) -> None:
            kind = breakdown._kind(thread)  # now: Thread.run forgets its target when it ends
            try:
                original_boot(thread)
            finally:
                with breakdown._lock:
                    breakdown._ended.append((thread, kind, time.thread_time()))

        DynamoHandler.call_action = call_action  # type: ignore[method-assign]
        LocalFunction.invoke = invoke  # type: ignore[method-assign]
        threading.Thread._bootstrap_inner = bootstrap_inner  # type: ignore[attr-defined]

    def _add(self, region: str, seconds: float) -> None:
        with self._lock:
            self._regions[region] += seconds

    @staticmethod
    def _cpu(thread: threading.Thread) -> float | None:
        try:
            return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))  # type: ignore[arg-type]
        except (OSError, TypeError):
            return None  # not started, or just ended (then it is in _ended)

    @staticmethod
    def _kind(thread: threading.Thread) -> str:
        if thread is threading.main_thread():
            return "runner"
        if type(thread).__module__.startswith("anyio"):
            return "handlers"
        target = getattr(thread, "_target", None)
        owner = getattr(target, "__self__", None)
        module = type(owner).__module__ if owner is not None else getattr(target, "__module__", "") or ""
        return "sfn" if module.startswith("moto.stepfunctions") else "other"

    def start(self) -> None:
        with self._lock:
            self._regions.clear()
            self._ended.clear()
            self._baseline = {t: cpu for t in threading.enumerate() if (cpu := self._cpu(t)) is not None}

    def stop(self) -> dict[str, float]:
        """CPU seconds per bucket since start(): dynamodb, handlers, sfn, rest, total."""
        with self._lock:
            ended, regions = list(self._ended), Counter(self._regions)
        per_kind: Counter[str] = Counter()
        seen = set()
        for thread, kind, cpu in ended:
            seen.add(thread)
            per_kind[kind] += cpu - self._baseline.get(thread, 0.0)
        for thread in threading.enumerate():
            if thread not in seen and (cpu := self._cpu(thread)) is not None:
                per_kind[self._kind(thread)] += cpu - self._baseline.get(thread, 0.0)
        total = sum(v for k, v in per_kind.items() if k != "runner")
        handlers = regions["handlers"] + per_kind["handlers"]
        return {
            "dynamodb": regions["dynamodb"],
            "handlers": handlers,
            "sfn": per_kind["sfn"],
            "rest": total - regions["dynamodb"] - handlers - per_kind["sfn"],
            "total": total,
        }


# ---------------------------------------------------------------- reporting


def quantile(values: list[float], q: float) -> float:
    """The q-quantile (0..1), interpolated; NaN for no values."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def ms(value: float) -> str:
    return "–" if value != value else f"{value:.0f}"  # NaN -> dash


@dataclass
class Level:
    clients: int
    carts: int
    result: LoadResult
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    settle_seconds: float = 0.0
    cpu_seconds: float = 0.0  # this (server) process's CPU time from the level's start until its orders settled
    over_timeout: int = 0  # invocations that ran longer than their function's Timeout, in-process
    cpu: dict[str, float] = field(default_factory=dict)  # CpuBreakdown.stop()

    @property
    def accepted(self) -> list[Sample]:
        return [s for s in self.result.samples if s.status == 202 and s.order_id]

    def to_awaiting_ms(self) -> list[float]:
        latencies = []
        for sample in self.accepted:
            order = self.orders.get(sample.order_id or "")
            at = next((t for status, t in (order or {}).get("history", []) if status == "awaiting_payment"), None)
            if at is not None:
                latencies.append((at.timestamp() - sample.sent_at) * 1000)
        return latencies

    def errors(self) -> str:
        counts: Counter[str] = Counter()
        for sample in self.result.samples:
            if sample.status != 202:
                counts[f"HTTP {sample.status}" if sample.status else "transport"] += 1
        for sample in self.accepted:
            status = (self.orders.get(sample.order_id or "") or {}).get("status", "unread")
            if status != "awaiting_payment":
                counts[f"order {status}"] += 1
        return ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "0"

    def row(self) -> str:
        accepted = self.accepted
        post = [s.latency_ms for s in self.result.samples if s.status == 202]
        waits = self.to_awaiting_ms()
        last_awaiting = max(
            (t.timestamp() for o in self.orders.values() for s, t in o["history"] if s == "awaiting_payment"),
            default=None,
        )
        first_sent = min((s.sent_at for s in self.result.samples), default=None)
        saga_rate = (len(waits) / (last_awaiting - first_sent)) if waits and last_awaiting and first_sent else 0.0
        return (
            f"| {self.clients} | {len(self.result.samples)}/{self.carts} | {len(accepted)} | "
            f"{len(accepted) / self.result.seconds:.1f} | {ms(quantile(post, 0.5))} | {ms(quantile(post, 0.95))} | "
            f"{ms(quantile(waits, 0.5))} | {ms(quantile(waits, 0.95))} | {saga_rate:.1f} | "
            f"{self.cpu_seconds * 1000 / max(len(accepted), 1):.0f} | {self.over_timeout} | {self.errors()} | "
            f"{self.result.stopped_by} |"
        )


HEADER = (
    "| clients | POSTs sent/carts | 202s | checkouts/s | POST p50 ms | POST p95 ms | "
    "POST→awaiting_payment p50 ms | p95 ms | orders→awaiting_payment/s | server CPU ms/order | "
    "invocations over 10 s timeout | errors | stopped by |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
)


class OverTimeout(logging.Filter):
    """Counts (and keeps off stderr) the local cloud's warning that an invocation ran past its function's Timeout:
    in one process, queued work makes invocations long; on Lambda each would have been stopped at 10 s."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if "over its" in record.getMessage():
            self.count += 1
            return False
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 10, 50], help="concurrency levels")
    parser.add_argument(
        "--checkouts",
        type=int,
        nargs="+",
        default=[30, 100, 150],
        help="carts (checkouts) per level, at most; one value per level, or one for all",
    )
    parser.add_argument("--time-limit", type=float, default=30.0, help="seconds of sending per level at most")
    parser.add_argument(
        "--settle-limit",
        type=float,
        default=45.0,
        help="seconds to wait after a level for its orders to reach awaiting_payment",
    )
    parser.add_argument("--poll", type=float, default=0.5, help="seconds between reads of outstanding orders")
    parser.add_argument("--warmup", type=int, default=3, help="checkouts sent and waited for before measuring")
    args = parser.parse_args(argv)
    if len(args.checkouts) == 1:
        args.checkouts *= len(args.clients)
    if len(args.checkouts) != len(args.clients):
        parser.error("give one --checkouts value per --clients level, or a single one")

    import boto3

    print(
        f"Checkout over HTTP against the local cloud (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f} before start)\n",
        flush=True,
    )
    started = time.perf_counter()
    over_timeout = OverTimeout()
    logging.getLogger("local_cloud").addFilter(over_timeout)
    cloud, gateway = start_cloud()
    breakdown = CpuBreakdown()
    breakdown.install()
    try:
        dynamodb = boto3.client("dynamodb", region_name=cloud.region, endpoint_url=cloud.endpoint_url)
        shop = Shop(cloud, dynamodb)
        total = args.warmup + sum(args.checkouts)
        sku = shop.product(units=total + 100)
        carts = [shop.cart(sku) for _ in range(total)]
        print(
            f"Local cloud up, demo data seeded, gateway on {gateway.url}, 1 product with {total + 100} units "
            f"and {total} ready carts written: {time.perf_counter() - started:.1f} s\n",
            flush=True,
        )

        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as load:
            # Warm-up: the load process's imports, the handlers' first calls, moto's first execution.
            warm = load.submit(drive, gateway.url, carts[: args.warmup], 1, args.time_limit).result()
            shop.wait_until([s.order_id for s in warm.samples if s.order_id], SETTLED, args.settle_limit)
            offset = args.warmup
            levels: list[Level] = []
            print(HEADER, flush=True)
            for clients, count in zip(args.clients, args.checkouts, strict=True):
                batch, offset = carts[offset : offset + count], offset + count
                cpu, over_timeout.count = time.process_time(), 0
                breakdown.start()
                result = load.submit(drive, gateway.url, batch, clients, args.time_limit).result()
                level = Level(clients, count, result)
                settle_started = time.monotonic()
                level.orders = shop.wait_until(
                    [s.order_id for s in level.accepted if s.order_id], SETTLED, args.settle_limit, args.poll
                )
                level.settle_seconds = time.monotonic() - settle_started
                level.cpu_seconds, level.over_timeout = time.process_time() - cpu, over_timeout.count
                level.cpu = breakdown.stop()
                levels.append(level)
                print(level.row(), flush=True)

        print(
            "\nWhere the server process's CPU went, per accepted checkout, through awaiting_payment "
            "(ms; see CpuBreakdown)\n\n| clients | DynamoDB (moto) | function handlers | "
            "Step Functions engine (moto) | the rest | total (threads) | process CPU |\n"
            "|---:|---:|---:|---:|---:|---:|---:|"
        )
        for level in levels:
            n = max(len(level.accepted), 1)
            share = {k: v / level.cpu["total"] if level.cpu["total"] else 0 for k, v in level.cpu.items()}
            print(
                f"| {level.clients} | "
                + " | ".join(
                    f"{level.cpu[k] * 1000 / n:.0f} ({share[k]:.0%})" for k in ("dynamodb", "handlers", "sfn", "rest")
                )
                + f" | {level.cpu['total'] * 1000 / n:.0f} | {level.cpu_seconds * 1000 / n:.0f} |"
            )

        from storefront.inventory.invariant import check_inventory

        problems = check_inventory(dynamodb, cloud.physical_id("InventoryTable"))
        level_now = shop.inventory.level(sku)
        print(
            f"\nInventory invariant after the run (no unit sold twice, ledger = levels): "
            f"{problems or 'ok'}; the product: "
            + (
                f"on_hand {level_now.on_hand}, reserved {level_now.reserved}, available {level_now.available}"
                if level_now
                else "missing"
            )
        )
        for level in levels:
            examples = [s.error for s in level.result.samples if s.status != 202][:2]
            if examples:
                print(f"Example errors at {level.clients} clients: {examples}")
        print(f"Load average after the runs: {os.getloadavg()[0]:.2f}; whole run {time.perf_counter() - started:.0f} s")
        failed = any(level.errors() != "0" for level in levels)
    finally:
        gateway.stop()
        cloud.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
