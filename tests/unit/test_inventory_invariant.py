"""The invariant checker on hand-made items: clean when the ledger sums to the levels, and able to fail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from storefront.dynamodb import to_item
from storefront.inventory.invariant import check_inventory
from storefront.inventory.models import history_entry
from storefront.inventory.repository import ledger_at

T1, T2, T3 = "2026-01-01T09:00:00+00:00", "2026-01-02T09:00:00.250000+00:00", "2026-01-03T10:30:00+00:00"


class FakeClient:
    """Just enough of a DynamoDB client for the checker: Scan and Query paginators over a list of items."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = [to_item(item) for item in items]

    def get_paginator(self, operation: str) -> FakeClient:
        assert operation in ("scan", "query")
        return self

    def paginate(self, **request: Any) -> list[dict[str, Any]]:
        assert request["ConsistentRead"] is True
        if "KeyConditionExpression" in request:
            pk = request["ExpressionAttributeValues"][":pk"]
            return [{"Items": [item for item in self.items if item["pk"] == pk]}]
        return [{"Items": self.items[:2]}, {"Items": self.items[2:]}]


def _line(order: str, state: str, quantity: int, movements: list[str] | None = None) -> dict[str, Any]:
    moves = (
        movements
        or {"reserved": ["reserve"], "committed": ["reserve", "commit"], "released": ["reserve", "release"]}[state]
    )
    history = [history_entry(m, quantity, T3).model_dump() for m in moves]  # type: ignore[arg-type]
    line = {
        "pk": "SKU#A",
        "sk": f"ORDER#{order}",
        "order_id": order,
        "sku": "A",
        "quantity": quantity,
        "state": state,
        "history": history,
    }
    if state == "committed":  # the sale is in the ledger, at the commit's time
        line["ledger_at"] = ledger_at(datetime.fromisoformat(T3), f"ORDER#{order}")
    return line


def _adjustment(sku: str, name: str, delta: int, at: str, reason: str = "received") -> dict[str, Any]:
    sk = f"ADJUST#{name}"
    return {
        "pk": f"SKU#{sku}",
        "sk": sk,
        "sku": sku,
        "delta": delta,
        "reason": reason,
        "at": at,
        "ledger_at": ledger_at(datetime.fromisoformat(at), sk),
    }


def _consistent() -> list[dict[str, Any]]:
    """A: 10 received, 3 more delivered; order 1 committed 2, order 2 holds 4, order 3 released 5."""
    return [
        {
            "pk": "SKU#A",
            "sk": "LEVEL",
            "sku": "A",
            "on_hand": 11,
            "reserved": 4,
            "available": 7,
            "low_stock_threshold": 5,
        },
        _adjustment("A", "x", 10, T1),
        _adjustment("A", "y", 3, T2),
        _line("o1", "committed", 2),
        _line("o2", "reserved", 4),
        _line("o3", "released", 5),
        {
            "pk": "SKU#B",
            "sk": "LEVEL",
            "sku": "B",
            "on_hand": 0,
            "reserved": 0,
            "available": 0,
            "low_stock_threshold": 5,
        },
    ]


def _check(items: list[dict[str, Any]], skus: list[str] | None = None) -> list[str]:
    return check_inventory(FakeClient(items), "inventory", skus)


def test_a_consistent_table_has_no_violations() -> None:
    assert _check(_consistent()) == []
    assert _check(_consistent(), skus=["A", "B", "UNSEEN"]) == []


def _with_level(**changes: int) -> list[dict[str, Any]]:
    items = _consistent()
    items[0] = {**items[0], **changes}
    return items


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"on_hand": 12, "available": 8},
            "A: on_hand is 12, but its ledger, adjustments (13) minus sales (2) plus returns (0), makes 11",
        ),
        ({"reserved": 3, "available": 8}, "A: reserved is 3, but reserved lines hold 4"),
        ({"available": 8}, "A: available is 8, not on_hand - reserved = 7"),
    ],
)
def test_a_corrupted_level_is_detected(changes: dict[str, int], expected: str) -> None:
    assert expected in _check(_with_level(**changes))


