"""The orders table: orders, the one-order-per-cart claim, and forward-only status transitions.

Items: order       pk=ORDER#<id>  sk=ORDER   the Order fields, task_token, email_key (index ByEmail),
                                             listing_pk=STATUS#<status>#<shard>, listing_sk=<created>#<id>
       cart claim  pk=CART#<id>   sk=ORDER   order_id, listing_pk=ALL#<shard>, listing_sk=<created>#<id>
                                             (written with the order, in one transaction, and never again)
Index ByListing (keys only) serves the admin's order lists newest first: the claims are every order by creation
time, the orders themselves the orders of one status (each transition moves the order's listing_pk in the same
write). LISTING_SHARDS partitions of each, chosen by order id and read as one list, so that neither every new order
nor every moving one lands on one index partition at peak (docs/architecture.md, "Orders for the merchant").
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from botocore.exceptions import ClientError

from storefront.dynamodb import SortKeyRange, batch_get, from_item, key, merged_query, sortable_time, to_item
from storefront.orders.models import ALLOWED_FROM, OrderStatus, StoredOrder

LISTING_INDEX = "ByListing"
EMAIL_INDEX = "ByEmail"
LISTING_SHARDS = 8


def listing_shard(order_id: str) -> int:
    return int(hashlib.sha256(order_id.encode()).hexdigest()[:8], 16) % LISTING_SHARDS


def listing_sk(created_at: datetime, order_id: str) -> str:
    """Newest first is descending order of this key: the creation time, then the id (unique, so pages never skip)."""
    return f"{sortable_time(created_at)}#{order_id}"


def status_partition(status: OrderStatus, order_id: str) -> str:
    return f"STATUS#{status.value}#{listing_shard(order_id)}"


class CartAlreadyOrdered(Exception):
    def __init__(self, order_id: str) -> None:
        super().__init__(order_id)
        self.order_id = order_id


class TransitionRefused(Exception):
    """The order is not in a status it may move to the target from (already there, or past it)."""

    def __init__(self, order: StoredOrder | None) -> None:
        super().__init__(order.status if order else "missing")
        self.order = order


# Optimistic concurrency on the order's own attributes: write only if each still has the value read (None:
# still absent); otherwise TransitionRefused, and the caller reads again.
Expected = dict[str, Any]


class Orders(Protocol):
    """What the workflow's steps, payments and fulfilment need of the orders table (OrderRepository is it)."""

    def get(self, order_id: str) -> StoredOrder | None: ...
    def transition(self, order_id: str, to: OrderStatus, at: datetime, expect: Expected | None = None,
                   **fields: Any) -> StoredOrder: ...
    def update_fields(self, order_id: str, condition_status: set[OrderStatus] | None = None,
                      expect: Expected | None = None, **fields: Any) -> StoredOrder: ...


