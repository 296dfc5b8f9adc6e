"""The stock function on the local cloud: each movement, exactly once under retries, injected crashes and
injected DynamoDB refusals. Every test uses its own SKUs and ends with the invariant checker."""

from __future__ import annotations

import json
import secrets
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from storefront.audit.repository import AuditRepository
from storefront.inventory.invariant import check_inventory
from storefront.inventory.models import parse_stock_request
from storefront.inventory.repository import MAX_ATTEMPTS, InventoryRepository
from storefront.inventory.service import StockService

from local_cloud.cloud import LocalCloud
from local_cloud.functions import FunctionError
from tests.samples import sample_events

# ---------------------------------------------------------------- helpers


def _sku() -> str:
    return f"T{uuid.uuid4().hex[:12]}".upper()


def _order_id() -> str:
    return secrets.token_urlsafe(24)


def _event(action: str, order_id: str, **lines: int) -> dict[str, Any]:
    return {"action": action, "order_id": order_id, "lines": [{"sku": s, "quantity": q} for s, q in lines.items()]}


class Stock:
    """The stock function as Step Functions calls it: the real handler when the template declares StockFunction
    (with its service swapped when a test injects faults), else the same service the handler builds."""

    def __init__(self, cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> None:
        self.cloud = cloud
        self.client = cloud.client("dynamodb")
        self.table = cloud.physical_id("InventoryTable")
        self.inventory = InventoryRepository(self.client, self.table)
        self._function = cloud.functions.get("StockFunction")
        self._monkeypatch = monkeypatch
        self.audit = AuditRepository(self.client, cloud.physical_id("AuditTable"), retention_days=400)
        self._service = StockService(self.inventory, self.audit)
        self.skus: list[str] = []

    def seed(self, units: int) -> str:
        sku = _sku()
        self.inventory.put_level(sku, units)
        self.skus.append(sku)
        return sku

    def use_client(self, client: Any) -> None:
        service = StockService(InventoryRepository(client, self.table), self.audit)
        if self._function is not None:
            self._monkeypatch.setattr(self._function.module, "service", service)
        self._service = service

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """The outcome; raises FunctionError (payload errorType = the exception's class name) like Lambda."""
        if self._function is not None:
            return self._function.invoke(event)
        try:
            return self._service.handle(parse_stock_request(event)).to_payload()
        except Exception as error:
            raise FunctionError(error) from error

    def error_type(self, event: dict[str, Any]) -> str:
        with pytest.raises(FunctionError) as raised:
            self.invoke(event)
        return raised.value.payload["errorType"]

    def levels(self, sku: str) -> tuple[int, int, int]:
        level = self.inventory.level(sku)
        assert level is not None
        return level.on_hand, level.reserved, level.available


@pytest.fixture
def stock(cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stock]:
    helper = Stock(cloud, monkeypatch)
    yield helper
    assert check_inventory(helper.client, helper.table, helper.skus) == []


class FaultyClient:
    """The DynamoDB client with faults injected into the transactions that touch `skus` only: the handler's
    service is shared, and a workflow left running by another test must not meet this test's faults."""

    def __init__(self, client: Any, skus: list[str]) -> None:
        self._client = client
        self._keys = [f"SKU#{sku}" for sku in skus]
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def transact_write_items(self, **request: Any) -> Any:
        if not any(k in json.dumps(request) for k in self._keys):
            return self._client.transact_write_items(**request)
        self.calls += 1
        return self.faulty_write(request)

    def faulty_write(self, request: dict[str, Any]) -> Any:
        raise NotImplementedError


class CrashAfterWrite(FaultyClient):
    """The write reaches DynamoDB, then the reply is lost (a timeout, or the function dies before returning)."""

    def __init__(self, client: Any, skus: list[str], crashes: int = 1) -> None:
        super().__init__(client, skus)
        self.crashes = crashes

    def faulty_write(self, request: dict[str, Any]) -> Any:
        response = self._client.transact_write_items(**request)
        if self.crashes:
            self.crashes -= 1
            raise ReadTimeoutError(endpoint_url="http://dynamodb.local")
        return response


class Refusing(FaultyClient):
    """DynamoDB refuses the next `times` transactions with `error`, without writing anything."""

    def __init__(self, client: Any, skus: list[str], error: ClientError, times: int) -> None:
        super().__init__(client, skus)
        self._error = error
        self.times = times

    def faulty_write(self, request: dict[str, Any]) -> Any:
        if self.times:
            self.times -= 1
            raise self._error
        return self._client.transact_write_items(**request)


def _cancelled(*codes: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
            "CancellationReasons": [{"Code": code} for code in codes],
        },
        "TransactWriteItems",
    )


def _error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "TransactWriteItems")


