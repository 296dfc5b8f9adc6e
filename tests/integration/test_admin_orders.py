"""Orders for the merchant over HTTP on the local cloud: lists newest first by status, email and time, from the
orders table's indexes (a Scan fails the test), cursor pages, and an order with its audit trail."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from storefront.audit.log import AuditLog
from storefront.audit.repository import AuditRepository
from storefront.auth import Actor
from storefront.orders.models import HistoryEntry, OrderStatus, StoredOrder
from storefront.orders.repository import OrderRepository

from local_cloud.cloud import LocalCloud
from local_cloud.demo_data import DEMO_ORDER_ID
from tests.admin_api import assert_problem, bearer

# Orders of a spring long past: no other test's orders (made now) fall into their time range.
SPRING = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def admin(gateway: Any) -> dict[str, str]:
    with httpx.Client(base_url=gateway.url, timeout=30) as api:
        return bearer(api, "admin")


@pytest.fixture
def orders(cloud: LocalCloud) -> OrderRepository:
    return OrderRepository(cloud.client("dynamodb"), cloud.physical_id("OrdersTable"))


@pytest.fixture(autouse=True)
def no_scan(cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    """The admin function may not Scan: the lists are served by indexes."""

    def scan(**_: Any) -> None:
        raise AssertionError("the admin function scanned a table")

    monkeypatch.setattr(cloud.functions["AdminFunction"].module.dynamodb, "scan", scan)


def place(orders: OrderRepository, email: str, created_at: datetime, *moves: OrderStatus) -> StoredOrder:
    """An order like the demo's, of `email`, created at `created_at`, moved through `moves`."""
    template = orders.get(DEMO_ORDER_ID)
    assert template is not None
    order = template.model_copy(
        update={
            "id": secrets.token_urlsafe(24),
            "cart_id": uuid.uuid4().hex,
            "email": email,
            "email_key": email.lower(),
            "created_at": created_at,
            "updated_at": created_at,
            "history": [HistoryEntry(status=OrderStatus.PENDING, at=created_at)],
        }
    )
    orders.create(order)
    for status in moves:
        order = orders.transition(order.id, status, created_at + timedelta(minutes=1))
    return order


def pages(api: httpx.Client, admin: dict[str, str], **params: Any) -> list[list[dict[str, Any]]]:
    found, cursor = [], None
    while True:
        response = api.get("/admin/orders", params={**params, **({"cursor": cursor} if cursor else {})}, headers=admin)
        assert response.status_code == 200, response.text
        found.append(response.json()["items"])
        if not (cursor := response.json()["next_cursor"]):
            return found


def ids(found: list[list[dict[str, Any]]]) -> list[str]:
    return [order["id"] for page in found for order in page]


def test_every_order_newest_first_a_page_at_a_time(
    api: httpx.Client, admin: dict[str, str], orders: OrderRepository
) -> None:
    mine = [place(orders, f"{uuid.uuid4().hex[:8]}@example.com", SPRING + timedelta(hours=i)) for i in range(7)]
    found = pages(api, admin, limit=3, created_from="2025-03-10", created_to="2025-03-10T23:00:00Z")
    listed = ids(found)
    assert [o.id for o in reversed(mine)] == [i for i in listed if i in {o.id for o in mine}]
    every = [order for page in pages(api, admin, limit=50) for order in page]
    assert len({o["id"] for o in every}) == len(every)  # no order twice across pages
    times = [datetime.fromisoformat(o["created_at"]) for o in every]
    assert times == sorted(times, reverse=True) and {o.id for o in mine} <= {o["id"] for o in every}


def test_the_orders_of_one_status_follow_each_move(
    api: httpx.Client, admin: dict[str, str], orders: OrderRepository
) -> None:
    day = SPRING + timedelta(days=3)
    window = {"created_from": day.date().isoformat(), "created_to": day.date().isoformat()}
    waiting = place(orders, "status@example.com", day, OrderStatus.AWAITING_PAYMENT)
    paid = place(
        orders, "status@example.com", day + timedelta(minutes=5), OrderStatus.AWAITING_PAYMENT, OrderStatus.PAID
    )
    assert ids(pages(api, admin, status="awaiting_payment", **window)) == [waiting.id]
    assert ids(pages(api, admin, status="paid", **window)) == [paid.id]
    assert ids(pages(api, admin, status="pending", **window)) == []
    orders.transition(waiting.id, OrderStatus.EXPIRED, day + timedelta(hours=1))
    assert ids(pages(api, admin, status="awaiting_payment", **window)) == []
    assert ids(pages(api, admin, status="expired", **window)) == [waiting.id]
    assert ids(pages(api, admin, **window)) == [paid.id, waiting.id]


