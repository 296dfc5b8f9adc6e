"""The inventory table: stock levels, the reservation lines of orders, and adjustments. One partition per SKU.

Items: level        pk=SKU#<sku>  sk=LEVEL              sku, on_hand, reserved, available, low_stock_threshold?
       reservation  pk=SKU#<sku>  sk=ORDER#<order_id>   order_id, sku, quantity, state, history, returned,
                                                        held_shard + held_at while state is reserved,
                                                        ledger_at once committed
       adjustment   pk=SKU#<sku>  sk=ADJUST#<id>        sku, delta, reason, note?, actor?, at, ledger_at
       return       pk=SKU#<sku>  sk=RETURN#<return_id> return_id, order_id, sku, quantity, reason, at, ledger_at
A level is only ever written in one transaction with its ledger entries (an adjustment, a reservation line and
its history, or a return and its line's `returned`), so the ledger always sums to the level
(storefront.inventory.invariant proves it).
The ledger a merchant reads is the index ByLedger (sku, ledger_at): every movement of on_hand carries
ledger_at = <sortable time>#<its sk>, set in the movement's transaction (an adjustment when it is made, a reservation
line when it is committed: the sale, a return when its units come back), so a SKU's movements read newest first, a
page at a time, with one Query.
An adjustment's id is the admin request's (its Idempotency-Key's): the conditional put of ADJUST#<id> is what makes a
retried adjustment change nothing, whatever crashed between the stock function and the admin API.
Index ByHeldSince (sparse: reserved lines only; keys and quantity): held_shard (one of HELD_SHARDS, from the order
id, so every line of an order is in one shard and no partition takes every reservation at peak), held_at. The
reconciler finds reservations held too long with it, without a Scan.
The stock function is the only writer of levels; other contexts read them.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from storefront.dynamodb import (
    ConditionsFailed,
    Contention,
    backoff,
    batch_get,
    from_item,
    key,
    sortable_time,
    to_item,
    transact_write,
)
from storefront.errors import Busy
from storefront.inventory.models import (
    STATE_AFTER,
    HistoryEntry,
    Movement,
    ReservationLine,
    ReturnEntry,
    StockLevel,
    history_entry,
)

MAX_ATTEMPTS = 6
HELD_INDEX = "ByHeldSince"
HELD_SHARDS = 16
LEDGER_INDEX = "ByLedger"


def held_shard(order_id: str) -> str:
    return str(int(hashlib.sha256(order_id.encode()).hexdigest()[:8], 16) % HELD_SHARDS)


class StockContention(Busy):
    """DynamoDB kept refusing the write (conflicting transactions, throttling). Safe to retry later: the order
    workflow's Retry matches this class name, and over HTTP it is a 503 with Retry-After."""


class MovementRefused(Exception):
    """A condition of the write failed: not enough stock, or the order's lines are not in the expected state."""


def ledger_at(at: datetime, sk: str) -> str:
    """The ledger index's sort key of the movement an item records: its time, then its own key (unique in its SKU)."""
    return f"{sortable_time(at)}#{sk}"