# ---------------------------------------------------------------- the movements


def test_the_sample_events_are_valid_requests() -> None:
    for path in sample_events("stock/*.json"):
        assert parse_stock_request(json.loads(path.read_text())).action in path.name


def test_reserve_then_commit(stock: Stock) -> None:
    a, b = stock.seed(5), stock.seed(3)
    order = _order_id()
    assert stock.invoke(_event("reserve", order, **{a: 2, b: 3})) == {"outcome": "reserved"}
    assert (stock.levels(a), stock.levels(b)) == ((5, 2, 3), (3, 3, 0))
    assert stock.inventory.available([a, b]) == {a: 3, b: 0}  # what the catalog and cart see
    assert stock.invoke(_event("commit", order, **{a: 2, b: 3})) == {"outcome": "committed"}
    assert (stock.levels(a), stock.levels(b)) == ((3, 0, 3), (0, 0, 0))
    line = stock.inventory.reservation_lines(order, [a])[a]
    assert (line.state, [h.movement for h in line.history]) == ("committed", ["reserve", "commit"])


def test_duplicate_lines_are_reserved_as_one(stock: Stock) -> None:
    sku = stock.seed(5)
    order = _order_id()
    event = {
        "action": "reserve",
        "order_id": order,
        "lines": [{"sku": sku, "quantity": 2}, {"sku": sku, "quantity": 3}],
    }
    assert stock.invoke(event) == {"outcome": "reserved"}
    assert stock.levels(sku) == (5, 5, 0)
    assert stock.invoke(_event("release", order, **{sku: 5})) == {"outcome": "released"}


def test_a_rejection_names_every_short_sku_and_reserves_nothing(stock: Stock) -> None:
    plenty, few, none = stock.seed(10), stock.seed(1), stock.seed(0)
    unknown = _sku()
    outcome = stock.invoke(_event("reserve", _order_id(), **{plenty: 2, few: 2, none: 1, unknown: 1}))
    assert outcome["outcome"] == "rejected"
    assert outcome["reason"]["code"] == "insufficient_stock"
    assert sorted(outcome["reason"]["lines"], key=lambda line: line["sku"]) == sorted(
        [
            {"sku": few, "requested": 2, "available": 1},
            {"sku": none, "requested": 1, "available": 0},
            {"sku": unknown, "requested": 1, "available": 0},
        ],
        key=lambda line: line["sku"],
    )
    assert stock.levels(plenty) == (10, 0, 10)


def test_fifty_lines_in_one_transaction(stock: Stock) -> None:
    skus = [stock.seed(99) for _ in range(50)]
    order = _order_id()
    assert stock.invoke(_event("reserve", order, **dict.fromkeys(skus, 99))) == {"outcome": "reserved"}
    assert stock.invoke(_event("release", order, **dict.fromkeys(skus, 99))) == {"outcome": "released"}
    assert {stock.levels(sku) for sku in skus} == {(99, 0, 99)}


def test_invalid_events_are_refused_by_class_name(stock: Stock) -> None:
    sku = stock.seed(1)
    assert stock.error_type({"action": "reserve", "order_id": "short", "lines": []}) == "InvalidStockRequest"
    assert stock.error_type({"order_id": _order_id()}) == "InvalidStockRequest"
    order = _order_id()
    stock.invoke(_event("reserve", order, **{sku: 1}))
    assert stock.error_type(_event("commit", order, **{sku: 2})) == "InvalidStockRequest"  # not what was reserved
    assert stock.levels(sku) == (1, 1, 0)
    stock.invoke(_event("release", order, **{sku: 1}))


def test_put_level_keeps_the_ledger_and_the_reservations(stock: Stock) -> None:
    sku = stock.seed(5)
    order = _order_id()
    stock.invoke(_event("reserve", order, **{sku: 2}))
    stock.inventory.put_level(sku, 8)  # a recount: on_hand 8, the order's 2 units stay reserved
    assert stock.levels(sku) == (8, 2, 6)
    with pytest.raises(ValueError, match="units are reserved, on hand cannot be 1"):
        stock.inventory.put_level(sku, 1)
    stock.invoke(_event("commit", order, **{sku: 2}))
    assert stock.levels(sku) == (6, 0, 6)


def _adjust(sku: str, adjustment_id: str, delta: int, reason: str = "received") -> dict[str, Any]:
    return {
        "action": "adjust",
        "sku": sku,
        "adjustment_id": adjustment_id,
        "delta": delta,
        "reason": reason,
        "actor": {"sub": "sub-1", "username": "ada"},
    }