def test_one_shoppers_orders_by_email_in_any_case(
    api: httpx.Client, admin: dict[str, str], orders: OrderRepository
) -> None:
    email = f"Grace.{uuid.uuid4().hex[:8]}@Example.com"
    first = place(orders, email, SPRING)
    second = place(orders, email, SPRING + timedelta(days=1), OrderStatus.AWAITING_PAYMENT)
    third = place(orders, email, SPRING + timedelta(days=2))
    place(orders, f"other.{email}", SPRING)
    assert ids(pages(api, admin, email=f"  {email.upper()} ")) == [third.id, second.id, first.id]
    assert [len(p) for p in pages(api, admin, email=email, limit=1)] == [1, 1, 1]
    assert ids(pages(api, admin, email=email, status="pending")) == [third.id, first.id]
    assert ids(pages(api, admin, email=email, status="pending", limit=1)) == [third.id, first.id]
    assert ids(pages(api, admin, email=email, created_to=(SPRING + timedelta(days=1)).isoformat())) == [
        second.id,
        first.id,
    ]  # both bounds included, to the microsecond
    assert ids(pages(api, admin, email=email, created_from=(SPRING + timedelta(seconds=1)).isoformat())) == [
        third.id,
        second.id,
    ]
    assert ids(pages(api, admin, email="nobody@example.com")) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"created_from": "2025-03-10T12:00:00"}, "created_from"),  # no offset: ambiguous
        ({"created_from": "yesterday"}, "created_from"),
        ({"created_from": "1764200000"}, "created_from"),  # seconds since 1970: not what anyone means by a date
        ({"created_from": "2025-03-11", "created_to": "2025-03-10"}, "created_to"),
        ({"email": "a"}, "email"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
    ],
)
def test_bad_filters_are_422_naming_the_field(
    api: httpx.Client, admin: dict[str, str], params: dict[str, Any], field: str
) -> None:
    problem = assert_problem(api.get("/admin/orders", params=params, headers=admin), 422)
    assert {e["field"].split(".")[0] for e in problem["errors"]} == {field}  # a time or a date: each says why


def test_a_cursor_serves_only_its_own_query(api: httpx.Client, admin: dict[str, str], orders: OrderRepository) -> None:
    for hour in range(3):
        place(orders, "cursor@example.com", SPRING + timedelta(days=5, hours=hour))
    cursor = api.get("/admin/orders", params={"email": "cursor@example.com", "limit": 1}, headers=admin).json()[
        "next_cursor"
    ]
    assert cursor
    assert_problem(
        api.get("/admin/orders", params={"email": "other@example.com", "cursor": cursor}, headers=admin),
        400,
        "invalid_cursor",
    )
    assert_problem(
        api.get("/admin/orders", params={"cursor": cursor[:-2] + "xx", "email": "cursor@example.com"}, headers=admin),
        400,
        "invalid_cursor",
    )


def test_an_order_with_its_audit_trail(
    api: httpx.Client, gateway: Any, admin: dict[str, str], cloud: LocalCloud, orders: OrderRepository
) -> None:
    order = place(orders, "audit@example.com", SPRING)
    empty = api.get(f"/admin/orders/{order.id}", headers=bearer(api, "staff"))
    assert empty.status_code == 200 and empty.headers["cache-control"] == "no-store"
    assert empty.json() == {**api.get(f"/orders/{order.id}").json(), "audit": []}
    # The audit log as another route (a cancellation, a refund) records its change to an order:
    log = AuditLog(AuditRepository(cloud.client("dynamodb"), cloud.physical_id("AuditTable"), 400))
    actor = Actor(sub="sub-7", username="grace", email="grace@example.com", groups=("admin",))
    log.record(actor, "order.cancel", f"order:{order.id}", {"status": "pending"}, {"status": "cancelled"})
    [entry] = api.get(f"/admin/orders/{order.id}", headers=admin).json()["audit"]
    assert (entry["action"], entry["actor"], entry["changes"]) == (
        "order.cancel",
        {"sub": "sub-7", "username": "grace", "email": "grace@example.com"},
        {"status": {"before": "pending", "after": "cancelled"}},
    )
    assert_problem(api.get("/admin/orders/no-such-order", headers=admin), 404, "not_found")
    assert_problem(api.get(f"/admin/orders/{'x' * 65}", headers=admin), 422)