def test_negative_levels_are_detected() -> None:
    items = [
        {
            "pk": "SKU#N",
            "sk": "LEVEL",
            "sku": "N",
            "on_hand": -1,
            "reserved": 0,
            "available": -1,
            "low_stock_threshold": 5,
        },
        _adjustment("N", "z", -1, T1, reason="lost"),
    ]
    assert _check(items) == ["N: on_hand is negative (-1)", "N: available is negative (-1)"]


def test_a_line_whose_history_contradicts_its_state_is_detected() -> None:
    items = _consistent()
    items[3] = _line("o1", "committed", 2, movements=["reserve"])
    assert any("is committed but its history is ['reserve']" in v for v in _check(items))
    items[3] = {**_line("o1", "committed", 2), "quantity": 3}  # history still says 2
    assert any("commit of 3 recorded as" in v for v in _check(items))


def test_missing_levels_and_malformed_or_unknown_items_are_detected() -> None:
    items = _consistent()
    del items[0]["on_hand"]
    items.append({"pk": "SKU#A", "sk": "RES#1"})
    items.append(_adjustment("Z", "q", 4, T1))
    violations = _check(items)
    assert any(v.startswith("A: item LEVEL is malformed") for v in violations)
    assert "A: unexpected item RES#1" in violations
    assert "Z: 1 item(s) but no LEVEL" in violations


def _returned(items: list[dict[str, Any]], units: int, *, on_line: int | None = None) -> list[dict[str, Any]]:
    """Order o1 (2 committed) returns `units`: its line says `on_line` (default: the same), the level gains them."""
    items = [dict(item) for item in items]
    items[0] = {**items[0], "on_hand": items[0]["on_hand"] + units, "available": items[0]["available"] + units}
    items[3] = {**items[3], "returned": units if on_line is None else on_line}
    items.append(
        {
            "pk": "SKU#A",
            "sk": "RETURN#rf_1",
            "return_id": "rf_1",
            "order_id": "o1",
            "sku": "A",
            "quantity": units,
            "reason": "returned",
            "at": T3,
            "ledger_at": ledger_at(datetime.fromisoformat(T3), "RETURN#rf_1"),
        }
    )
    return items


def test_returns_are_part_of_the_ledger() -> None:
    assert _check(_returned(_consistent(), 2)) == []
    assert _check(_returned(_consistent(), 1), skus=["A"]) == []


def test_a_return_the_line_does_not_know_is_detected() -> None:
    assert "A: line of order o1 says 0 returned, its returns hold 1" in _check(_returned(_consistent(), 1, on_line=0))


def test_a_level_that_forgot_a_return_is_detected() -> None:
    items = _returned(_consistent(), 1)
    items[0] = {**items[0], "on_hand": 11, "available": 7}
    assert "A: on_hand is 11, but its ledger, adjustments (13) minus sales (2) plus returns (1), makes 12" in _check(
        items
    )


def test_more_returned_than_committed_is_detected() -> None:
    violations = _check(_returned(_consistent(), 3))
    assert "A: line of order o1 is committed with 2 unit(s), yet 3 returned" in violations


def test_the_ledger_index_holds_exactly_the_movements_of_on_hand_at_their_times() -> None:
    items = _consistent()
    del items[1]["ledger_at"]  # an adjustment the merchant's ledger would not show
    assert "A: ADJUST#x is in the ledger as None, not at its time '2026-01-01T09:00:00.000000Z#ADJUST#x'" in _check(
        items
    )
    items = _consistent()
    items[2]["ledger_at"] = ledger_at(datetime.fromisoformat(T1), "ADJUST#y")  # out of its place in time
    assert any(v.startswith("A: ADJUST#y is in the ledger as") for v in _check(items))
    items = _consistent()
    del items[3]["ledger_at"]  # a sale missing from the ledger
    assert any(v.startswith("A: ORDER#o1 is in the ledger as None") for v in _check(items))
    items = _consistent()
    items[5]["ledger_at"] = "2026-01-03T10:30:00.000000Z#ORDER#o3"  # a release is no movement of on_hand
    assert "A: released line ORDER#o3 is in the ledger, though no unit left" in _check(items)
    items = _returned(_consistent(), 1)
    del items[-1]["ledger_at"]  # a return missing from the ledger
    assert any(v.startswith("A: RETURN#rf_1 is in the ledger as None") for v in _check(items))