def test_adjustments_are_conditional_once_per_id_and_in_the_ledger(stock: Stock) -> None:
    sku = stock.seed(3)
    assert stock.invoke(_adjust(sku, "a1", 4))["level"]["on_hand"] == 7
    assert stock.invoke(_adjust(sku, "a1", 4))["level"]["on_hand"] == 7  # a retry: nothing twice
    stock.invoke(_event("reserve", _order_id(), **{sku: 5}))
    assert stock.invoke(_adjust(sku, "a2", -3, "damaged")) == {
        "outcome": "rejected",
        "reason": {
            "code": "insufficient_stock",
            "detail": f"Only 2 of {sku} available: cannot take away 3.",
            "lines": [{"sku": sku, "requested": 3, "available": 2}],
        },
    }
    assert stock.invoke(_adjust(sku, "a3", -2, "damaged"))["level"] == {
        "sku": sku,
        "on_hand": 5,
        "reserved": 5,
        "available": 0,
        "low_stock_threshold": 5,
    }
    ledger, _ = stock.inventory.ledger(sku, 10, None)
    assert [(item["delta"], item["reason"], item.get("actor")) for item in ledger] == [
        (-2, "damaged", {"sub": "sub-1", "username": "ada"}),
        (4, "received", {"sub": "sub-1", "username": "ada"}),
        (3, "received", None),
    ]
    assert [e.action for e in stock.audit.for_target(f"sku:{sku}")] == ["inventory.adjust"] * 2


# ---------------------------------------------------------------- crashes and retries: exactly once


def test_a_reserve_retried_after_a_crash_does_not_reserve_twice(stock: Stock) -> None:
    sku = stock.seed(5)
    order = _order_id()
    reserve, release, commit = (_event(action, order, **{sku: 2}) for action in ("reserve", "release", "commit"))
    stock.use_client(CrashAfterWrite(stock.client, [sku]))
    assert stock.error_type(reserve) == "ReadTimeoutError"  # Step Functions sees a failed task and retries it
    assert stock.levels(sku) == (5, 2, 3)
    assert stock.invoke(reserve) == {"outcome": "reserved"}
    assert stock.levels(sku) == (5, 2, 3)
    assert stock.invoke(release) == {"outcome": "released"}
    assert stock.levels(sku) == (5, 0, 5)
    assert stock.invoke(release) == {"outcome": "released"}  # a second release is a no-op
    assert stock.levels(sku) == (5, 0, 5)
    assert stock.error_type(commit) == "ReservationNotHeld"  # the units went back on sale: never ship them
    assert stock.levels(sku) == (5, 0, 5)


def test_a_reserve_retried_when_the_last_units_are_its_own(stock: Stock) -> None:
    sku = stock.seed(2)
    event = _event("reserve", _order_id(), **{sku: 2})
    assert stock.invoke(event) == {"outcome": "reserved"}
    assert stock.invoke(event) == {"outcome": "reserved"}  # not "rejected": the units it lacks are its own
    assert stock.levels(sku) == (2, 2, 0)


def test_commit_and_release_retried_after_a_crash_happen_once(stock: Stock) -> None:
    paid, unpaid = stock.seed(4), stock.seed(4)
    paid_order, unpaid_order = _order_id(), _order_id()
    stock.invoke(_event("reserve", paid_order, **{paid: 3}))
    stock.invoke(_event("reserve", unpaid_order, **{unpaid: 3}))
    stock.use_client(CrashAfterWrite(stock.client, [paid, unpaid], crashes=2))
    assert stock.error_type(_event("commit", paid_order, **{paid: 3})) == "ReadTimeoutError"
    assert stock.error_type(_event("release", unpaid_order, **{unpaid: 3})) == "ReadTimeoutError"
    assert stock.invoke(_event("commit", paid_order, **{paid: 3})) == {"outcome": "committed"}
    assert stock.invoke(_event("release", unpaid_order, **{unpaid: 3})) == {"outcome": "released"}
    assert (stock.levels(paid), stock.levels(unpaid)) == ((1, 0, 1), (4, 0, 4))


def test_release_of_an_order_that_reserved_nothing(stock: Stock) -> None:
    sku = stock.seed(0)
    order = _order_id()
    assert stock.invoke(_event("reserve", order, **{sku: 1}))["outcome"] == "rejected"
    assert stock.invoke(_event("release", order, **{sku: 1})) == {"outcome": "nothing_to_release"}
    assert stock.invoke(_event("release", _order_id(), **{sku: 1})) == {"outcome": "nothing_to_release"}
    assert stock.levels(sku) == (0, 0, 0)


