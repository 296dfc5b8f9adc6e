"""The inventory table: stock levels, the reservation lines of orders, and adjustments. One partition per SKU.

Items: level        pk=SKU#<sku>  sk=LEVEL                     sku, on_hand, reserved, available, low_stock_threshold
       reservation  pk=SKU#<sku>  sk=ORDER#<order_id>          order_id, sku, quantity, state, history, returned,
                                                               held_shard + held_at while state is reserved
       adjustment   pk=SKU#<sku>  sk=ADJUST#<iso time>#<uuid>  sku, delta, reason, at
       return       pk=SKU#<sku>  sk=RETURN#<return_id>        return_id, order_id, sku, quantity, reason, at
A level is only ever written in one transaction with its ledger entries (an adjustment, a reservation line and
its history, or a return and its line's `returned`), so the ledger always sums to the level
(storefront.inventory.invariant proves it). The stock function is the only writer of levels; others read them.
Index ByHeldSince (sparse: reserved lines only; keys and quantity): held_shard (one of HELD_SHARDS, from the order
id, so every line of an order is in one shard and no partition takes every reservation at peak), held_at. The
reconciler finds reservations held too long with it, without a Scan.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from storefront.dynamodb import RETRYABLE, backoff, batch_get, from_item, key, to_item
from storefront.errors import Busy
from storefront.inventory.models import (
    STATE_AFTER, HistoryEntry, Movement, ReservationLine, ReturnEntry, StockLevel, history_entry,
)

MAX_ATTEMPTS = 6
HELD_INDEX = "ByHeldSince"
HELD_SHARDS = 16


def held_shard(order_id: str) -> str:
    return str(int(hashlib.sha256(order_id.encode()).hexdigest()[:8], 16) % HELD_SHARDS)


class StockContention(Busy):
    """DynamoDB kept refusing the write (conflicting transactions, throttling). Safe to retry later: the order
    workflow's Retry matches this class name, and over HTTP it is a 503 with Retry-After."""


class MovementRefused(Exception):
    """A condition of the write failed: not enough stock, or the order's lines are not in the expected state."""


