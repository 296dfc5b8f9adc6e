"""StockService rules on an in-memory fake of the repository that enforces the same conditions as the
DynamoDB transactions: outcomes, exactly-once under retries, mismatches, adjustments."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import pytest

from storefront.errors import InsufficientStock, NotFound, ValidationFailed
from storefront.inventory.models import (
    STATE_AFTER, InvalidStockRequest, Movement, ReservationLine, StockLevel, history_entry,
)
from storefront.inventory.repository import MovementRefused, StockContention
from storefront.inventory.service import ReservationNotHeld, StockService

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
ORDER = "Qx7mN2pL9vK4rT8wZ1yB5cD3fG6hJ0sA"
OTHER = "Rn4tY8wE1uI6oP0aS5dFgZq3K9xV2mB7"


class FakeInventory:
    """All or nothing, with the conditions of the real transactions."""

    def __init__(self, on_hand: dict[str, int]) -> None:
        self.stock = {sku: StockLevel(sku=sku, on_hand=n, reserved=0, available=n, low_stock_threshold=5)
                      for sku, n in on_hand.items()}
        self.lines: dict[tuple[str, str], ReservationLine] = {}
        self.refusals_to_inject = 0
        self.writes = 0

    def level(self, sku: str) -> StockLevel | None:
        return self.stock.get(sku)

    def levels(self, skus: Iterable[str]) -> dict[str, StockLevel]:
        return {sku: self.stock[sku] for sku in skus if sku in self.stock}

    def reservation_lines(self, order_id: str, skus: Iterable[str]) -> dict[str, ReservationLine]:
        return {sku: self.lines[order_id, sku] for sku in skus if (order_id, sku) in self.lines}

    def reserve(self, order_id: str, quantities: dict[str, int], at: datetime) -> None:
        self._maybe_refuse()
        if any((order_id, sku) in self.lines or sku not in self.stock or self.stock[sku].available < q
               for sku, q in quantities.items()):
            raise MovementRefused()
        for sku, q in quantities.items():
            self.lines[order_id, sku] = ReservationLine(order_id=order_id, sku=sku, quantity=q, state="reserved",
                                                        history=[history_entry("reserve", q, at.isoformat())])
            self._apply(sku, "reserve", q)

    def commit(self, order_id: str, quantities: dict[str, int], at: datetime) -> None:
        self._settle("commit", order_id, quantities)

    def release(self, order_id: str, quantities: dict[str, int], at: datetime) -> None:
        self._settle("release", order_id, quantities)

    def adjust(self, sku: str, delta: int, reason: str, at: datetime) -> None:
        self._maybe_refuse()
        level = self.stock.get(sku)
        if level is None or level.available + delta < 0:
            raise MovementRefused()
        self.stock[sku] = level.model_copy(update={"on_hand": level.on_hand + delta,
                                                   "available": level.available + delta})

    def _settle(self, movement: Movement, order_id: str, quantities: dict[str, int]) -> None:
        self._maybe_refuse()
        for sku, q in quantities.items():
            line = self.lines.get((order_id, sku))
            if line is None or line.state != "reserved" or line.quantity != q:
                raise MovementRefused()
        for sku, q in quantities.items():
            line = self.lines[order_id, sku]
            line.state = STATE_AFTER[movement]
            line.history.append(history_entry(movement, q, NOW.isoformat()))
            self._apply(sku, movement, q)

    def _apply(self, sku: str, movement: Movement, q: int) -> None:
        entry = history_entry(movement, q, "")
        level = self.stock[sku]
        self.stock[sku] = level.model_copy(update={
            "on_hand": level.on_hand + entry.delta_on_hand, "reserved": level.reserved + entry.delta_reserved,
            "available": level.available + entry.delta_available})
        self.writes += 1

    def _maybe_refuse(self) -> None:
        if self.refusals_to_inject:
            self.refusals_to_inject -= 1
            raise MovementRefused()


@pytest.fixture()
def inventory() -> FakeInventory:
    return FakeInventory({"A": 5, "B": 2, "C": 0})


@pytest.fixture()
def service(inventory: FakeInventory) -> StockService:
    return StockService(inventory, now=lambda: NOW)  # type: ignore[arg-type]


def _levels(inventory: FakeInventory, sku: str) -> tuple[int, int, int]:
    level = inventory.stock[sku]
    return level.on_hand, level.reserved, level.available


def test_reserve_moves_units_from_available_to_reserved(service: StockService, inventory: FakeInventory) -> None:
    assert service.reserve(ORDER, {"A": 2, "B": 1}).outcome == "reserved"
    assert _levels(inventory, "A") == (5, 2, 3)
    assert _levels(inventory, "B") == (2, 1, 1)


def test_a_rejection_names_every_short_sku(service: StockService, inventory: FakeInventory) -> None:
    outcome = service.reserve(ORDER, {"A": 1, "B": 3, "C": 1, "UNKNOWN": 2})
    assert outcome.outcome == "rejected"
    assert outcome.reason is not None and outcome.reason.code == "insufficient_stock"
    assert [line.model_dump() for line in outcome.reason.lines] == [
        {"sku": "B", "requested": 3, "available": 2},
        {"sku": "C", "requested": 1, "available": 0},
        {"sku": "UNKNOWN", "requested": 2, "available": 0},
    ]
    assert "B (3 requested, 2 available)" in outcome.reason.detail
    assert _levels(inventory, "A") == (5, 0, 5)  # all or nothing


def test_a_retried_reserve_does_not_reserve_twice(service: StockService, inventory: FakeInventory) -> None:
    service.reserve(ORDER, {"B": 2})
    assert service.reserve(ORDER, {"B": 2}).outcome == "reserved"  # B now has 0 available: still "reserved"
    assert _levels(inventory, "B") == (2, 2, 0)


def test_a_reserve_with_other_lines_for_the_same_order_is_invalid(service: StockService) -> None:
    service.reserve(ORDER, {"A": 1})
    with pytest.raises(InvalidStockRequest):
        service.reserve(ORDER, {"A": 2})
    with pytest.raises(InvalidStockRequest):
        service.reserve(ORDER, {"A": 1, "B": 1})


def test_commit_takes_the_units_out_of_the_shop_once(service: StockService, inventory: FakeInventory) -> None:
    service.reserve(ORDER, {"A": 2})
    assert service.commit(ORDER, {"A": 2}).outcome == "committed"
    assert service.commit(ORDER, {"A": 2}).outcome == "committed"
    assert _levels(inventory, "A") == (3, 0, 3)


def test_release_returns_the_units_once(service: StockService, inventory: FakeInventory) -> None:
    service.reserve(ORDER, {"A": 2, "B": 2})
    assert service.release(ORDER, {"A": 2, "B": 2}).outcome == "released"
    assert service.release(ORDER, {"A": 2, "B": 2}).outcome == "released"
    assert _levels(inventory, "A") == (5, 0, 5)
    assert _levels(inventory, "B") == (2, 0, 2)


def test_release_of_an_order_never_reserved(service: StockService, inventory: FakeInventory) -> None:
    assert service.release(ORDER, {"A": 1}).outcome == "nothing_to_release"
    service.reserve(OTHER, {"C": 1})  # rejected: nothing stored
    assert service.release(OTHER, {"C": 1}).outcome == "nothing_to_release"
    assert inventory.writes == 0


def test_commit_after_release_and_release_after_commit_are_refused(service: StockService) -> None:
    service.reserve(ORDER, {"A": 1})
    service.release(ORDER, {"A": 1})
    with pytest.raises(ReservationNotHeld, match="released"):
        service.commit(ORDER, {"A": 1})
    service.reserve(OTHER, {"A": 1})
    service.commit(OTHER, {"A": 1})
    with pytest.raises(ReservationNotHeld, match="committed"):
        service.release(OTHER, {"A": 1})


def test_a_reserve_retried_after_its_release_is_refused(service: StockService, inventory: FakeInventory) -> None:
    service.reserve(ORDER, {"A": 1})
    service.release(ORDER, {"A": 1})
    with pytest.raises(ReservationNotHeld):
        service.reserve(ORDER, {"A": 1})
    assert _levels(inventory, "A") == (5, 0, 5)


def test_commit_without_a_reservation_is_refused(service: StockService) -> None:
    with pytest.raises(ReservationNotHeld):
        service.commit(ORDER, {"A": 1})


def test_commit_with_other_quantities_than_reserved_is_invalid(service: StockService, inventory: FakeInventory) -> None:
    service.reserve(ORDER, {"A": 2})
    with pytest.raises(InvalidStockRequest):
        service.commit(ORDER, {"A": 1})
    assert _levels(inventory, "A") == (5, 2, 3)


def test_an_unexplained_refusal_is_retried(service: StockService, inventory: FakeInventory) -> None:
    inventory.refusals_to_inject = 2  # e.g. stock freed between the refused write and the read
    assert service.reserve(ORDER, {"A": 1}).outcome == "reserved"
    inventory.refusals_to_inject = 2
    assert service.release(ORDER, {"A": 1}).outcome == "released"


def test_endless_unexplained_refusals_become_contention(service: StockService, inventory: FakeInventory) -> None:
    inventory.refusals_to_inject = 100
    with pytest.raises(StockContention) as raised:
        service.reserve(ORDER, {"A": 1})
    assert raised.value.status == 503  # a Busy: the admin API answers 503 with Retry-After


def test_adjust_changes_on_hand_and_available(service: StockService) -> None:
    assert service.adjust("A", 3, "delivery").model_dump() == {
        "sku": "A", "on_hand": 8, "reserved": 0, "available": 8, "low_stock_threshold": 5}


def test_adjust_below_zero_available_is_a_409(service: StockService, inventory: FakeInventory) -> None:
    service.reserve(ORDER, {"A": 4})
    with pytest.raises(InsufficientStock) as raised:
        service.adjust("A", -2, "damaged")
    assert raised.value.status == 409
    assert raised.value.errors[0]["available"] == 1
    assert service.adjust("A", -1, "damaged").available == 0


def test_adjust_of_an_unknown_sku_or_by_zero(service: StockService) -> None:
    with pytest.raises(NotFound):
        service.adjust("NOPE", 1, "delivery")
    with pytest.raises(ValidationFailed):
        service.adjust("A", 0, "nothing")
