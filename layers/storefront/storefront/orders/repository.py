"""The orders table: orders, the one-order-per-cart claim, and forward-only status transitions.

Items: order       pk=ORDER#<id>  sk=ORDER   the Order fields, task_token, payment and refund bookkeeping,
                                             email_key (index ByEmail), client_hold,
                                             listing_pk=STATUS#<status>#<shard>, listing_sk=<created>#<id>
       cart claim  pk=CART#<id>   sk=ORDER   order_id, listing_pk=ALL#<shard>, listing_sk=<created>#<id>
                                             (written with the order, in one transaction, and never again)
The same table holds the idempotency records (storefront.idempotency), the seen webhook events and the
per-client limit items (storefront.limits.repository).
Index ByListing (keys only) serves the admin's order lists newest first: the claims are every order by creation
time, the orders themselves the orders of one status (each transition moves the order's listing_pk in the same
write). LISTING_SHARDS partitions of each, chosen by order id and read as one list, so that neither every new order
nor every moving one lands on one index partition at peak (docs/architecture.md, "Orders for the merchant").
Index ByReconcileDue (sparse, keys only): reconcile_shard (one of RECONCILE_SHARDS, from the order id, so no
single partition takes every order's write at peak), reconcile_at (ISO time the reconciler should look at the
order). Every order is in it from checkout until the reconciler found it settled; work that must not be lost
(a refund, a cancellation, a failed workflow step) puts it back in, due soon.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Protocol

from botocore.exceptions import ClientError

from storefront.dynamodb import (
    RETRYABLE,
    SortKeyRange,
    backoff,
    batch_get,
    cancelled_item,
    from_item,
    item_before_refusal,
    key,
    merged_query,
    refusal_codes,
    sortable_time,
    to_item,
)
from storefront.errors import Busy
from storefront.orders.models import (
    ALLOWED_FROM,
    OrderStatus,
    PaymentError,
    PaymentStatus,
    StoredOrder,
    StoredRefund,
)

MAX_ATTEMPTS = 6
RECONCILE_INDEX = "ByReconcileDue"
RECONCILE_SHARDS = 16


def reconcile_shard(order_id: str) -> str:
    return str(int(hashlib.sha256(order_id.encode()).hexdigest()[:8], 16) % RECONCILE_SHARDS)


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
    def transition(
        self, order_id: str, to: OrderStatus, at: datetime, expect: Expected | None = None, **fields: Any
    ) -> StoredOrder: ...
    def update_fields(
        self,
        order_id: str,
        condition_status: set[OrderStatus] | None = None,
        expect: Expected | None = None,
        **fields: Any,
    ) -> StoredOrder: ...


class OrderRepository:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def create(self, order: StoredOrder, guards: Sequence[dict[str, Any]] = ()) -> None:
        """Store a new order and claim its cart, and write `guards` (conditional transaction items: the per-client
        limits), all or nothing. CartAlreadyOrdered if the cart has an order, GuardRefused if a guard's condition
        fails; conflicts with concurrent transactions and throttling are retried, then Busy (503)."""
        items = [
            {
                "Put": {
                    "TableName": self._table,
                    "ConditionExpression": "attribute_not_exists(pk)",
                    "Item": to_item(
                        {
                            "pk": f"CART#{order.cart_id}",
                            "sk": "ORDER",
                            "order_id": order.id,
                            "listing_pk": f"ALL#{listing_shard(order.id)}",
                            "listing_sk": listing_sk(order.created_at, order.id),
                        }
                    ),
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "ConditionExpression": "attribute_not_exists(pk)",
                    "Item": self._item(order),
                }
            },
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
                        raise GuardRefused(index, cancelled_item(reason)) from error
                if not refusal_codes(error) & RETRYABLE:
                    raise
            if attempt < MAX_ATTEMPTS - 1:
                backoff(attempt)
        raise Busy("Many checkouts are being stored at once; retry with the same Idempotency-Key shortly.")

    def get(self, order_id: str) -> StoredOrder | None:
        item = self._client.get_item(
            TableName=self._table, Key=key(pk=f"ORDER#{order_id}", sk="ORDER"), ConsistentRead=True
        ).get("Item")
        return _order(item) if item else None

    def order_for_cart(self, cart_id: str) -> str | None:
        item = self._client.get_item(
            TableName=self._table, Key=key(pk=f"CART#{cart_id}", sk="ORDER"), ConsistentRead=True
        ).get("Item")
        return from_item(item)["order_id"] if item else None

    def transition(
        self,
        order_id: str,
        to: OrderStatus,
        at: datetime,
        expect: Expected | None = None,
        unless_paid: bool = False,
        **fields: Any,
    ) -> StoredOrder:
        """Move the order to `to` if ALLOWED_FROM permits (and `expect` holds), append it to history, set `fields`;
        all in one write. TransitionRefused (with the current order) if not: the caller decides if that is fine.
        `unless_paid`: refused too once the payment succeeded (an order that ends unpaid must really be unpaid)."""
        allowed = sorted(ALLOWED_FROM[to])
        names = {"#status": "status", "#history": "history", "#updated_at": "updated_at", "#listing_pk": "listing_pk"}
        values: dict[str, Any] = {
            ":to": to.value,
            ":now": at.isoformat(),
            ":entry": [{"status": to.value, "at": at.isoformat()}],
            ":listing": status_partition(to, order_id),  # the order moves to its new status's list
            **{f":from{i}": status.value for i, status in enumerate(allowed)},
        }
        sets = [
            "#status = :to",
            "#history = list_append(#history, :entry)",
            "#updated_at = :now",
            "#listing_pk = :listing",
        ]
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
        if unless_paid:
            names.update({"#pay": "payment", "#pay_status": "status"})
            values[":succeeded"] = PaymentStatus.SUCCEEDED.value
            condition += " AND (attribute_not_exists(#pay) OR #pay.#pay_status <> :succeeded)"
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=key(pk=f"ORDER#{order_id}", sk="ORDER"),
                UpdateExpression=expression,
                ConditionExpression=condition + _expected(expect, names, values),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={k: _value(v) for k, v in values.items()},
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                old = item_before_refusal(error)
                raise TransitionRefused(_order(old) if old else self.get(order_id)) from error
            raise
        return _order(response["Attributes"])

    def update_fields(
        self,
        order_id: str,
        condition_status: set[OrderStatus] | None = None,
        expect: Expected | None = None,
        **fields: Any,
    ) -> StoredOrder:
        """Set fields without a status change (payment details, the task token, tracking), optionally only in
        some statuses and only if `expect` holds."""
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values: dict[str, Any] = {f":f{i}": value for i, value in enumerate(fields.values())}
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": key(pk=f"ORDER#{order_id}", sk="ORDER"),
            "UpdateExpression": "SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields))),
            "ExpressionAttributeNames": names,
            "ReturnValues": "ALL_NEW",
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

    # ---------------------------------------------------------------- payments and refunds

    def record_payment(
        self,
        order_id: str,
        status: PaymentStatus,
        *,
        statuses: set[OrderStatus],
        attempts: int | None = None,
        last_error: PaymentError | None = None,
        decline_event: str | None = None,
        captured_amount: int | None = None,
    ) -> StoredOrder:
        """Set the payment's status where PAYMENT_MOVES allows it and the order is in one of `statuses`, so a late
        or duplicated event can never undo a success. `attempts` is written only over the count the caller read
        (optimistic); `decline_event` is remembered, and an event already counted is refused. TransitionRefused
        with the current order otherwise."""
        from storefront.orders.models import PAYMENT_MOVES

        update = _Update()
        update.set("payment.status", status.value)
        update.condition(f"{update.name('status')} IN ({update.values_of(s.value for s in sorted(statuses))})")
        update.condition(
            f"{update.name('payment.status')} IN ({update.values_of(s.value for s in sorted(PAYMENT_MOVES[status]))})"
        )
        if attempts is not None:
            read = attempts - 1
            update.condition(
                f"{update.name('payment.attempts')} = {update.value(read)}"
                if read
                else f"(attribute_not_exists({update.name('payment.attempts')}) OR "
                f"{update.name('payment.attempts')} = {update.value(0)})"
            )
            update.set("payment.attempts", attempts)
        if last_error is not None:
            update.set("payment.last_error", last_error.model_dump())
        if decline_event is not None:
            update.add("decline_events", {decline_event})
            update.condition(f"NOT contains({update.name('decline_events')}, {update.value(decline_event)})")
        if captured_amount is not None:
            update.set("captured_amount", captured_amount)
        return self._apply(order_id, update)

    def add_refund(
        self,
        order_id: str,
        refund: StoredRefund,
        *,
        captured_amount: int,
        statuses: set[OrderStatus] | None,
        refunds_read: int | None,
        due: str,
        captures: PaymentStatus | None = None,
        last_error: PaymentError | None = None,
    ) -> StoredOrder:
        """Record a refund, reserving its amount, in one conditional write: refunded_amount + amount never exceeds
        `captured_amount`, however many refunds race (the condition is DynamoDB's, not a read). `statuses`: only
        while the order is in one of them (None: any). `refunds_read`: refused too if another refund was recorded
        since the caller read that many (its lines were counted). `captures`: the refund is of a payment captured
        just now, which the order cannot keep (a late or mismatched payment): the payment's status (`captures`,
        `last_error`) and captured_amount are recorded in the same write, once; without it the order must have
        captured money already. The order becomes due for the reconciler at `due` until the refund is settled.
        TransitionRefused otherwise."""
        update = _Update()
        limit = captured_amount - refund.amount.amount
        if limit < 0:
            raise TransitionRefused(self.get(order_id))
        refunds, refunded = update.name("refunds"), update.name("refunded_amount")
        update.set_raw(
            refunds,
            f"list_append(if_not_exists({refunds}, {update.value([])}), "
            f"{update.value([refund.model_dump(mode='json', exclude_none=True)])})",
        )
        update.set_raw(refunded, f"if_not_exists({refunded}, {update.value(0)}) + {update.value(refund.amount.amount)}")
        update.set("reconcile_shard", reconcile_shard(order_id))
        update.set("reconcile_at", due)
        if statuses is not None:
            update.condition(f"{update.name('status')} IN ({update.values_of(s.value for s in sorted(statuses))})")
        update.condition(f"(attribute_not_exists({refunded}) OR {refunded} <= {update.value(limit)})")
        if refunds_read is not None:
            read = f"size({refunds}) = {update.value(refunds_read)}"
            update.condition(f"(attribute_not_exists({refunds}) OR {read})" if refunds_read == 0 else read)
        if captures is not None:
            update.set("payment.status", captures.value)
            if last_error is not None:
                update.set("payment.last_error", last_error.model_dump())
            update.set("captured_amount", captured_amount)
            update.condition(f"attribute_not_exists({update.name('captured_amount')})")
        else:
            update.condition(f"attribute_exists({update.name('captured_amount')})")
        return self._apply(order_id, update)

    def update_refund(
        self,
        order_id: str,
        index: int,
        refund_id: str,
        *,
        expect_status: str | None = None,
        give_back: int = 0,
        **changes: Any,
    ) -> StoredOrder:
        """Change the refund at `index` (it must still be `refund_id`, in `expect_status` if given); `give_back`
        returns a failed refund's amount to what may still be refunded. TransitionRefused otherwise."""
        update = _Update()
        path = f"refunds[{index}]"
        for name, value in changes.items():
            update.set(f"{path}.{name}", value)
        update.condition(f"{update.name(path + '.id')} = {update.value(refund_id)}")
        if expect_status is not None:
            update.condition(f"{update.name(path + '.status')} = {update.value(expect_status)}")
        if give_back:
            refunded = update.name("refunded_amount")
            update.set_raw(refunded, f"{refunded} - {update.value(give_back)}")
        return self._apply(order_id, update)

    def record_cancellation_return(self, order_id: str, lines: list[dict[str, Any]]) -> StoredOrder:
        """Note the units the cancellation put back on hand, once: TransitionRefused if they are noted already."""
        update = _Update()
        update.set("cancellation.returned", lines)
        update.condition(f"attribute_not_exists({update.name('cancellation.returned')})")
        return self._apply(order_id, update)

    # ---------------------------------------------------------------- the reconciler's work list

    def mark_due(self, order_id: str, due: str, **fields: Any) -> StoredOrder:
        """Put the order (back) on the reconciler's list, due at `due`, setting `fields` in the same write."""
        update = _Update()
        update.set("reconcile_shard", reconcile_shard(order_id))
        update.set("reconcile_at", due)
        for name, value in fields.items():
            if value is None:
                update.remove(name)
            else:
                update.set(name, value)
        return self._apply(order_id, update)

    def settle(self, order_id: str, due_read: str, **fields: Any) -> bool:
        """Take the order off the reconciler's list (and set `fields`, None removes) unless someone put new work on
        it since `due_read` was read (then reconcile_at changed); False in that case."""
        update = _Update()
        update.remove("reconcile_shard")
        update.remove("reconcile_at")
        for name, value in fields.items():
            if value is None:
                update.remove(name)
            else:
                update.set(name, value)
        update.condition(f"{update.name('reconcile_at')} = {update.value(due_read)}")
        try:
            self._apply(order_id, update)
        except TransitionRefused:
            return False
        return True

    def due(self, shard: str, until: str, limit: int = 100) -> Iterator[str]:
        """Ids of the orders in `shard` due at or before `until`, oldest first (the index is keys only)."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": RECONCILE_INDEX,
            "Limit": limit,
            "KeyConditionExpression": "reconcile_shard = :shard AND reconcile_at <= :until",
            "ExpressionAttributeValues": {":shard": {"S": shard}, ":until": {"S": until}},
        }
        while True:
            page = self._client.query(**request)
            for item in page.get("Items", []):
                yield item["pk"]["S"].removeprefix("ORDER#")
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _apply(self, order_id: str, update: _Update) -> StoredOrder:
        request = update.request(self._table, key(pk=f"ORDER#{order_id}", sk="ORDER"))
        try:
            return _order(self._client.update_item(**request)["Attributes"])
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                old = item_before_refusal(error)
                raise TransitionRefused(_order(old) if old else None) from error
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
        items, more = merged_query(
            self._client,
            self._table,
            LISTING_INDEX,
            "listing_pk",
            "listing_sk",
            partitions,
            limit,
            bounds,
            descending=True,
        )
        keys = [item["listing_sk"]["S"] for item in items]
        return [k.split("#", 1)[1] for k in keys], keys[-1] if more else None

    def ids_by_email(
        self, email_key: str, low: str, high: str, limit: int, after: tuple[str, str] | None
    ) -> tuple[list[tuple[str, str]], bool]:
        """Up to `limit` (created_at, order id) of one email's orders created within [low, high] (the stored
        created_at text), newest first, after `after`; and whether more may follow."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": EMAIL_INDEX,
            "ScanIndexForward": False,
            "Limit": limit,
            "KeyConditionExpression": "email_key = :email AND created_at BETWEEN :low AND :high",
            "ExpressionAttributeValues": to_item({":email": email_key, ":low": low, ":high": high}),
        }
        if after is not None:
            request["ExclusiveStartKey"] = to_item(
                {"email_key": email_key, "created_at": after[0], "pk": f"ORDER#{after[1]}", "sk": "ORDER"}
            )
        page = self._client.query(**request)
        found = [(item["created_at"]["S"], item["pk"]["S"].removeprefix("ORDER#")) for item in page.get("Items", [])]
        return found, "LastEvaluatedKey" in page

    @staticmethod
    def _item(order: StoredOrder) -> dict[str, Any]:
        return to_item(
            {
                "pk": f"ORDER#{order.id}",
                "sk": "ORDER",
                **order.model_dump(mode="json"),
                "listing_pk": status_partition(order.status, order.id),
                "listing_sk": listing_sk(order.created_at, order.id),
            }
        )


