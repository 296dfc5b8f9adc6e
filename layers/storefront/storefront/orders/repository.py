"""The orders table: orders, the one-order-per-cart claim, and forward-only status transitions.

Items: order       pk=ORDER#<id>  sk=ORDER   the Order fields, task_token, email_key (index ByEmail), client_hold
       cart claim  pk=CART#<id>   sk=ORDER   order_id       (written with the order, in one transaction)
The same table holds the idempotency records (storefront.idempotency), the seen webhook events and the
per-client limit items (storefront.limits.repository).
"""

from __future__ import annotations

from datetime import datetime
from collections.abc import Sequence
from typing import Any, Protocol

from botocore.exceptions import ClientError

from storefront.dynamodb import RETRYABLE, backoff, from_item, key, refusal_codes, to_item
from storefront.errors import Busy
from storefront.orders.models import ALLOWED_FROM, OrderStatus, StoredOrder

MAX_ATTEMPTS = 6


class CartAlreadyOrdered(Exception):
    def __init__(self, order_id: str) -> None:
        super().__init__(order_id)
        self.order_id = order_id


class GuardRefused(Exception):
    """The condition of one of the guards written with a new order failed: nothing was written."""

    def __init__(self, index: int, item: dict[str, Any] | None) -> None:
        super().__init__(index)
        self.index = index  # which guard
        self.item = item  # the guarded item as it was (DynamoDB's form), when the guard asked for it


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

    def create(self, order: StoredOrder, guards: Sequence[dict[str, Any]] = ()) -> None:
        """Store a new order and claim its cart, and write `guards` (conditional transaction items: the per-client
        limits), all or nothing. CartAlreadyOrdered if the cart has an order, GuardRefused if a guard's condition
        fails; conflicts with concurrent transactions and throttling are retried, then Busy (503)."""
        items = [
            {"Put": {"TableName": self._table, "ConditionExpression": "attribute_not_exists(pk)",
                     "Item": to_item({"pk": f"CART#{order.cart_id}", "sk": "ORDER", "order_id": order.id})}},
            {"Put": {"TableName": self._table, "ConditionExpression": "attribute_not_exists(pk)",
                     "Item": self._item(order)}},
            *guards,
        ]
        for attempt in range(MAX_ATTEMPTS):
            try:
                self._client.transact_write_items(TransactItems=items)
                return
            except ClientError as error:
                reasons = error.response.get("CancellationReasons") or []
                if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                    existing = self.order_for_cart(order.cart_id)
                    if existing:
                        raise CartAlreadyOrdered(existing) from error
                for index, reason in enumerate(reasons[2:]):
                    if reason.get("Code") == "ConditionalCheckFailed":
                        raise GuardRefused(index, reason.get("Item")) from error
                if not refusal_codes(error) & RETRYABLE:
                    raise
            if attempt < MAX_ATTEMPTS - 1:
                backoff(attempt)
        raise Busy("Many checkouts are being stored at once; retry with the same Idempotency-Key shortly.")

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
        names = {"#status": "status", "#history": "history", "#updated_at": "updated_at"}
        values: dict[str, Any] = {
            ":to": to.value, ":now": at.isoformat(),
            ":entry": [{"status": to.value, "at": at.isoformat()}],
            **{f":from{i}": status.value for i, status in enumerate(allowed)},
        }
        sets = ["#status = :to", "#history = list_append(#history, :entry)", "#updated_at = :now"]
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

    @staticmethod
    def _item(order: StoredOrder) -> dict[str, Any]:
        return to_item({"pk": f"ORDER#{order.id}", "sk": "ORDER", **order.model_dump(mode="json")})


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
    values = from_item(item)
    return StoredOrder.model_validate({k: v for k, v in values.items() if k in StoredOrder.model_fields})
