"""Orders for the merchant (the admin API): lists newest first by status, email and creation time, served by the
orders table's indexes (no Scan), and an order with its audit trail.

  no email   ByListing: the orders of one status, or all orders, LISTING_SHARDS partitions read as one list, the
             creation time range a condition on the index's sort key. An order that moved to another status
             between the index read and the order's read (the index is eventually consistent) is left out.
  email      ByEmail (the email trimmed and in lower case): one shopper's orders, few, so a status filter and the
             exact time range are applied to the orders read.
A cursor holds where the page stopped, for the query it was issued for: reused with other filters it is a 400.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, TypeAdapter

from storefront.audit.log import AuditLog
from storefront.audit.models import AuditEntry
from storefront.dynamodb import SortKeyRange, sortable_time
from storefront.errors import NotFound, ValidationFailed
from storefront.orders.models import Order, OrderStatus, StoredOrder, email_key
from storefront.orders.repository import OrderRepository
from storefront.pagination import CursorCodec

# The email filter examines at most this many of a shopper's orders per page (a page may then be short, with a
# cursor to go on): one shopper's orders are few, but a page must not read without bound.
_EMAIL_BATCHES = 5
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 1, 1, tzinfo=UTC)


def _iso_8601(value: object) -> object:
    """Only ISO 8601 text: pydantic would also take a number of seconds since 1970, which no one means here."""
    if isinstance(value, str) and not re.match(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("a date (2026-11-27) or a time with its offset (2026-11-27T09:30:00Z)")
    return value


# A bound is a time with its offset, or a date (the whole day in UTC).
Moment = Annotated[date | AwareDatetime, BeforeValidator(_iso_8601)]


class OrderQuery(BaseModel):
    """GET /admin/orders' filters: created_from and created_to both included, a date meaning its whole day in UTC."""

    model_config = ConfigDict(frozen=True)
    status: OrderStatus | None = None
    email: str | None = None
    created_from: Moment | None = None
    created_to: Moment | None = None

    def low(self) -> datetime:
        bound = self.created_from
        if bound is None:
            return _EARLIEST
        return bound if isinstance(bound, datetime) else datetime.combine(bound, time.min, UTC)

    def high(self) -> datetime:
        bound = self.created_to
        if bound is None:
            return _LATEST
        return bound if isinstance(bound, datetime) else datetime.combine(bound, time.max, UTC)

    def scope(self) -> str:
        """What a cursor is bound to: these filters (hashed: the email stays out of the cursor)."""
        filters = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return "admin/orders?" + hashlib.sha256(filters.encode()).hexdigest()[:24]


class OrderPage(BaseModel):
    items: list[Order]
    next_cursor: str | None


class AdminOrder(Order):
    """An order as the merchant sees it: the Order, and every operator's change to it, newest first."""

    audit: list[AuditEntry]


class OrderSearch:
    def __init__(self, orders: OrderRepository, audit: AuditLog, cursors: CursorCodec) -> None:
        self._orders = orders
        self._audit = audit
        self._cursors = cursors

    def get(self, order_id: str) -> AdminOrder:
        order = self._orders.get(order_id) if len(order_id) <= 64 else None
        if order is None:
            raise NotFound("There is no such order.")
        return AdminOrder(**order.public().model_dump(), audit=self._audit.for_target(f"order:{order_id}"))

    def list(self, query: OrderQuery, limit: int, cursor: str | None) -> OrderPage:
        if query.low() > query.high():
            raise ValidationFailed(
                "validation_error",
                "created_from is after created_to.",
                [{"field": "created_to", "code": "before_created_from", "message": "must not be before created_from"}],
            )
        position = self._cursors.decode(cursor, query.scope()) if cursor else None
        if query.email is not None:
            orders, resume = self._by_email(query, limit, position)
        else:
            orders, resume = self._by_listing(query, limit, position)
        return OrderPage(
            items=[order.public() for order in orders],
            next_cursor=self._cursors.encode(resume, query.scope()) if resume else None,
        )

    def _by_listing(
        self, query: OrderQuery, limit: int, position: dict[str, str] | None
    ) -> tuple[builtins.list[StoredOrder], dict[str, str] | None]:
        # Both bounds inclusive: "~" sorts after every character of an order id.
        bounds = SortKeyRange(
            low=sortable_time(query.low()),
            high=sortable_time(query.high()) + "#~",
            after=position["after"] if position else None,
        )
        ids, resume = self._orders.list_ids(query.status, limit, bounds)
        found = self._orders.get_many(ids)
        orders = [found[i] for i in ids if i in found and (query.status is None or found[i].status == query.status)]
        return orders, {"after": resume} if resume else None

    def _by_email(
        self, query: OrderQuery, limit: int, position: dict[str, str] | None
    ) -> tuple[builtins.list[StoredOrder], dict[str, str] | None]:
        assert query.email is not None
        # The index's created_at is the order's own text, whose precision varies: a second either side, then exact.
        low = _stored_time(query.low() - timedelta(seconds=1))
        high = _stored_time(query.high() + timedelta(seconds=1))
        after = (position["created_at"], position["id"]) if position else None
        matches: list[tuple[tuple[str, str], StoredOrder]] = []
        for _ in range(_EMAIL_BATCHES):
            keys, more = self._orders.ids_by_email(email_key(query.email), low, high, limit + 1, after)
            found = self._orders.get_many([order_id for _, order_id in keys])
            matches += [(k, found[k[1]]) for k in keys if k[1] in found and _wanted(found[k[1]], query)]
            if keys:
                after = keys[-1]
            if len(matches) > limit or not more:
                break
        page = matches[:limit]
        if len(matches) > limit:
            stop = page[-1][0]
        elif more:  # the batches ran out before the page filled: go on from the last order examined
            stop = after  # type: ignore[assignment]
        else:
            return [order for _, order in page], None
        return [order for _, order in page], {"created_at": stop[0], "id": stop[1]}


def _wanted(order: StoredOrder, query: OrderQuery) -> bool:
    return (query.status is None or order.status == query.status) and query.low() <= order.created_at <= query.high()


def _stored_time(at: datetime) -> str:
    """A time as orders store created_at (pydantic's JSON form), to bound the ByEmail index's sort key."""
    return str(_DATETIME.dump_python(at, mode="json"))


_DATETIME: TypeAdapter[datetime] = TypeAdapter(datetime)
