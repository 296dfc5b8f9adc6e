"""Orders racing for the same stock through the stock function, on the local cloud: never oversold, all or
nothing per order, available never below zero while they race, and the invariant checker clean afterwards; then
the same with DynamoDB refusing a share of the transactions on the SKU's level (conflicts, throttling), which
the stock function retries a bounded number of times before the workflow's Retry takes over."""

from __future__ import annotations

import json
import random
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from storefront.audit.repository import AuditRepository
from storefront.dynamodb import BACKOFF_BASE_SECONDS
from storefront.inventory.invariant import check_inventory
from storefront.inventory.models import parse_stock_request
from storefront.inventory.repository import MAX_ATTEMPTS, InventoryRepository
from storefront.inventory.service import StockService

from local_cloud.cloud import LocalCloud
from local_cloud.faults import TransactionRefusals
from local_cloud.functions import FunctionError
from local_cloud.template import ROOT

Invoke = Callable[[dict[str, Any]], dict[str, Any]]


def _event(action: str, order_id: str, lines: dict[str, int]) -> dict[str, Any]:
    return {"action": action, "order_id": order_id, "lines": [{"sku": s, "quantity": q} for s, q in lines.items()]}


@pytest.fixture
def inventory(cloud: LocalCloud) -> InventoryRepository:
    return InventoryRepository(cloud.client("dynamodb"), cloud.physical_id("InventoryTable"))


@pytest.fixture
def invoke(cloud: LocalCloud, inventory: InventoryRepository) -> Invoke:
    """The real handler once the template declares StockFunction; until then the service it builds."""
    function = cloud.functions.get("StockFunction")
    if function is not None:
        return function.invoke
    service = StockService(inventory, AuditRepository(cloud.client("dynamodb"), cloud.physical_id("AuditTable"), 400))
    return lambda event: service.handle(parse_stock_request(event)).to_payload()


@pytest.fixture
def seed(cloud: LocalCloud, inventory: InventoryRepository) -> Iterator[Callable[[int], str]]:
    """Fresh SKUs for this test only; the invariant checker runs over them at the end."""
    skus: list[str] = []

    def new_sku(units: int) -> str:
        sku = f"T{uuid.uuid4().hex[:12]}".upper()
        inventory.put_level(sku, units)
        skus.append(sku)
        return sku

    yield new_sku
    assert check_inventory(cloud.client("dynamodb"), cloud.physical_id("InventoryTable"), skus) == []


class LevelWatcher:
    """Reads the levels over and over while orders race, recording any moment a level is impossible."""

    def __init__(self, inventory: InventoryRepository, skus: list[str]) -> None:
        self._inventory, self._skus = inventory, skus
        self._stop = threading.Event()
        self.samples = 0
        self.impossible: list[Any] = []
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> LevelWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.is_set():
            for level in self._inventory.levels(self._skus).values():
                if level.available < 0 or level.reserved < 0 or level.available + level.reserved != level.on_hand:
                    self.impossible.append(level)
            self.samples += 1
            self._stop.wait(0.005)  # leave the (serialised) local DynamoDB to the racing orders


def _race(calls: list[Callable[[], Any]], workers: int = 50) -> list[Any]:
    """Run every call on a pool; the first `workers` start together."""
    start = threading.Barrier(min(workers, len(calls)))

    def run(index: int) -> Any:
        if index < workers:
            start.wait()
        return calls[index]()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, range(len(calls))))


@pytest.mark.slow("race")
def test_200_single_unit_orders_for_50_units(
    invoke: Invoke, seed: Callable[[int], str], inventory: InventoryRepository
) -> None:
    sku = seed(50)
    orders = [secrets.token_urlsafe(24) for _ in range(200)]
    with LevelWatcher(inventory, [sku]) as watcher:
        outcomes = _race([lambda o=o: invoke(_event("reserve", o, {sku: 1})) for o in orders])
    reserved = [o for o, outcome in zip(orders, outcomes, strict=True) if outcome["outcome"] == "reserved"]
    rejected = [outcome for outcome in outcomes if outcome["outcome"] == "rejected"]
    assert (len(reserved), len(rejected)) == (50, 150)
    # Stock only fell during the race, so every rejection saw it at zero.
    assert all(r["reason"]["lines"] == [{"sku": sku, "requested": 1, "available": 0}] for r in rejected)
    assert watcher.samples > 0 and watcher.impossible == []
    level = inventory.level(sku)
    assert level is not None and (level.on_hand, level.reserved, level.available) == (50, 50, 0)

    assert (
        _race([lambda o=o: invoke(_event("release", o, {sku: 1})) for o in reserved]) == [{"outcome": "released"}] * 50
    )
    assert inventory.available([sku]) == {sku: 50}