class _Update:
    """An UpdateItem request built from attribute paths ("payment.status", "refunds[2].id") and plain values."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}
        self._values: dict[str, Any] = {}
        self._sets: list[str] = []
        self._adds: list[str] = []
        self._removes: list[str] = []
        self._conditions: list[str] = ["attribute_exists(pk)"]

    def name(self, path: str) -> str:
        parts = []
        for segment in path.split("."):
            attribute, bracket, index = segment.partition("[")
            placeholder = "#" + "".join(c if c.isalnum() else "_" for c in attribute)
            self._names[placeholder] = attribute
            parts.append(placeholder + (bracket + index if bracket else ""))
        return ".".join(parts)

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self._values)}"
        self._values[placeholder] = value
        return placeholder

    def values_of(self, values: Any) -> str:
        return ", ".join(self.value(v) for v in values)

    def set(self, path: str, value: Any) -> None:
        self._sets.append(f"{self.name(path)} = {self.value(value)}")

    def set_raw(self, target: str, expression: str) -> None:
        self._sets.append(f"{target} = {expression}")

    def add(self, path: str, value: Any) -> None:
        self._adds.append(f"{self.name(path)} {self.value(value)}")

    def remove(self, path: str) -> None:
        self._removes.append(self.name(path))

    def condition(self, expression: str) -> None:
        self._conditions.append(expression)

    def request(self, table: str, item_key: dict[str, Any]) -> dict[str, Any]:
        clauses = [
            f"{verb} {', '.join(parts)}"
            for verb, parts in (("SET", self._sets), ("ADD", self._adds), ("REMOVE", self._removes))
            if parts
        ]
        request = {
            "TableName": table,
            "Key": item_key,
            "UpdateExpression": " ".join(clauses),
            "ConditionExpression": " AND ".join(self._conditions),
            "ExpressionAttributeNames": self._names,
            "ReturnValues": "ALL_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if self._values:
            request["ExpressionAttributeValues"] = {k: _value(v) for k, v in self._values.items()}
        return request


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
    attribute: dict[str, Any] = to_item({"v": value})["v"]
    return attribute


def _order(item: dict[str, Any]) -> StoredOrder:
    return _stored(from_item(item))


def _stored(values: dict[str, Any]) -> StoredOrder:
    return StoredOrder.model_validate({k: v for k, v in values.items() if k in StoredOrder.model_fields})
