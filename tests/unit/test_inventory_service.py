"""StockService rules on an in-memory fake of the repository that enforces the same conditions as the
DynamoDB transactions: outcomes, exactly-once under retries, mismatches, adjustments."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pytest
from storefront.audit.models import ActorRef, AuditEntry
from storefront.inventory.models import (
    STATE_AFTER,
    AdjustRequest,
    InvalidStockRequest,
    Movement,
    ReservationLine,
    StockLevel,
    ThresholdRequest,
    history_entry,
)
from storefront.inventory.repository import MovementRefused, StockContention
from storefront.inventory.service import ReservationNotHeld, StockService

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
ORDER = "Qx7mN2pL9vK4rT8wZ1yB5cD3fG6hJ0sA"
OTHER = "Rn4tY8wE1uI6oP0aS5dFgZq3K9xV2mB7"


class FakeInventory:
    """All or nothing, with the conditions of the real transactions."""

    def __init__(self, on_hand: dict[str, int]) -> None:
        self.stock = {
            sku: StockLevel(sku=sku, on_hand=n, reserved=0, available=n, low_stock_threshold=5)
            for sku, n in on_hand.items()
        }
        self.lines: dict[tuple[str, str], ReservationLine] = {}
        self.refusals_to_inject = 0
        self.writes = 0
        self.adjustments: dict[tuple[str, str], dict[str, Any]] = {}
        self.audited: list[dict[str, Any]] = []

    def level(self, sku: str) -> StockLevel | None:
        return self.stock.get(sku)

    def levels(self, skus: Iterable[str]) -> dict[str, StockLevel]:
        return {sku: self.stock[sku] for sku in skus if sku in self.stock}

    def reservation_lines(self, order_id: str, skus: Iterable[str]) -> dict[str, ReservationLine]:
        return {sku: self.lines[order_id, sku] for sku in skus if (order_id, sku) in self.lines}

    def reserve(self, order_id: str, quantities: dict[str, int], at: datetime) -> None:
        self._maybe_refuse()
        if any(
            (order_id, sku) in self.lines or sku not in self.stock or self.stock[sku].available < q
            for sku, q in quantities.items()
        ):
            raise MovementRefused()
        for sku, q in quantities.items():
            self.lines[order_id, sku] = ReservationLine(
                order_id=order_id,
                sku=sku,
                quantity=q,
                state="reserved",
                history=[history_entry("reserve", q, at.isoformat())],
            )
            self._apply(sku, "reserve", q)

    def commit(self, order_id: str, quantities: dict[str, int], at: datetime) -> None:
        self._settle("commit", order_id, quantities)

    def release(self, order_id: str, quantities: dict[str, int], at: datetime) -> None:
        self._settle("release", order_id, quantities)

    def adjust(
        self,
        sku: str,
        adjustment_id: str,
        delta: int,
        reason: str,
        at: datetime,
        note: str | None,
        actor: dict[str, Any],
        also: list[dict[str, Any]],
    ) -> None:
        self._maybe_refuse()
        level = self.stock.get(sku) or StockLevel(sku=sku, on_hand=0, reserved=0, available=0)
        if (sku, adjustment_id) in self.adjustments or level.available + delta < 0:
            raise MovementRefused()
        self.adjustments[sku, adjustment_id] = {"delta": delta, "reason": reason, "note": note, "actor": actor}
        self.audited += also
        self.stock[sku] = level.model_copy(
            update={"on_hand": level.on_hand + delta, "available": level.available + delta}
        )

    def adjustment(self, sku: str, adjustment_id: str) -> dict[str, Any] | None:
        return self.adjustments.get((sku, adjustment_id))

    def set_threshold(
        self, sku: str, threshold: int | None, read: StockLevel | None, also: list[dict[str, Any]]
    ) -> None:
        self._maybe_refuse()
        if self.stock.get(sku) != read:
            raise MovementRefused()
        level = read or StockLevel(sku=sku, on_hand=0, reserved=0, available=0)
        self.stock[sku] = level.model_copy(update={"low_stock_threshold": threshold})
        self.audited += also

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
        self.stock[sku] = level.model_copy(
            update={
                "on_hand": level.on_hand + entry.delta_on_hand,
                "reserved": level.reserved + entry.delta_reserved,
                "available": level.available + entry.delta_available,
            }
        )
        self.writes += 1

    def _maybe_refuse(self) -> None:
        if self.refusals_to_inject:
            self.refusals_to_inject -= 1
            raise MovementRefused()


@pytest.fixture
def inventory() -> FakeInventory:
    return FakeInventory({"A": 5, "B": 2, "C": 0})


class FakeAudit:
    """The audit entry's put, as the repository hands it to the transaction."""

    def put_item(self, entry: AuditEntry) -> dict[str, Any]:
        return {"Put": entry}