def test_50_orders_for_the_last_unit(
    invoke: Invoke, seed: Callable[[int], str], inventory: InventoryRepository
) -> None:
    sku = seed(1)
    outcomes = _race([lambda: invoke(_event("reserve", secrets.token_urlsafe(24), {sku: 1})) for _ in range(50)])
    assert [o["outcome"] for o in outcomes].count("reserved") == 1
    assert inventory.available([sku]) == {sku: 0}


@pytest.mark.slow("race")
def test_multi_line_orders_racing_for_overlapping_skus(
    invoke: Invoke, seed: Callable[[int], str], inventory: InventoryRepository
) -> None:
    skus = [seed(6) for _ in range(4)]
    rng = random.Random(7)
    orders = {
        secrets.token_urlsafe(24): {sku: rng.randint(1, 3) for sku in rng.sample(skus, rng.randint(2, 4))}
        for _ in range(60)
    }
    with LevelWatcher(inventory, skus) as watcher:
        outcomes = dict(
            zip(
                orders,
                _race([lambda o=o, lines=lines: invoke(_event("reserve", o, lines)) for o, lines in orders.items()]),
                strict=True,
            )
        )
    assert watcher.impossible == []

    reserved = {o: lines for o, lines in orders.items() if outcomes[o]["outcome"] == "reserved"}
    assert reserved and len(reserved) < len(orders)  # the stock ran out: some won, some lost
    for order_id, lines in orders.items():
        stored = inventory.reservation_lines(order_id, lines)
        if order_id in reserved:  # all of its lines, exactly as asked
            assert {sku: (line.quantity, line.state) for sku, line in stored.items()} == {
                sku: (q, "reserved") for sku, q in lines.items()
            }
        else:  # none of them, and a reason that names only its own SKUs, each really short
            assert stored == {}
            short = outcomes[order_id]["reason"]["lines"]
            assert short and all(s["requested"] == lines[s["sku"]] > s["available"] for s in short)
    levels = inventory.levels(skus)
    for sku in skus:
        held = sum(lines.get(sku, 0) for lines in reserved.values())
        assert (levels[sku].on_hand, levels[sku].reserved, levels[sku].available) == (6, held, 6 - held)

    # Half are paid, half are not; Step Functions delivers each of those tasks twice, at the same time.
    paid = dict(list(reserved.items())[::2])
    settle = [
        lambda o=o, lines=lines: invoke(_event("commit" if o in paid else "release", o, lines))
        for o, lines in reserved.items()
        for _ in range(2)
    ]
    assert {o["outcome"] for o in _race(settle)} <= {"committed", "released"}
    levels = inventory.levels(skus)
    for sku in skus:
        sold = sum(lines.get(sku, 0) for lines in paid.values())
        assert (levels[sku].on_hand, levels[sku].reserved, levels[sku].available) == (6 - sold, 0, 6 - sold)


# ------------------------------------------------------------------ DynamoDB refusing transactions on the level


def _workflow_invocations(state: str) -> int:
    """How many times the order workflow invokes the stock function for `state` when it keeps raising
    StockContention: once, plus the attempts of the Retry that matches it (statemachines/order.asl.json)."""
    asl = json.loads((ROOT / "statemachines/order.asl.json").read_text())
    retrier = next(
        r
        for r in asl["States"][state]["Retry"]
        if "StockContention" in r["ErrorEquals"] or "States.ALL" in r["ErrorEquals"]
    )
    return 1 + int(retrier["MaxAttempts"])


def _as_the_workflow_does(invoke: Invoke, event: dict[str, Any], invocations: int) -> tuple[dict[str, Any], int]:
    """Invoke until an outcome, as ReserveStock's Retry does on StockContention (without its waits); returns the
    outcome and the invocations it took. Anything else, or contention past the Retry's attempts, fails the test."""
    for invocation in range(1, invocations + 1):
        try:
            return invoke(event), invocation
        except FunctionError as error:
            if error.payload["errorType"] != "StockContention":
                raise AssertionError(error.payload) from error
    raise AssertionError(f"{event['order_id']}: still contended after {invocations} invocations")


