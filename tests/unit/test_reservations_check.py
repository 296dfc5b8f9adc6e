"""storefront.orders.reservations_check: each way orders and reservation lines can disagree, and what is only in
flight (see the module's table of line states per status)."""

from __future__ import annotations

from typing import Any

import pytest
from storefront.orders.reservations_check import LINE_STATES, compare


def order(order_id: str, status: str, *lines: tuple[str, int]) -> dict[str, Any]:
    return {
        "pk": f"ORDER#{order_id}",
        "sk": "ORDER",
        "id": order_id,
        "status": status,
        "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in lines],
    }


def line(order_id: str, sku: str, quantity: int, state: str) -> dict[str, Any]:
    return {
        "pk": f"SKU#{sku}",
        "sk": f"ORDER#{order_id}",
        "order_id": order_id,
        "sku": sku,
        "quantity": quantity,
        "state": state,
    }


SETTLED = [
    (
        order("o1", "awaiting_payment", ("A", 2), ("B", 1)),
        [line("o1", "A", 2, "reserved"), line("o1", "B", 1, "reserved")],
    ),
    (order("o2", "paid", ("A", 1), ("A", 2)), [line("o2", "A", 3, "committed")]),  # duplicate lines merged
    (order("o3", "delivered", ("A", 1)), [line("o3", "A", 1, "committed")]),
    (order("o4", "expired", ("A", 1)), [line("o4", "A", 1, "released")]),
    (order("o5", "rejected", ("A", 9)), []),
    (order("o6", "cancelled", ("A", 1)), []),
    (order("o7", "pending", ("A", 1)), []),
]


@pytest.mark.parametrize(("the_order", "lines"), SETTLED, ids=[o["status"] + "-" + o["id"] for o, _ in SETTLED])
def test_settled_orders_agree_with_their_lines(the_order: dict[str, Any], lines: list[dict[str, Any]]) -> None:
    report = compare([the_order], lines)
    assert (report.violations, report.in_flight, report.orders, report.lines) == ([], [], 1, len(lines))


def test_a_state_the_workflow_passes_through_is_in_flight_not_a_violation() -> None:
    report = compare(
        [order("o1", "awaiting_payment", ("A", 1)), order("o2", "expired", ("B", 1))],
        [line("o1", "A", 1, "committed"), line("o2", "B", 1, "reserved")],
    )
    assert report.violations == []
    assert report.in_flight == [
        "order o1 (awaiting_payment): lines committed, the workflow has a step to finish",
        "order o2 (expired): lines reserved, the workflow has a step to finish",
    ]


WRONG = {
    "paid order with reserved stock": (
        [order("o1", "paid", ("A", 1))],
        [line("o1", "A", 1, "reserved")],
        "order o1 (paid): lines reserved, expected committed",
    ),
    "awaiting payment without lines": (
        [order("o1", "awaiting_payment", ("A", 1))],
        [],
        "order o1 (awaiting_payment): lines none, expected reserved",
    ),
    "rejected order holding stock": (
        [order("o1", "rejected", ("A", 1))],
        [line("o1", "A", 1, "reserved")],
        "order o1 (rejected): lines reserved, expected none",
    ),
    "a line missing": (
        [order("o1", "paid", ("A", 1), ("B", 2))],
        [line("o1", "A", 1, "committed")],
        "order o1 (paid): lines hold {'A': 1}, the order has {'A': 1, 'B': 2}",
    ),
    "another quantity": (
        [order("o1", "paid", ("A", 2))],
        [line("o1", "A", 5, "committed")],
        "order o1 (paid): lines hold {'A': 5}, the order has {'A': 2}",
    ),
    "lines in different states": (
        [order("o1", "paid", ("A", 1), ("B", 1))],
        [line("o1", "A", 1, "committed"), line("o1", "B", 1, "reserved")],
        "order o1 (paid): its lines are in different states ['committed', 'reserved']",
    ),
    "a line without its order": ([], [line("o9", "A", 1, "reserved")], "order o9: reservation lines (A) but no order"),
    "an unknown status": ([order("o1", "lost", ("A", 1))], [], "order o1 (lost): unknown status"),
}


@pytest.mark.parametrize("case", WRONG, ids=list(WRONG))
def test_each_disagreement_is_a_violation(case: str) -> None:
    orders, lines, expected = WRONG[case]
    assert compare(orders, lines).violations == [expected]


def test_every_order_status_has_its_line_states() -> None:
    from storefront.orders.models import OrderStatus

    assert set(LINE_STATES) == {status.value for status in OrderStatus}