class OrderRepository:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def create(self, order: StoredOrder) -> None:
        """Store a new order and claim its cart, both or neither; CartAlreadyOrdered if the cart has one."""
        try:
            self._client.transact_write_items(TransactItems=[
                {"Put": {"TableName": self._table, "ConditionExpression": "attribute_not_exists(pk)",
                         "Item": to_item({"pk": f"CART#{order.cart_id}", "sk": "ORDER", "order_id": order.id,
                                          "listing_pk": f"ALL#{listing_shard(order.id)}",
                                          "listing_sk": listing_sk(order.created_at, order.id)})}},
                {"Put": {"TableName": self._table, "ConditionExpression": "attribute_not_exists(pk)",
                         "Item": self._item(order)}},
            ])
        except ClientError as error:
            reasons = error.response.get("CancellationReasons") or []
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                existing = self.order_for_cart(order.cart_id)
                if existing:
                    raise CartAlreadyOrdered(existing) from error
            raise

    def get(self, order_id: str) -> StoredOrder | None:
        item = self._client.get_item(TableName=self._table, Key=key(pk=f"ORDER#{order_id}", sk="ORDER"),
                                     ConsistentRead=True).get("Item")
        return _order(item) if item else None

    def order_for_cart(self, cart_id: str) -> str | None:
        item = self._client.get_item(TableName=self._table, Key=key(pk=f"CART#{cart_id}", sk="ORDER"),
                                     ConsistentRead=True).get("Item")
        return from_item(item)["order_id"] if item else None

    def transition(self, order_id: str, to: OrderStatus, at: datetime, expect: Expected | None = None,
                   **fields: Any) -> StoredOrder:
        """Move the order to `to` if ALLOWED_FROM permits (and `expect` holds), append it to history, set `fields`;
        all in one write. TransitionRefused (with the current order) if not: the caller decides if that is fine."""
        allowed = sorted(ALLOWED_FROM[to])
        names = {"#status": "status", "#history": "history", "#updated_at": "updated_at", "#listing_pk": "listing_pk"}
        values: dict[str, Any] = {
            ":to": to.value, ":now": at.isoformat(),
            ":entry": [{"status": to.value, "at": at.isoformat()}],
            ":listing": status_partition(to, order_id),  # the order moves to its new status's list
            **{f":from{i}": status.value for i, status in enumerate(allowed)},
        }
        sets = ["#status = :to", "#history = list_append(#history, :entry)", "#updated_at = :now",
                "#listing_pk = :listing"]
        removes = []
        for i, (name, value) in enumerate(fields.items()):
            names[f"#f{i}"] = name
            if value is None:
                removes.append(f"#f{i}")
            else:
                values[f":f{i}"] = value
                sets.append(f"#f{i} = :f{i}")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        condition = f"#status IN ({', '.join(f':from{i}' for i in range(len(allowed)))})"
        try:
            response = self._client.update_item(
                TableName=self._table, Key=key(pk=f"ORDER#{order_id}", sk="ORDER"),
                UpdateExpression=expression,
                ConditionExpression=condition + _expected(expect, names, values),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={k: _value(v) for k, v in values.items()},
                ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                old = error.response.get("Item")
                raise TransitionRefused(_order(old) if old else self.get(order_id)) from error
            raise
        return _order(response["Attributes"])

    def update_fields(self, order_id: str, condition_status: set[OrderStatus] | None = None,
                      expect: Expected | None = None, **fields: Any) -> StoredOrder:
        """Set fields without a status change (payment details, the task token, tracking), optionally only in
        some statuses and only if `expect` holds."""
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values: dict[str, Any] = {f":f{i}": value for i, value in enumerate(fields.values())}
        request: dict[str, Any] = {
            "TableName": self._table, "Key": key(pk=f"ORDER#{order_id}", sk="ORDER"),
            "UpdateExpression": "SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields))),
            "ExpressionAttributeNames": names, "ReturnValues": "ALL_NEW",
        }
        condition = "attribute_exists(pk)"
        if condition_status:
            names["#status"] = "status"
            values.update({f":s{i}": s.value for i, s in enumerate(sorted(condition_status))})
            condition += f" AND #status IN ({', '.join(f':s{i}' for i in range(len(condition_status)))})"
        request["ConditionExpression"] = condition + _expected(expect, names, values)
        request["ExpressionAttributeValues"] = {k: _value(v) for k, v in values.items()}
        try:
            return _order(self._client.update_item(**request)["Attributes"])
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise TransitionRefused(self.get(order_id)) from error
            raise

    # ---------------------------------------------------------------- the admin's lists (no Scan)

    def get_many(self, order_ids: Sequence[str]) -> dict[str, StoredOrder]:
        """The orders that exist among `order_ids`, by id (one BatchGetItem per 100)."""
        rows = batch_get(self._client, self._table, [key(pk=f"ORDER#{order_id}", sk="ORDER") for order_id in order_ids])
        return {row["id"]: _stored(row) for row in rows}

    def list_ids(self, status: OrderStatus | None, limit: int, bounds: SortKeyRange) -> tuple[list[str], str | None]:
        """Up to `limit` order ids newest first (of one status, or all), within `bounds` of listing_sk, and the
        listing_sk to go on from (None on the last page)."""
        partitions = [f"STATUS#{status.value}#{shard}" if status else f"ALL#{shard}" for shard in range(LISTING_SHARDS)]
        items, more = merged_query(self._client, self._table, LISTING_INDEX, "listing_pk", "listing_sk", partitions,
                                   limit, bounds, descending=True)
        keys = [item["listing_sk"]["S"] for item in items]
        return [k.split("#", 1)[1] for k in keys], keys[-1] if more else None

    def ids_by_email(self, email_key: str, low: str, high: str, limit: int,
                     after: tuple[str, str] | None) -> tuple[list[tuple[str, str]], bool]:
        """Up to `limit` (created_at, order id) of one email's orders created within [low, high] (the stored
        created_at text), newest first, after `after`; and whether more may follow."""
        request: dict[str, Any] = {
            "TableName": self._table, "IndexName": EMAIL_INDEX, "ScanIndexForward": False, "Limit": limit,
            "KeyConditionExpression": "email_key = :email AND created_at BETWEEN :low AND :high",
            "ExpressionAttributeValues": to_item({":email": email_key, ":low": low, ":high": high}),
        }
        if after is not None:
            request["ExclusiveStartKey"] = to_item({"email_key": email_key, "created_at": after[0],
                                                    "pk": f"ORDER#{after[1]}", "sk": "ORDER"})
        page = self._client.query(**request)
        found = [(item["created_at"]["S"], item["pk"]["S"].removeprefix("ORDER#")) for item in page.get("Items", [])]
        return found, "LastEvaluatedKey" in page

    @staticmethod
    def _item(order: StoredOrder) -> dict[str, Any]:
        return to_item({"pk": f"ORDER#{order.id}", "sk": "ORDER", **order.model_dump(mode="json"),
                        "listing_pk": status_partition(order.status, order.id),
                        "listing_sk": listing_sk(order.created_at, order.id)})


def _expected(expect: Expected | None, names: dict[str, str], values: dict[str, Any]) -> str:
    """The condition `expect` adds (names and values go into the request's maps)."""
    condition = ""
    for i, (name, value) in enumerate((expect or {}).items()):
        names[f"#e{i}"] = name
        if value is None:
            condition += f" AND attribute_not_exists(#e{i})"
        else:
            values[f":e{i}"] = value
            condition += f" AND #e{i} = :e{i}"
    return condition


def _value(value: Any) -> dict[str, Any]:
    return to_item({"v": value})["v"]


def _order(item: dict[str, Any]) -> StoredOrder:
    return _stored(from_item(item))


def _stored(values: dict[str, Any]) -> StoredOrder:
    return StoredOrder.model_validate({k: v for k, v in values.items() if k in StoredOrder.model_fields})