class InventoryRepository:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # ---------------------------------------------------------------- reads

    def available(self, skus: Iterable[str]) -> dict[str, int]:
        """Units available per SKU; a SKU with no stock record has 0."""
        wanted = sorted(set(skus))
        rows = batch_get(self._client, self._table, [key(pk=f"SKU#{sku}", sk="LEVEL") for sku in wanted],
                         projection="sku, available")
        levels = {row["sku"]: max(int(row.get("available", 0)), 0) for row in rows}
        return {sku: levels.get(sku, 0) for sku in wanted}

    def level(self, sku: str) -> StockLevel | None:
        item = self._client.get_item(TableName=self._table, Key=key(pk=f"SKU#{sku}", sk="LEVEL"),
                                     ConsistentRead=True).get("Item")
        return _level(from_item(item)) if item else None

    def levels(self, skus: Iterable[str]) -> dict[str, StockLevel]:
        rows = self._get_consistently([key(pk=f"SKU#{sku}", sk="LEVEL") for sku in skus])
        return {row["sku"]: _level(row) for row in rows}

    def reservation_lines(self, order_id: str, skus: Iterable[str]) -> dict[str, ReservationLine]:
        """The order's stored lines among `skus` (there is no index by order: the caller names the SKUs)."""
        rows = self._get_consistently([key(pk=f"SKU#{sku}", sk=f"ORDER#{order_id}") for sku in skus])
        lines = (ReservationLine.model_validate({k: v for k, v in row.items() if k in ReservationLine.model_fields})
                 for row in rows)
        return {line.sku: line for line in lines}

    # ---------------------------------------------------------------- adjustments

    def put_level(self, sku: str, on_hand: int, low_stock_threshold: int = 5) -> None:
        """Set a SKU's stock on hand (seeding, tests): the level and an adjustment of the difference, in one
        transaction. Units reserved by orders stay reserved, so available = on_hand - reserved."""
        current: StockLevel | None = None  # usually a new SKU: try creating it, and read only if it exists
        for attempt in range(MAX_ATTEMPTS):
            reserved = current.reserved if current else 0
            if on_hand < reserved:
                raise ValueError(f"{sku}: {reserved} units are reserved, on hand cannot be {on_hand}")
            level = to_item({"pk": f"SKU#{sku}", "sk": "LEVEL", "sku": sku, "on_hand": on_hand, "reserved": reserved,
                             "available": on_hand - reserved, "low_stock_threshold": low_stock_threshold})
            # Written only if nobody changed the level since it was read.
            if current is None:
                write = {"Put": {"TableName": self._table, "Item": level,
                                 "ConditionExpression": "attribute_not_exists(pk)"}}
            else:
                write = {"Put": {"TableName": self._table, "Item": level,
                                 "ConditionExpression": "#on_hand = :on_hand AND #reserved = :reserved",
                                 "ExpressionAttributeNames": _names("on_hand", "reserved"),
                                 "ExpressionAttributeValues": to_item({":on_hand": current.on_hand,
                                                                       ":reserved": current.reserved})}}
            delta = on_hand - (current.on_hand if current else 0)
            entries = [self._adjustment(sku, delta, "opening stock" if current is None else "stock set",
                                        datetime.now(UTC))] if delta else []
            try:
                self._transact([write, *entries])
                return
            except MovementRefused:
                if attempt:
                    backoff(attempt)
                current = self.level(sku)
        raise StockContention(f"{sku}: the level kept changing while it was being set")

    def adjust(self, sku: str, delta: int, reason: str, at: datetime) -> None:
        """Add `delta` to on_hand and available, with its ledger entry; MovementRefused if the SKU has no level
        or available would go below zero."""
        self._transact([
            {"Update": {"TableName": self._table, "Key": key(pk=f"SKU#{sku}", sk="LEVEL"),
                        "UpdateExpression": "SET #on_hand = #on_hand + :delta, #available = #available + :delta",
                        # No arithmetic in conditions: available + delta >= 0 is written available >= -delta.
                        "ConditionExpression": "attribute_exists(pk) AND #available >= :minus_delta",
                        "ExpressionAttributeNames": _names("on_hand", "available"),
                        "ExpressionAttributeValues": to_item({":delta": delta, ":minus_delta": -delta})}},
            self._adjustment(sku, delta, reason, at),
        ])

    def _adjustment(self, sku: str, delta: int, reason: str, at: datetime) -> dict[str, Any]:
        stamp = at.isoformat()
        return {"Put": {"TableName": self._table, "Item": to_item({
            "pk": f"SKU#{sku}", "sk": f"ADJUST#{stamp}#{uuid.uuid4().hex}", "sku": sku, "delta": delta,
            "reason": reason, "at": stamp})}}

    # ---------------------------------------------------------------- order movements, one transaction each

    def reserve(self, order_id: str, quantities: dict[str, int], at: datetime) -> None:
        """Take the units from available into reserved and record the order's lines; all or nothing.
        MovementRefused if a SKU lacks stock or the order already has a line for one of them."""
        items: list[dict[str, Any]] = []
        for sku, quantity in quantities.items():
            entry = history_entry("reserve", quantity, at.isoformat())
            items.append(self._level_update(sku, entry, min_available=quantity))
            items.append({"Put": {"TableName": self._table, "ConditionExpression": "attribute_not_exists(pk)",
                                  "Item": to_item({"pk": f"SKU#{sku}", "sk": f"ORDER#{order_id}", "order_id": order_id,
                                                   "sku": sku, "quantity": quantity, "state": "reserved",
                                                   "history": [entry.model_dump()],
                                                   "held_shard": held_shard(order_id), "held_at": at.isoformat()})}})
        self._transact(items)

    def commit(self, order_id: str, quantities: dict[str, int], at: datetime) -> None:
        """Payment succeeded: the reserved units leave the shop (on_hand and reserved fall)."""
        self._settle("commit", order_id, quantities, at)

    def release(self, order_id: str, quantities: dict[str, int], at: datetime) -> None:
        """The order ended unpaid: the reserved units return to available."""
        self._settle("release", order_id, quantities, at)

    def _settle(self, movement: Movement, order_id: str, quantities: dict[str, int], at: datetime) -> None:
        """MovementRefused unless every line is still `reserved`, with exactly these quantities."""
        items: list[dict[str, Any]] = []
        for sku, quantity in quantities.items():
            entry = history_entry(movement, quantity, at.isoformat())
            items.append(self._level_update(sku, entry))
            items.append({"Update": {
                "TableName": self._table, "Key": key(pk=f"SKU#{sku}", sk=f"ORDER#{order_id}"),
                # Settled: off the reconciler's index of held reservations.
                "UpdateExpression": "SET #state = :to, #history = list_append(#history, :entry) "
                                    "REMOVE held_shard, held_at",
                "ConditionExpression": "#state = :reserved AND #quantity = :quantity",
                "ExpressionAttributeNames": _names("state", "history", "quantity"),
                "ExpressionAttributeValues": to_item({":to": STATE_AFTER[movement], ":entry": [entry.model_dump()],
                                                      ":reserved": "reserved", ":quantity": quantity}),
            }})
        self._transact(items)

    def return_units(self, return_id: str, order_id: str, quantities: dict[str, int],
                     lines: dict[str, ReservationLine], at: datetime) -> None:
        """Committed units of the order back on hand and available, with a RETURN# ledger item per SKU; all or
        nothing. MovementRefused if a return with this id is recorded already, or a line changed since `lines` was
        read (its state or its returned count)."""
        items: list[dict[str, Any]] = []
        for sku, quantity in quantities.items():
            line = lines[sku]
            items.append({"Update": {
                "TableName": self._table, "Key": key(pk=f"SKU#{sku}", sk="LEVEL"),
                "UpdateExpression": "SET #on_hand = #on_hand + :q, #available = #available + :q",
                "ExpressionAttributeNames": _names("on_hand", "available"),
                "ExpressionAttributeValues": to_item({":q": quantity})}})
            was_returned = ("attribute_not_exists(#returned)" if line.returned == 0 else "#returned = :was")
            items.append({"Update": {
                "TableName": self._table, "Key": key(pk=f"SKU#{sku}", sk=f"ORDER#{order_id}"),
                "UpdateExpression": "SET #returned = :now",
                "ConditionExpression": f"#state = :committed AND {was_returned}",
                "ExpressionAttributeNames": _names("state", "returned"),
                "ExpressionAttributeValues": to_item({":committed": "committed", ":now": line.returned + quantity,
                                                      **({":was": line.returned} if line.returned else {})})}})
            entry = ReturnEntry(return_id=return_id, order_id=order_id, sku=sku, quantity=quantity, at=at.isoformat())
            items.append({"Put": {"TableName": self._table, "ConditionExpression": "attribute_not_exists(pk)",
                                  "Item": to_item({"pk": f"SKU#{sku}", "sk": f"RETURN#{return_id}",
                                                   **entry.model_dump()})}})
        self._transact(items)

    def returns(self, return_id: str, skus: Iterable[str]) -> dict[str, ReturnEntry]:
        """The return's recorded entries among `skus`."""
        rows = self._get_consistently([key(pk=f"SKU#{sku}", sk=f"RETURN#{return_id}") for sku in skus])
        entries = (ReturnEntry.model_validate({k: v for k, v in row.items() if k in ReturnEntry.model_fields})
                   for row in rows)
        return {entry.sku: entry for entry in entries}

    def held_reservations(self, shard: str, held_before: str) -> Iterable[tuple[str, str, int]]:
        """(order id, sku, quantity) of every line still reserved in `shard` since before `held_before`."""
        request: dict[str, Any] = {
            "TableName": self._table, "IndexName": HELD_INDEX,
            "KeyConditionExpression": "held_shard = :shard AND held_at < :before",
            "ExpressionAttributeValues": {":shard": {"S": shard}, ":before": {"S": held_before}},
        }
        while True:
            page = self._client.query(**request)
            for item in page.get("Items", []):
                yield (item["sk"]["S"].removeprefix("ORDER#"), item["pk"]["S"].removeprefix("SKU#"),
                       int(item["quantity"]["N"]))
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _level_update(self, sku: str, entry: HistoryEntry, min_available: int | None = None) -> dict[str, Any]:
        """Apply a history entry's deltas to the level, optionally only while `min_available` units are available."""
        update: dict[str, Any] = {
            "TableName": self._table, "Key": key(pk=f"SKU#{sku}", sk="LEVEL"),
            "UpdateExpression": "SET #available = #available + :available, #reserved = #reserved + :reserved, "
                                "#on_hand = #on_hand + :on_hand",
            "ExpressionAttributeNames": _names("available", "reserved", "on_hand"),
            "ExpressionAttributeValues": to_item({":available": entry.delta_available,
                                                  ":reserved": entry.delta_reserved, ":on_hand": entry.delta_on_hand}),
        }
        if min_available is not None:
            update["ConditionExpression"] = "#available >= :min_available"
            update["ExpressionAttributeValues"][":min_available"] = {"N": str(min_available)}
        return {"Update": update}

    # ---------------------------------------------------------------- DynamoDB plumbing

    def _transact(self, items: list[dict[str, Any]]) -> None:
        """One TransactWriteItems, retried while DynamoDB refuses it for transient reasons (conflicting
        transactions, throttling); MovementRefused when a condition fails, StockContention when retries run out."""
        for attempt in range(MAX_ATTEMPTS):
            try:
                self._client.transact_write_items(TransactItems=items)
                return
            except ClientError as error:
                reasons = {r.get("Code") for r in error.response.get("CancellationReasons") or []}
                if "ConditionalCheckFailed" in reasons:
                    raise MovementRefused(sorted(r for r in reasons if r)) from error
                if not ({error.response["Error"]["Code"]} | reasons) & RETRYABLE:
                    raise
            if attempt < MAX_ATTEMPTS - 1:
                backoff(attempt)
        raise StockContention("Stock is being changed by many orders at once; retry shortly.")

    def _get_consistently(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Strongly consistent BatchGetItem: what a movement just wrote, or just refused on. At most 100 keys
        (an order has at most 50 lines); UnprocessedKeys (throttling) are retried with backoff."""
        found: list[dict[str, Any]] = []
        pending: dict[str, Any] = {self._table: {"Keys": keys, "ConsistentRead": True}} if keys else {}
        for attempt in range(MAX_ATTEMPTS):
            if not pending:
                break
            response = self._client.batch_get_item(RequestItems=pending)
            found.extend(from_item(item) for item in response.get("Responses", {}).get(self._table, []))
            pending = response.get("UnprocessedKeys") or {}
            if pending:
                backoff(attempt)
        if pending:
            raise StockContention("DynamoDB kept keys unprocessed; retry shortly.")
        return found


def _names(*names: str) -> dict[str, str]:
    """Placeholders for attribute names: some (state, ...) are DynamoDB reserved words."""
    return {f"#{name}": name for name in names}


def _level(values: dict[str, Any]) -> StockLevel:
    return StockLevel.model_validate({k: v for k, v in values.items() if k in StockLevel.model_fields})