def test_reservations_with_30_percent_of_level_transactions_refused_never_oversell(
    invoke: Invoke, seed: Callable[[int], str], inventory: InventoryRepository
) -> None:
    """200 single-unit orders for 50 units while DynamoDB refuses 30 % of the transactions on the level
    (TransactionConflict and ThrottlingError, alternately): exactly 50 reserved and 150 rejected, every order
    decided within the workflow's invocations, each invocation within the repository's MAX_ATTEMPTS; then every
    reservation released twice at once, under the same refusals, comes back exactly once."""
    sku = seed(50)
    orders = [secrets.token_urlsafe(24) for _ in range(200)]
    invocations = _workflow_invocations("ReserveStock")
    with (
        TransactionRefusals(share=0.3, partitions={f"SKU#{sku}"}) as refusals,
        LevelWatcher(inventory, [sku]) as watcher,
    ):
        results = _race(
            [lambda o=o: _as_the_workflow_does(invoke, _event("reserve", o, {sku: 1}), invocations) for o in orders]
        )
        outcomes = [outcome for outcome, _ in results]
        reserved = [o for o, outcome in zip(orders, outcomes, strict=True) if outcome["outcome"] == "reserved"]
        assert (len(reserved), len(outcomes) - len(reserved)) == (50, 150)
        assert {outcome["outcome"] for outcome in outcomes} == {"reserved", "rejected"}
        assert watcher.impossible == []
        # Bounded: no order's reservation made more transaction attempts than its invocations allow.
        for order_id, (_, took) in zip(orders, results, strict=True):
            assert refusals.attempts[f"SKU#{sku}/ORDER#{order_id}"] <= took * MAX_ATTEMPTS
        assert refusals.refused["TransactionConflict"] > 0 and refusals.refused["ThrottlingError"] > 0
        assert refusals.total_refused >= 0.2 * sum(refusals.attempts.values())  # the share was refused, roughly

        released = _race(
            [
                lambda o=o: _as_the_workflow_does(invoke, _event("release", o, {sku: 1}), invocations)
                for o in reserved
                for _ in range(2)
            ]
        )
    assert {outcome["outcome"] for outcome, _ in released} == {"released"}
    level = inventory.level(sku)
    assert level is not None and (level.on_hand, level.reserved, level.available) == (50, 0, 50)


def test_a_level_that_refuses_every_transaction_gives_stock_contention_after_bounded_attempts(
    invoke: Invoke, seed: Callable[[int], str], inventory: InventoryRepository
) -> None:
    """Every transaction on the level refused: the stock function gives up after MAX_ATTEMPTS transactions and its
    jittered backoff (at most BACKOFF_BASE_SECONDS x (2^(MAX_ATTEMPTS-1) - 1) of sleep), raising StockContention for
    the workflow's Retry, and changes nothing; once DynamoDB takes transactions again, the retry reserves."""
    sku = seed(5)
    order_id = secrets.token_urlsafe(24)
    event = _event("reserve", order_id, {sku: 2})
    with TransactionRefusals(share=1.0, partitions={f"SKU#{sku}"}) as refusals:
        started = time.monotonic()
        with pytest.raises(FunctionError) as raised:
            invoke(event)
        elapsed = time.monotonic() - started
    assert raised.value.payload["errorType"] == "StockContention"
    assert refusals.attempts[f"SKU#{sku}/ORDER#{order_id}"] == MAX_ATTEMPTS
    longest_sleep = BACKOFF_BASE_SECONDS * (2 ** (MAX_ATTEMPTS - 1) - 1)
    assert elapsed < longest_sleep + 2  # the sleeps, plus six local transactions
    level = inventory.level(sku)
    assert level is not None and (level.on_hand, level.reserved, level.available) == (5, 0, 5)
    assert inventory.reservation_lines(order_id, [sku]) == {}

    assert invoke(event) == {"outcome": "reserved"}  # the workflow's next attempt
    assert inventory.available([sku]) == {sku: 3}
