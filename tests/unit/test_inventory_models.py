"""The stock function's event contract: what parses, what merges, and what is refused as InvalidStockRequest."""

from __future__ import annotations

from typing import Any

import pytest
from storefront.inventory.models import (
    CommitRequest,
    InvalidStockRequest,
    ReleaseRequest,
    ReserveRequest,
    StockOutcome,
    history_entry,
    parse_stock_request,
)

ORDER_ID = "Qx7mN2pL9vK4rT8wZ1yB5cD3fG6hJ0sA"


def _event(action: str = "reserve", **changes: Any) -> dict[str, Any]:
    return {"action": action, "order_id": ORDER_ID, "lines": [{"sku": "LINEN-SHIRT-M", "quantity": 1}], **changes}


@pytest.mark.parametrize(
    ("action", "model"), [("reserve", ReserveRequest), ("commit", CommitRequest), ("release", ReleaseRequest)]
)
def test_the_action_picks_the_request_type(action: str, model: type) -> None:
    assert isinstance(parse_stock_request(_event(action)), model)


def test_duplicate_skus_are_merged_and_sorted() -> None:
    request = parse_stock_request(
        _event(lines=[{"sku": "B-1", "quantity": 2}, {"sku": "A-1", "quantity": 1}, {"sku": "B-1", "quantity": 99}])
    )
    assert request.quantities() == {"A-1": 1, "B-1": 101}
    assert list(request.quantities()) == ["A-1", "B-1"]


def test_extra_fields_from_the_order_are_ignored() -> None:
    request = parse_stock_request(
        _event(
            email="a@example.com",
            lines=[{"sku": "LINEN-SHIRT-M", "quantity": 2, "title": "Linen shirt", "unit_price": {"amount": 5900}}],
        )
    )
    assert request.quantities() == {"LINEN-SHIRT-M": 2}


@pytest.mark.parametrize(
    "event",
    [
        None,
        [],
        "reserve",
        {},
        _event(action="restock"),
        _event(order_id="too-short"),
        _event(order_id="Qx7mN2pL9vK4rT8wZ1yB5cD3fG6hJ0s!"),
        _event(lines=[]),
        _event(lines=[{"sku": "A", "quantity": 1}] * 51),
        _event(lines=[{"sku": "lower-case", "quantity": 1}]),
        _event(lines=[{"sku": "A", "quantity": 0}]),
        _event(lines=[{"sku": "A", "quantity": 100}]),
        _event(lines=[{"sku": "A", "quantity": "1"}]),  # a string is a sign of a broken ASL path: refuse it
        _event(lines=[{"sku": "A", "quantity": True}]),
        _event(lines=[{"sku": "A"}]),
    ],
)
def test_invalid_events_raise_invalid_stock_request(event: Any) -> None:
    with pytest.raises(InvalidStockRequest) as raised:
        parse_stock_request(event)
    assert isinstance(raised.value, ValueError)


def test_fifty_lines_is_the_limit() -> None:
    request = parse_stock_request(_event(lines=[{"sku": f"SKU-{i}", "quantity": 99} for i in range(50)]))
    assert len(request.quantities()) == 50


def test_outcome_payload_omits_an_empty_reason() -> None:
    assert StockOutcome(outcome="reserved").to_payload() == {"outcome": "reserved"}


def test_history_entries_carry_the_deltas_of_their_movement() -> None:
    assert history_entry("reserve", 3, "t").model_dump() == {
        "movement": "reserve",
        "delta_available": -3,
        "delta_reserved": 3,
        "delta_on_hand": 0,
        "at": "t",
    }
    assert history_entry("commit", 3, "t").model_dump()["delta_on_hand"] == -3
    assert history_entry("release", 3, "t").model_dump()["delta_available"] == 3
