"""Proof that orders and the stock they hold agree: every order's reservation lines are what its status implies,
and every reservation line belongs to an order that holds it.

The order workflow (statemachines/order.asl.json) moves stock in one transaction per order, so all lines of an
order share one state, one line per SKU with the order's units of that SKU. Per order status, the line states it
may show:
    settled:   what the status implies once the workflow rests;
    in flight: a state the workflow passes through between two of its steps (a restore to an instant can catch
               one; the order's execution finishes it, or the reconciler does).
A line in any other state, a line without its order, or lines that differ from the order's SKUs or units is a
violation. Like check_inventory, call it when nothing is in flight, or on restored tables.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from storefront.dynamodb import from_item

NONE = "none"  # the order holds no reservation lines
# status -> (settled line states, in-flight line states)
LINE_STATES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # ReserveStock done, CreatePayment not yet; or CreatePayment failed and ReleaseStockAfterError ran.
    "pending": (frozenset({NONE}), frozenset({"reserved", "released"})),
    # CommitStock done, MarkPaid not yet; or an error after reserving released the stock, MarkCancelled not yet.
    "awaiting_payment": (frozenset({"reserved"}), frozenset({"committed", "released"})),
    "paid": (frozenset({"committed"}), frozenset()),
    "fulfilling": (frozenset({"committed"}), frozenset()),
    "shipped": (frozenset({"committed"}), frozenset()),
    "delivered": (frozenset({"committed"}), frozenset()),
    "rejected": (frozenset({NONE}), frozenset()),  # a rejected reservation writes nothing
    # MarkPaymentFailed / MarkExpired run before ReleaseStock.
    "payment_failed": (frozenset({"released"}), frozenset({"reserved"})),
    "expired": (frozenset({"released"}), frozenset({"reserved"})),
    # Cancelled after reserving (released), or before any reservation was written (none).
    "cancelled": (frozenset({"released", NONE}), frozenset()),
}


@dataclass
class ReservationsReport:
    orders: int = 0
    lines: int = 0
    violations: list[str] = field(default_factory=list)
    in_flight: list[str] = field(default_factory=list)


def check_orders_against_reservations(client: Any, orders_table: str, inventory_table: str) -> ReservationsReport:
    """Scan both tables and compare them (see the module's docstring)."""
    orders = [
        item
        for item in _scan(client, orders_table)
        if str(item.get("pk", "")).startswith("ORDER#") and item.get("sk") == "ORDER"
    ]
    lines = [item for item in _scan(client, inventory_table) if str(item.get("sk", "")).startswith("ORDER#")]
    return compare(orders, lines)


def compare(orders: Iterable[dict[str, Any]], lines: Iterable[dict[str, Any]]) -> ReservationsReport:
    """Orders (the orders table's ORDER items) against reservation lines (the inventory table's ORDER# items)."""
    report = ReservationsReport()
    lines_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        report.lines += 1
        lines_of[str(line.get("order_id"))].append(line)
    for order in orders:
        report.orders += 1
        order_id = str(order["id"])
        _check_order(
            order_id, str(order.get("status")), _units(order.get("lines", [])), lines_of.pop(order_id, []), report
        )
    for order_id, orphans in sorted(lines_of.items()):
        skus = ", ".join(sorted(str(line.get("sku")) for line in orphans))
        report.violations.append(f"order {order_id}: reservation lines ({skus}) but no order")
    return report


def _check_order(
    order_id: str, status: str, wanted: Counter[str], lines: list[dict[str, Any]], report: ReservationsReport
) -> None:
    where = f"order {order_id} ({status})"
    if status not in LINE_STATES:
        report.violations.append(f"{where}: unknown status")
        return
    states = {str(line.get("state")) for line in lines} or {NONE}
    if len(states) > 1:
        report.violations.append(f"{where}: its lines are in different states {sorted(states)}")
        return
    (state,) = states
    if lines:
        held = Counter({str(line.get("sku")): int(line.get("quantity", 0)) for line in lines})
        if len(held) != len(lines) or held != wanted:
            report.violations.append(
                f"{where}: lines hold {dict(sorted(held.items()))}, the order has {dict(sorted(wanted.items()))}"
            )
    settled, in_flight = LINE_STATES[status]
    if state in in_flight:
        report.in_flight.append(f"{where}: lines {state}, the workflow has a step to finish")
    elif state not in settled:
        report.violations.append(f"{where}: lines {state}, expected {' or '.join(sorted(settled))}")


def _units(order_lines: Iterable[dict[str, Any]]) -> Counter[str]:
    """Units per SKU, duplicate lines merged, as the stock function merges them."""
    units: Counter[str] = Counter()
    for line in order_lines:
        units[str(line["sku"])] += int(line["quantity"])
    return units


def _scan(client: Any, table: str) -> Iterable[dict[str, Any]]:
    for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        yield from (from_item(item) for item in page["Items"])
