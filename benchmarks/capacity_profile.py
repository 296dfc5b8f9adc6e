"""What one unit of work costs, measured on the local cloud: the per-request figures the capacity model
(benchmarks/capacity.py) multiplies by the load. Writes benchmarks/capacity_profile.json.

A unit of work is one invocation of a function for one kind of event, named "<Function>: <kind>": the HTTP route
key ("CatalogFunction: GET /products/{product_id}"), the workflow task's payload action ("StockFunction: reserve"),
or a batch ("FulfilmentFunction: SQS batch", counted per message; "IntegrationEventsFunction: DynamoDB stream
batch", per record). For each, per invocation (per message or record for batches):

  duration_ms         median in-process wall time on this machine (an emulator's; see docs/capacity.md)
  tables              per table (logical id): read and write request units computed from item sizes by DynamoDB's
                      rules (benchmarks/order_cost.py's meter), and items written (= stream records, where the
                      table has a stream)
  indexes             read units of queries on each global secondary index
  one_level_item      the most units one stock level item (pk SKU#<sku>, sk LEVEL) took: what a hot SKU's item
                      takes per unit of work
  one_sku_partition   the same for one SKU's partition key (its level and its orders' reservation lines)
  calls               every AWS API call it made, by service and operation, DynamoDB's included

What runs (each over HTTP, as a shopper and the shop would; nothing else is measured):
  views          GET /products/{id} for every demo product, GET /products?limit=20, GET /categories (--repeat each)
  cart journey   POST /carts, POST /carts/{id}/items, GET /shipping-methods?country=DE, PUT /carts/{id}/shipping,
                 GET /carts/{id} (--repeat times, on a product with plenty of stock)
  orders         benchmarks/order_cost.py's scenarios (delivered, declined then paid, payment declined, out of
                 stock, expired, refunded after a late payment), --repeat times each, with PaymentTimeoutSeconds=5
                 and PaymentProcessingGraceSeconds=5

    PYTHONPATH=layers/storefront:. .venv/bin/python -m benchmarks.capacity_profile [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextvars
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.capacity import BATCH_KINDS, PROFILE_PATH
from benchmarks.checkout_throughput import Shop, start_cloud
from benchmarks.order_cost import (
    SCENARIOS,
    Api,
    Context,
    Meter,
    Target,
    Usage,
    _event_kind,
    run_scenario,
    target_units,
)


class ProfileMeter(Meter):
    """order_cost's meter, with the unit of work in every caller's name, and per-item figures besides."""

    def __init__(self) -> None:
        super().__init__()
        self._kind: contextvars.ContextVar[str | None] = contextvars.ContextVar("kind", default=None)
        self._invocation: contextvars.ContextVar[int] = contextvars.ContextVar("invocation", default=0)
        self._ids = itertools.count(1)
        self.records: Counter[str] = Counter()  # work -> messages or stream records handed to it
        self.written: Counter[tuple[str, str]] = Counter()  # (work, table) -> items written
        self.index_rru: Counter[tuple[str, str]] = Counter()  # (work, "Table/Index") -> read units
        # (work, "level" | "partition", key) -> [rru, wru, invocations that touched it]
        self.items: dict[tuple[str, str, str], list[Any]] = {}

    def caller(self) -> str:
        """'<Function>: <kind>#<invocation>': the unit of work, and which invocation of it (for per-item figures)."""
        kind = self._kind.get()
        work = f"{super().caller()}: {kind}" if kind else super().caller()
        return f"{work}#{self._invocation.get()}"

    def install(self, cloud: Any) -> None:
        from local_cloud.functions import LocalFunction

        super().install(cloud)
        metered = LocalFunction.invoke
        meter = self

        def invoke(function: Any, event: Any) -> Any:
            kind = _event_kind(event)
            if meter.active and isinstance(event, dict) and kind in BATCH_KINDS:
                with meter._lock:
                    meter.records[f"{function.logical_id}: {kind}"] += len(event.get("Records", []))
            kind_token = meter._kind.set(kind)
            id_token = meter._invocation.set(next(meter._ids))
            try:
                return metered(function, event)
            finally:
                meter._kind.reset(kind_token)
                meter._invocation.reset(id_token)

        LocalFunction.invoke = invoke  # type: ignore[method-assign]

    def _units(
        self,
        caller: str,
        operation: str,
        body: dict[str, Any],
        targets: list[Target],
        before: list[int],
        after: list[int],
        status: int,
        response_body: Any,
    ) -> list[Any]:
        uses = super()._units(caller, operation, body, targets, before, after, status, response_body)
        text = response_body.decode() if isinstance(response_body, bytes) else str(response_body or "")
        charged = status < 400 or "ConditionalCheckFailed" in text or "TransactionCanceled" in text
        work, invocation = caller.rsplit("#", 1)
        with self._lock:
            if operation == "Query" and body.get("IndexName") and uses:
                self.index_rru[
                    (work, f"{self.tables.get(body['TableName'], body['TableName'])}/{body['IndexName']}")
                ] += uses[0].rru
            for target, size_before, size_after in zip(targets, before, after, strict=True):
                table = self.tables.get(target.table, target.table)
                if target.kind == "write" and status < 400:
                    self.written[(work, table)] += 1
                partition = target.key.get("pk", {}).get("S", "")
                if not charged or not partition.startswith("SKU#"):
                    continue
                rru, wru = target_units(target, size_before, size_after)
                scopes = [("partition", partition)]
                if target.key.get("sk", {}).get("S") == "LEVEL":
                    scopes.append(("level", partition))
                for scope, key in scopes:
                    entry = self.items.setdefault((work, scope, key), [0.0, 0.0, set()])
                    entry[0] += rru
                    entry[1] += wru
                    entry[2].add(invocation)
        return uses


def _merge(total: Usage, part: Usage) -> None:
    total.invocations.update(part.invocations)
    for key, durations in part.durations_ms.items():
        total.durations_ms[key].extend(durations)
    total.calls.update(part.calls)


def _work(caller: str) -> str:
    return caller.rsplit("#", 1)[0]


def build_profile(usage: Usage, meter: ProfileMeter) -> dict[str, Any]:
    """Per unit of work: per invocation, or per message/record for batches."""
    work: dict[str, dict[str, Any]] = {}
    for (function, kind), count in sorted(usage.invocations.items()):
        name = f"{function}: {kind}"
        per = meter.records[name] if kind in BATCH_KINDS else count
        if per == 0:
            continue
        durations = usage.durations_ms[(function, kind)]
        duration = sum(durations) / per if kind in BATCH_KINDS else statistics.median(durations)
        tables: dict[str, dict[str, float]] = defaultdict(lambda: {"rru": 0.0, "wru": 0.0, "items_written": 0.0})
        for (caller, table), written in meter.written.items():
            if caller == name:
                tables[table]["items_written"] += written / per
        calls: dict[str, float] = {}
        for (service, operation, caller), n in usage.calls.items():
            if _work(caller) == name:
                calls[f"{service}:{operation}"] = calls.get(f"{service}:{operation}", 0) + n / per
        work[name] = {
            "invocations": count,
            **({"records": meter.records[name]} if kind in BATCH_KINDS else {}),
            "duration_ms": round(duration, 1),
            "tables": tables,
            "indexes": {index: rru / per for (caller, index), rru in meter.index_rru.items() if caller == name},
            "one_level_item": _one_item(meter, name, "level"),
            "one_sku_partition": _one_item(meter, name, "partition"),
            "calls": calls,
        }
    return work


def _one_item(meter: ProfileMeter, name: str, scope: str) -> dict[str, float]:
    """The most read and write units one item (or partition key) took per invocation that touched it."""
    entries = [v for (work, s, _), v in meter.items.items() if work == name and s == scope]
    return {
        "rru": max((rru / len(seen) for rru, _, seen in entries), default=0.0),
        "wru": max((wru / len(seen) for _, wru, seen in entries), default=0.0),
    }


def _add_units(work: dict[str, dict[str, Any]], usage: Usage) -> None:
    for use in usage.dynamodb:
        name = _work(use.caller)
        if name not in work:
            continue
        kind = name.split(": ", 1)[1]
        per = work[name].get("records") if kind in BATCH_KINDS else work[name]["invocations"]
        table = work[name]["tables"].setdefault(use.table, {"rru": 0.0, "wru": 0.0, "items_written": 0.0})
        table["rru"] += use.rru / per
        table["wru"] += use.wru / per


def _views(api: Api, repeat: int) -> None:
    from local_cloud.demo_data import PRODUCTS

    for _ in range(repeat):
        for product_id, *_ in PRODUCTS:
            _ok(api.call("GET", f"/products/{product_id}"))
        _ok(api.call("GET", "/products?limit=20"))
        _ok(api.call("GET", "/categories"))


def _cart_journey(api: Api, sku: str) -> None:
    json_headers = {"Content-Type": "application/json"}
    cart = _ok(api.call("POST", "/carts", json.dumps({"currency": "EUR"}).encode(), json_headers), 201)
    _ok(api.call("POST", f"/carts/{cart['id']}/items", json.dumps({"sku": sku, "quantity": 1}).encode(), json_headers))
    methods = _ok(api.call("GET", "/shipping-methods?country=DE"))
    _ok(
        api.call(
            "PUT",
            f"/carts/{cart['id']}/shipping",
            json.dumps({"country": "DE", "method": methods["items"][0]["id"]}).encode(),
            json_headers,
        )
    )
    _ok(api.call("GET", f"/carts/{cart['id']}"))


def _ok(answer: tuple[int, dict[str, Any]], expected: int = 200) -> dict[str, Any]:
    status, body = answer
    if status != expected:
        raise RuntimeError(f"answered {status}, not {expected}: {body}")
    return body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="how many times each view, journey and order runs")
    parser.add_argument("--output", type=Path, default=PROFILE_PATH)
    args = parser.parse_args(argv)

    import boto3

    started = time.perf_counter()
    cloud, gateway = start_cloud({"PaymentTimeoutSeconds": "5", "PaymentProcessingGraceSeconds": "5"})
    try:
        meter = ProfileMeter()
        meter.install(cloud)

        def unmetered(service: str) -> Any:
            client = boto3.session.Session().client(service, region_name=cloud.region, endpoint_url=cloud.endpoint_url)
            client._not_metered = True
            return client

        shop = Shop(cloud, unmetered("dynamodb"))
        api = Api(gateway.url)
        ctx = Context(cloud, gateway, shop, unmetered("stepfunctions"), meter, api, timeout=30, logs=unmetered("logs"))
        total = Usage()
        dynamodb_uses = []

        def measured(step: Any) -> None:
            meter.start()
            try:
                step()
            finally:
                part = meter.stop()
            _merge(total, part)
            dynamodb_uses.extend(part.dynamodb)

        measured(lambda: _views(api, args.repeat))
        print(f"views measured ({time.perf_counter() - started:.0f} s)", flush=True)
        sku = shop.product(10_000)
        time.sleep(1.5)  # the new level's stream record is published before anything is measured
        for _ in range(args.repeat):
            measured(lambda: _cart_journey(api, sku))
        print(f"cart journeys measured ({time.perf_counter() - started:.0f} s)", flush=True)
        for scenario in [s for s in SCENARIOS if "first order" not in s.name]:
            plenty = replace(scenario, units=scenario.units if scenario.final == "rejected" else 1_000)
            for _ in range(args.repeat):
                usage, _status, _order_id = run_scenario(ctx, plenty)
                _merge(total, usage)
                dynamodb_uses.extend(usage.dynamodb)
            print(f"{scenario.name} measured ({time.perf_counter() - started:.0f} s)", flush=True)
        total.dynamodb = dynamodb_uses
        work = build_profile(total, meter)
        _add_units(work, total)
    finally:
        gateway.stop()
        cloud.stop()

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent
    ).stdout.strip()
    profile = {
        "measured": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "PYTHONPATH=layers/storefront:. .venv/bin/python -m benchmarks.capacity_profile "
        f"--repeat {args.repeat}",
        "commit": commit,
        "machine": f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.2f}; the local cloud (moto and the handlers in one process)",
        "work": {name: _rounded(entry) for name, entry in sorted(work.items())},
    }
    args.output.write_text(json.dumps(profile, indent=1) + "\n")
    print(f"wrote {args.output} ({len(work)} units of work) in {time.perf_counter() - started:.0f} s")
    return 0


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


if __name__ == "__main__":
    sys.exit(main())