def test_concurrent_duplicate_releases_return_the_units_once(stock: Stock) -> None:
    a, b = stock.seed(6), stock.seed(6)
    order = _order_id()
    stock.invoke(_event("reserve", order, **{a: 4, b: 1}))
    release = _event("release", order, **{a: 4, b: 1})
    start = threading.Barrier(10)

    def release_once(_: int) -> str:
        start.wait()
        return stock.invoke(release)["outcome"]

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(release_once, range(10)))
    assert outcomes == ["released"] * 10
    assert (stock.levels(a), stock.levels(b)) == ((6, 0, 6), (6, 0, 6))
    history = stock.inventory.reservation_lines(order, [a])[a].history
    assert [h.movement for h in history] == ["reserve", "release"]


# ---------------------------------------------------------------- DynamoDB refusals: retried, then StockContention


@pytest.mark.parametrize(
    "refusal",
    [
        _cancelled("TransactionConflict", "None"),
        _cancelled("None", "ThrottlingError"),
        _error("ThrottlingException"),
        _error("ProvisionedThroughputExceededException"),
        _error("TransactionConflictException"),
    ],
    ids=["conflict", "throttled-item", "throttling", "throughput", "conflict-exception"],
)
def test_transient_refusals_are_retried(stock: Stock, refusal: ClientError) -> None:
    sku = stock.seed(3)
    order = _order_id()
    refusing = Refusing(stock.client, [sku], refusal, times=MAX_ATTEMPTS - 1)
    stock.use_client(refusing)
    assert stock.invoke(_event("reserve", order, **{sku: 1})) == {"outcome": "reserved"}
    assert refusing.calls == MAX_ATTEMPTS
    refusing.times = 2
    assert stock.invoke(_event("commit", order, **{sku: 1})) == {"outcome": "committed"}
    assert stock.levels(sku) == (2, 0, 2)


def test_persistent_conflict_raises_stock_contention(stock: Stock) -> None:
    sku = stock.seed(3)
    order = _order_id()
    refusing = Refusing(stock.client, [sku], _cancelled("TransactionConflict", "None"), times=1000)
    stock.use_client(refusing)
    assert stock.error_type(_event("reserve", order, **{sku: 1})) == "StockContention"
    assert refusing.calls == MAX_ATTEMPTS
    assert stock.levels(sku) == (3, 0, 3)
    refusing.times = 0  # the conflict clears: Step Functions' retry succeeds
    assert stock.invoke(_event("reserve", order, **{sku: 1})) == {"outcome": "reserved"}
    stock.invoke(_event("release", order, **{sku: 1}))


def test_adjustments_under_crashes_throttling_and_conflicts_happen_once(stock: Stock) -> None:
    sku = stock.seed(5)
    stock.use_client(CrashAfterWrite(stock.client, [sku]))
    assert stock.error_type(_adjust(sku, "crash-1", 3)) == "ReadTimeoutError"  # written, the answer lost
    assert stock.invoke(_adjust(sku, "crash-1", 3))["level"]["on_hand"] == 8  # the retry: nothing twice
    refusing = Refusing(stock.client, [sku], _error("ThrottlingException"), times=MAX_ATTEMPTS - 1)
    stock.use_client(refusing)
    assert stock.invoke(_adjust(sku, "throttled-1", -2, "damaged"))["level"]["on_hand"] == 6
    refusing.times = 1000
    refusing._error = _cancelled("TransactionConflict", "None", "None")
    assert stock.error_type(_adjust(sku, "conflict-1", 4)) == "StockContention"
    assert stock.levels(sku) == (6, 0, 6)
    assert [e.changes["delta"].after for e in stock.audit.for_target(f"sku:{sku}")] == [-2, 3]


def test_other_errors_are_not_retried(stock: Stock) -> None:
    sku = stock.seed(3)
    refusing = Refusing(stock.client, [sku], _error("ValidationException"), times=1000)
    stock.use_client(refusing)
    assert stock.error_type(_event("reserve", _order_id(), **{sku: 1})) == "ClientError"
    assert refusing.calls == 1


# ---------------------------------------------------------------- the invariant checker can fail


def test_the_invariant_checker_detects_a_corrupted_level(stock: Stock) -> None:
    sku = stock.seed(5)
    stock.invoke(_event("reserve", _order_id(), **{sku: 2}))
    assert check_inventory(stock.client, stock.table, [sku]) == []
    key = {"pk": {"S": f"SKU#{sku}"}, "sk": {"S": "LEVEL"}}
    stock.client.update_item(
        TableName=stock.table,
        Key=key,
        UpdateExpression="SET available = :n",
        ExpressionAttributeValues={":n": {"N": "4"}},
    )  # a write that skipped the ledger
    assert check_inventory(stock.client, stock.table, [sku]) == [f"{sku}: available is 4, not on_hand - reserved = 3"]
    stock.client.update_item(
        TableName=stock.table,
        Key=key,
        UpdateExpression="SET available = :n",
        ExpressionAttributeValues={":n": {"N": "3"}},
    )