@pytest.fixture
def service(inventory: FakeInventory) -> StockService:
    return StockService(inventory, FakeAudit(), now=lambda: NOW)  # type: ignore[arg-type]


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


ACTOR = ActorRef(sub="sub-1", username="ada", email="ada@example.com")


def adjust(
    delta: int, adjustment_id: str = "adj-1", sku: str = "A", reason: str = "received", note: str | None = None
) -> AdjustRequest:
    return AdjustRequest(
        action="adjust", sku=sku, adjustment_id=adjustment_id, delta=delta, reason=reason, note=note, actor=ACTOR
    )


def test_adjust_changes_on_hand_and_available_and_is_audited_with_it(
    service: StockService, inventory: FakeInventory
) -> None:
    outcome = service.adjust(adjust(3, note="pallet 7"))
    assert outcome.outcome == "adjusted" and outcome.level is not None
    assert outcome.level.model_dump() == {
        "sku": "A",
        "on_hand": 8,
        "reserved": 0,
        "available": 8,
        "low_stock_threshold": 5,
    }
    assert inventory.adjustments["A", "adj-1"]["actor"] == {
        "sub": "sub-1",
        "username": "ada",
        "email": "ada@example.com",
    }
    [put] = inventory.audited
    entry = put["Put"]
    assert (entry.action, entry.target, entry.at, entry.actor) == ("inventory.adjust", "sku:A", NOW, ACTOR)
    assert {k: (c.before, c.after) for k, c in entry.changes.items()} == {
        "delta": (None, 3),
        "reason": (None, "received"),
        "note": (None, "pallet 7"),
    }


def test_a_retried_adjustment_changes_nothing_and_answers_the_same(
    service: StockService, inventory: FakeInventory
) -> None:
    service.adjust(adjust(3))
    again = service.adjust(adjust(3))  # the admin API crashed before answering, and the operator retried
    assert again.outcome == "adjusted" and _levels(inventory, "A") == (8, 0, 8)
    assert len(inventory.audited) == 1
    with pytest.raises(InvalidStockRequest, match="was another one"):
        service.adjust(adjust(4))  # the same id for another adjustment: a bug of the caller's


def test_adjust_below_zero_available_is_rejected_naming_what_is_available(
    service: StockService, inventory: FakeInventory
) -> None:
    service.reserve(ORDER, {"A": 4})
    outcome = service.adjust(adjust(-2, reason="damaged"))
    assert outcome.outcome == "rejected" and outcome.reason is not None
    assert outcome.reason.lines[0].model_dump() == {"sku": "A", "requested": 2, "available": 1}
    assert _levels(inventory, "A") == (5, 4, 1) and inventory.audited == []
    assert service.adjust(adjust(-1, "adj-2", reason="damaged")).level.available == 0  # type: ignore[union-attr]


def test_a_sku_never_stocked_can_receive_but_not_lose_units(service: StockService, inventory: FakeInventory) -> None:
    assert service.adjust(adjust(-1, sku="NEW", reason="lost")).outcome == "rejected"
    assert service.adjust(adjust(6, sku="NEW")).level.on_hand == 6  # type: ignore[union-attr]


def test_an_unexplained_refusal_of_an_adjustment_is_retried(service: StockService, inventory: FakeInventory) -> None:
    inventory.refusals_to_inject = 2
    assert service.adjust(adjust(1)).outcome == "adjusted" and _levels(inventory, "A") == (6, 0, 6)


def test_adjustment_requests_are_validated() -> None:
    with pytest.raises(ValueError, match="must change the stock"):
        adjust(0)
    with pytest.raises(ValueError, match="delta\n  Input should be a valid integer"):
        AdjustRequest.model_validate({**adjust(1).model_dump(), "delta": 1.5})
    with pytest.raises(ValueError, match="reason\n  Input should be 'received'"):
        AdjustRequest.model_validate({**adjust(1).model_dump(), "reason": "stolen"})
    with pytest.raises(ValueError, match="delta\n  Input should be less than or equal to 1000000"):
        AdjustRequest.model_validate({**adjust(1).model_dump(), "delta": 1_000_001})


def test_a_threshold_is_set_audited_and_unchanged_writes_nothing(
    service: StockService, inventory: FakeInventory
) -> None:
    request = ThresholdRequest(action="set_threshold", sku="A", low_stock_threshold=2, actor=ACTOR)
    assert service.set_threshold(request).level.low_stock_threshold == 2  # type: ignore[union-attr]
    assert service.set_threshold(request).outcome == "threshold_set"
    [put] = inventory.audited
    assert {k: (c.before, c.after) for k, c in put["Put"].changes.items()} == {"low_stock_threshold": (5, 2)}
    cleared = service.set_threshold(request.model_copy(update={"low_stock_threshold": None}))
    assert cleared.level.low_stock_threshold is None  # type: ignore[union-attr]
