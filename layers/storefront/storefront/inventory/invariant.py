"""Proof that the inventory table is consistent: every level equals what its ledger says it should be.

For every SKU:  on_hand   = Σ deltas of its ledger: adjustments, minus the quantities of committed lines (sales),
                            plus returns
                reserved  = Σ quantities of reserved lines
                available = on_hand - reserved,   and none of them negative;
the ledger a merchant reads (the ByLedger index) holds exactly those movements: every adjustment, every committed
line and every return carries ledger_at = <the movement's time>#<its sk>, and no other line does; every reservation
line's history is exactly the movements its state implies, with the deltas its quantity implies; and a line's
`returned` units are exactly its order's returns of that SKU, never more than it committed (only committed lines
return anything). Call it when no movement is in flight (after a test): Scan and Query do not read a snapshot, so
a transaction committing mid-read could show up as a false alarm.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from storefront.dynamodb import from_item
from storefront.inventory.models import HISTORY_OF, ReservationLine, ReturnEntry, StockLevel, history_entry
from storefront.inventory.repository import ledger_at


def check_inventory(client: Any, table_name: str, skus: Iterable[str] | None = None) -> list[str]:
    """Violations, one sentence each; empty when the table is consistent. `skus` limits the check to those SKUs
    (a test's own), otherwise the whole table is scanned."""
    partitions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in _items(client, table_name, skus):
        partitions[item["pk"]].append(item)
    violations: list[str] = []
    for pk, items in sorted(partitions.items()):
        violations.extend(_check_sku(pk.removeprefix("SKU#"), items))
    return violations


def _items(client: Any, table: str, skus: Iterable[str] | None) -> Iterable[dict[str, Any]]:
    if skus is None:
        pages = client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    else:
        pages = (
            page
            for sku in sorted(set(skus))
            for page in client.get_paginator("query").paginate(
                TableName=table,
                ConsistentRead=True,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": f"SKU#{sku}"}},
            )
        )
    for page in pages:
        yield from (from_item(item) for item in page["Items"])


def _check_sku(sku: str, items: list[dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    level: StockLevel | None = None
    adjusted = sold = held = returned = 0
    returned_by_line: dict[str, int] = defaultdict(int)  # order id -> its returns' units
    lines: dict[str, ReservationLine] = {}
    for item in items:
        sk = str(item.get("sk"))
        try:
            if sk == "LEVEL":
                level = StockLevel.model_validate(item)
            elif sk.startswith("ADJUST#"):
                adjusted += int(item["delta"])
                problems.extend(_check_ledger_at(sku, sk, item.get("ledger_at"), datetime.fromisoformat(item["at"])))
            elif sk.startswith("ORDER#"):
                line = ReservationLine.model_validate(item)
                problems.extend(_check_line(sku, sk, line))
                lines[line.order_id] = line
                if line.state == "committed":
                    sold += line.quantity
                    committed_at = datetime.fromisoformat(line.history[-1].at)
                    problems.extend(_check_ledger_at(sku, sk, item.get("ledger_at"), committed_at))
                elif "ledger_at" in item:
                    problems.append(f"{sku}: {line.state} line {sk} is in the ledger, though no unit left")
                held += line.quantity if line.state == "reserved" else 0
            elif sk.startswith("RETURN#"):
                entry = ReturnEntry.model_validate(item)
                returned += entry.quantity
                returned_by_line[entry.order_id] += entry.quantity
                problems.extend(_check_ledger_at(sku, sk, item.get("ledger_at"), datetime.fromisoformat(entry.at)))
            else:
                problems.append(f"{sku}: unexpected item {sk}")
        except (KeyError, TypeError, ValueError, ValidationError) as error:
            problems.append(f"{sku}: item {sk} is malformed ({str(error).splitlines()[0]})")
    for order_id in sorted(set(lines) | set(returned_by_line)):
        order_line = lines.get(order_id)
        recorded = order_line.returned if order_line else 0
        if recorded != returned_by_line[order_id]:
            problems.append(
                f"{sku}: line of order {order_id} says {recorded} returned, its returns hold "
                f"{returned_by_line[order_id]}"
            )
        if (
            order_line
            and order_line.returned
            and (order_line.state != "committed" or order_line.returned > order_line.quantity)
        ):
            problems.append(
                f"{sku}: line of order {order_id} is {order_line.state} with {order_line.quantity} unit(s), "
                f"yet {order_line.returned} returned"
            )
    if level is None:
        return [*problems, f"{sku}: {len(items)} item(s) but no LEVEL"]
    if level.on_hand != adjusted - sold + returned:
        problems.append(
            f"{sku}: on_hand is {level.on_hand}, but its ledger, adjustments ({adjusted}) minus sales "
            f"({sold}) plus returns ({returned}), makes {adjusted - sold + returned}"
        )
    if level.reserved != held:
        problems.append(f"{sku}: reserved is {level.reserved}, but reserved lines hold {held}")
    if level.available != level.on_hand - level.reserved:
        problems.append(
            f"{sku}: available is {level.available}, not on_hand - reserved = {level.on_hand - level.reserved}"
        )
    for name in ("on_hand", "reserved", "available"):
        if getattr(level, name) < 0:
            problems.append(f"{sku}: {name} is negative ({getattr(level, name)})")
    return problems


def _check_ledger_at(sku: str, sk: str, recorded: Any, at: datetime) -> list[str]:
    """A movement is in the ledger index, at its own time."""
    if recorded != ledger_at(at, sk):
        return [f"{sku}: {sk} is in the ledger as {recorded!r}, not at its time {ledger_at(at, sk)!r}"]
    return []


def _check_line(sku: str, sk: str, line: ReservationLine) -> list[str]:
    where = f"{sku}: line of order {line.order_id}"
    problems = []
    if line.sku != sku or sk != f"ORDER#{line.order_id}":
        problems.append(f"{where} is stored under SKU#{sku}/{sk}")
    if line.quantity < 1:
        problems.append(f"{where} has quantity {line.quantity}")
    movements = [entry.movement for entry in line.history]
    if movements != HISTORY_OF[line.state]:
        problems.append(f"{where} is {line.state} but its history is {movements}")
    for entry in line.history:
        expected = history_entry(entry.movement, line.quantity, entry.at)
        if entry != expected:
            problems.append(f"{where}: {entry.movement} of {line.quantity} recorded as {entry.model_dump()}")
    return problems