class InventoryRepository:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # ---------------------------------------------------------------- reads

    def available(self, skus: Iterable[str]) -> dict[str, int]:
        """Units available per SKU; a SKU with no stock record has 0."""
        wanted = sorted(set(skus))
        rows = batch_get(
            self._client, self._table, [key(pk=f"SKU#{sku}", sk="LEVEL") for sku in wanted], projection="sku, available"
        )
        levels = {row["sku"]: max(int(row.get("available", 0)), 0) for row in rows}
        return {sku: levels.get(sku, 0) for sku in wanted}

    def level(self, sku: str) -> StockLevel | None:
        item = self._client.get_item(
            TableName=self._table, Key=key(pk=f"SKU#{sku}", sk="LEVEL"), ConsistentRead=True
        ).get("Item")
        return _level(from_item(item)) if item else None

    def levels(self, skus: Iterable[str]) -> dict[str, StockLevel]:
        rows = self._get_consistently([key(pk=f"SKU#{sku}", sk="LEVEL") for sku in skus])
        return {row["sku"]: _level(row) for row in rows}

    def reservation_lines(self, order_id: str, skus: Iterable[str]) -> dict[str, ReservationLine]:
        """The order's stored lines among `skus` (there is no index by order: the caller names the SKUs)."""
        rows = self._get_consistently([key(pk=f"SKU#{sku}", sk=f"ORDER#{order_id}") for sku in skus])
        lines = (
            ReservationLine.model_validate({k: v for k, v in row.items() if k in ReservationLine.model_fields})
            for row in rows
        )
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
            level = to_item(
                {
                    "pk": f"SKU#{sku}",
                    "sk": "LEVEL",
                    "sku": sku,
                    "on_hand": on_hand,
                    "reserved": reserved,
                    "available": on_hand - reserved,
                    "low_stock_threshold": low_stock_threshold,
                }
            )
            # Written only if nobody changed the level since it was read.
            if current is None:
                write = {
                    "Put": {"TableName": self._table, "Item": level, "ConditionExpression": "attribute_not_exists(pk)"}
                }
            else:
                write = {
                    "Put": {
                        "TableName": self._table,
                        "Item": level,
                        "ConditionExpression": "#on_hand = :on_hand AND #reserved = :reserved",
                        "ExpressionAttributeNames": _names("on_hand", "reserved"),
                        "ExpressionAttributeValues": to_item(
                            {":on_hand": current.on_hand, ":reserved": current.reserved}
                        ),
                    }
                }
            delta = on_hand - (current.on_hand if current else 0)
            entries = (
                [
                    self._adjustment(
                        sku, uuid.uuid4().hex, delta, "received" if current is None else "correction", datetime.now(UTC)
                    )
                ]
                if delta
                else []
            )
            try:
                self._transact([write, *entries])
                return
            except MovementRefused:
                if attempt:
                    backoff(attempt)
                current = self.level(sku)
        raise StockContention(f"{sku}: the level kept changing while it was being set")

    def adjust(
        self,
        sku: str,
        adjustment_id: str,
        delta: int,
        reason: str,
        at: datetime,
        note: str | None,
        actor: dict[str, Any],
        also: Iterable[dict[str, Any]] = (),
    ) -> None:
        """Add `delta` to on_hand and available, with its ledger entry ADJUST#<adjustment_id> and `also` (its audit
        entry), all or nothing. A SKU without a level gets one (only units can be added to it). MovementRefused if
        available would go below zero, or the adjustment is recorded already."""
        level: dict[str, Any] = {
            "TableName": self._table,
            "Key": key(pk=f"SKU#{sku}", sk="LEVEL"),
            "UpdateExpression": "SET #sku = :sku, #on_hand = if_not_exists(#on_hand, :zero) + :delta, "
            "#available = if_not_exists(#available, :zero) + :delta, "
            "#reserved = if_not_exists(#reserved, :zero)",
            "ExpressionAttributeNames": _names("sku", "on_hand", "available", "reserved"),
            "ExpressionAttributeValues": to_item({":sku": sku, ":delta": delta, ":zero": 0}),
        }
        if delta < 0:  # No arithmetic in conditions: available + delta >= 0 is written available >= -delta.
            level["ConditionExpression"] = "attribute_exists(pk) AND #available >= :minus_delta"
            level["ExpressionAttributeValues"][":minus_delta"] = {"N": str(-delta)}
        self._transact(
            [{"Update": level}, self._adjustment(sku, adjustment_id, delta, reason, at, note=note, actor=actor), *also]
        )

    def adjustment(self, sku: str, adjustment_id: str) -> dict[str, Any] | None:
        """A recorded adjustment (delta, reason, note, ...), or None."""
        item = self._client.get_item(
            TableName=self._table, Key=key(pk=f"SKU#{sku}", sk=f"ADJUST#{adjustment_id}"), ConsistentRead=True
        ).get("Item")
        return from_item(item) if item else None

    def set_threshold(
        self, sku: str, threshold: int | None, read: StockLevel | None, also: Iterable[dict[str, Any]] = ()
    ) -> None:
        """Set (None: remove) the SKU's low_stock_threshold, only if it is still what `read` said, with `also`;
        a SKU without a level gets one, at zero. MovementRefused if the threshold or the level's existence changed."""
        names = _names("low_stock_threshold")
        if read is None:
            write: dict[str, Any] = {
                "Put": {
                    "TableName": self._table,
                    "ConditionExpression": "attribute_not_exists(pk)",
                    "Item": to_item(
                        {
                            "pk": f"SKU#{sku}",
                            "sk": "LEVEL",
                            "sku": sku,
                            "on_hand": 0,
                            "reserved": 0,
                            "available": 0,
                            "low_stock_threshold": threshold,
                        }
                    ),
                }
            }
        else:
            update: dict[str, Any] = {
                "TableName": self._table,
                "Key": key(pk=f"SKU#{sku}", sk="LEVEL"),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": {},
            }
            if threshold is None:
                update["UpdateExpression"] = "REMOVE #low_stock_threshold"
            else:
                update["UpdateExpression"] = "SET #low_stock_threshold = :threshold"
                update["ExpressionAttributeValues"][":threshold"] = {"N": str(threshold)}
            if read.low_stock_threshold is None:
                update["ConditionExpression"] = "attribute_exists(pk) AND attribute_not_exists(#low_stock_threshold)"
            else:
                update["ConditionExpression"] = "#low_stock_threshold = :read"
                update["ExpressionAttributeValues"][":read"] = {"N": str(read.low_stock_threshold)}
            if not update["ExpressionAttributeValues"]:
                del update["ExpressionAttributeValues"]
            write = {"Update": update}
        self._transact([write, *also])

    def ledger(
        self, sku: str, limit: int, after: dict[str, str] | None
    ) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        """Up to `limit` of the SKU's ledger items, newest first, after the index key `after`; and the key to go on
        from (None on the last page). Eventually consistent, as every index: a movement just made may take a moment."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": LEDGER_INDEX,
            "ScanIndexForward": False,
            "KeyConditionExpression": "#sku = :sku",
            "ExpressionAttributeNames": _names("sku"),
            "ExpressionAttributeValues": {":sku": {"S": sku}},
            "Limit": limit + 1,
        }
        if after is not None:
            request["ExclusiveStartKey"] = key(**after)
        items = [from_item(item) for item in self._client.query(**request).get("Items", [])]
        page = items[:limit]
        resume = {name: page[-1][name] for name in ("pk", "sk", "sku", "ledger_at")} if len(items) > limit else None
        return page, resume

    def _adjustment(
        self,
        sku: str,
        adjustment_id: str,
        delta: int,
        reason: str,
        at: datetime,
        note: str | None = None,
        actor: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        sk = f"ADJUST#{adjustment_id}"
        return {
            "Put": {
                "TableName": self._table,
                "ConditionExpression": "attribute_not_exists(pk)",
                "Item": to_item(
                    {
                        "pk": f"SKU#{sku}",
                        "sk": sk,
                        "sku": sku,
                        "delta": delta,
                        "reason": reason,
                        "note": note,
                        "actor": actor,
                        "at": at.isoformat(),
                        "ledger_at": ledger_at(at, sk),
                    }
                ),
            }
        }

    # ---------------------------------------------------------------- order movements, one transaction each

    def reserve(self, order_id: str, quantities: dict[str, int], at: datetime) -> None:
        """Take the units from available into reserved and record the order's lines; all or nothing.
        MovementRefused if a SKU lacks stock or the order already has a line for one of them."""
        items: list[dict[str, Any]] = []
        for sku, quantity in quantities.items():
            entry = history_entry("reserve", quantity, at.isoformat())
            items.append(self._level_update(sku, entry, min_available=quantity))
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "ConditionExpression": "attribute_not_exists(pk)",
                        "Item": to_item(
                            {
                                "pk": f"SKU#{sku}",
                                "sk": f"ORDER#{order_id}",
                                "order_id": order_id,
                                "sku": sku,
                                "quantity": quantity,
                                "state": "reserved",
                                "history": [entry.model_dump()],
                                "held_shard": held_shard(order_id),
                                "held_at": at.isoformat(),
                            }
                        ),
                    }
                }
            )
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
            line: dict[str, Any] = {
                "TableName": self._table,
                "Key": key(pk=f"SKU#{sku}", sk=f"ORDER#{order_id}"),
                "UpdateExpression": "SET #state = :to, #history = list_append(#history, :entry)",
                "ConditionExpression": "#state = :reserved AND #quantity = :quantity",
                "ExpressionAttributeNames": _names("state", "history", "quantity"),
                "ExpressionAttributeValues": to_item(
                    {
                        ":to": STATE_AFTER[movement],
                        ":entry": [entry.model_dump()],
                        ":reserved": "reserved",
                        ":quantity": quantity,
                    }
                ),
            }
            if movement == "commit":  # the units leave on_hand: the sale enters the SKU's ledger
                line["UpdateExpression"] += ", #ledger_at = :ledger_at"
                line["ExpressionAttributeNames"]["#ledger_at"] = "ledger_at"
                line["ExpressionAttributeValues"][":ledger_at"] = {"S": ledger_at(at, f"ORDER#{order_id}")}
            line["UpdateExpression"] += " REMOVE held_shard, held_at"  # settled: off the reconciler's held index
            items.append({"Update": line})
        self._transact(items)

    def return_units(
        self, return_id: str, order_id: str, quantities: dict[str, int], lines: dict[str, ReservationLine], at: datetime
    ) -> None:
        """Committed units of the order back on hand and available, with a RETURN# ledger item per SKU; all or
        nothing. MovementRefused if a return with this id is recorded already, or a line changed since `lines` was
        read (its state or its returned count)."""
        items: list[dict[str, Any]] = []
        for sku, quantity in quantities.items():
            line = lines[sku]
            items.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": key(pk=f"SKU#{sku}", sk="LEVEL"),
                        "UpdateExpression": "SET #on_hand = #on_hand + :q, #available = #available + :q",
                        "ExpressionAttributeNames": _names("on_hand", "available"),
                        "ExpressionAttributeValues": to_item({":q": quantity}),
                    }
                }
            )
            was_returned = "attribute_not_exists(#returned)" if line.returned == 0 else "#returned = :was"
            items.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": key(pk=f"SKU#{sku}", sk=f"ORDER#{order_id}"),
                        "UpdateExpression": "SET #returned = :now",
                        "ConditionExpression": f"#state = :committed AND {was_returned}",
                        "ExpressionAttributeNames": _names("state", "returned"),
                        "ExpressionAttributeValues": to_item(
                            {
                                ":committed": "committed",
                                ":now": line.returned + quantity,
                                **({":was": line.returned} if line.returned else {}),
                            }
                        ),
                    }
                }
            )
            entry = ReturnEntry(return_id=return_id, order_id=order_id, sku=sku, quantity=quantity, at=at.isoformat())
            sk = f"RETURN#{return_id}"
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "ConditionExpression": "attribute_not_exists(pk)",
                        "Item": to_item(
                            {"pk": f"SKU#{sku}", "sk": sk, **entry.model_dump(), "ledger_at": ledger_at(at, sk)}
                        ),
                    }
                }
            )  # the units back: in the ledger
        self._transact(items)

    def returns(self, return_id: str, skus: Iterable[str]) -> dict[str, ReturnEntry]:
        """The return's recorded entries among `skus`."""
        rows = self._get_consistently([key(pk=f"SKU#{sku}", sk=f"RETURN#{return_id}") for sku in skus])
        entries = (
            ReturnEntry.model_validate({k: v for k, v in row.items() if k in ReturnEntry.model_fields}) for row in rows
        )
        return {entry.sku: entry for entry in entries}

    def held_reservations(self, shard: str, held_before: str) -> Iterable[tuple[str, str, int]]:
        """(order id, sku, quantity) of every line still reserved in `shard` since before `held_before`."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": HELD_INDEX,
            "KeyConditionExpression": "held_shard = :shard AND held_at < :before",
            "ExpressionAttributeValues": {":shard": {"S": shard}, ":before": {"S": held_before}},
        }
        while True:
            page = self._client.query(**request)
            for item in page.get("Items", []):
                yield (
                    item["sk"]["S"].removeprefix("ORDER#"),
                    item["pk"]["S"].removeprefix("SKU#"),
                    int(item["quantity"]["N"]),
                )
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _level_update(self, sku: str, entry: HistoryEntry, min_available: int | None = None) -> dict[str, Any]:
        """Apply a history entry's deltas to the level, optionally only while `min_available` units are available."""
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": key(pk=f"SKU#{sku}", sk="LEVEL"),
            "UpdateExpression": "SET #available = #available + :available, #reserved = #reserved + :reserved, "
            "#on_hand = #on_hand + :on_hand",
            "ExpressionAttributeNames": _names("available", "reserved", "on_hand"),
            "ExpressionAttributeValues": to_item(
                {
                    ":available": entry.delta_available,
                    ":reserved": entry.delta_reserved,
                    ":on_hand": entry.delta_on_hand,
                }
            ),
        }
        if min_available is not None:
            update["ConditionExpression"] = "#available >= :min_available"
            update["ExpressionAttributeValues"][":min_available"] = {"N": str(min_available)}
        return {"Update": update}

    # ---------------------------------------------------------------- DynamoDB plumbing

    def _transact(self, items: list[dict[str, Any]]) -> None:
        """One TransactWriteItems, retried while DynamoDB refuses it for transient reasons (conflicting
        transactions, throttling); MovementRefused when a condition fails, StockContention when retries run out."""
        try:
            transact_write(self._client, items)
        except ConditionsFailed as refused:
            raise MovementRefused(sorted(code for code in refused.codes if code)) from refused
        except Contention:
            raise StockContention("Stock is being changed by many orders at once; retry shortly.") from None

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
