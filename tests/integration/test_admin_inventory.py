"""Stock for the merchant over HTTP on the local cloud: a SKU's level and ledger, adjustments (idempotent twice over,
refused below zero, exactly once across a crash), low-stock thresholds and the stock.low event, and the invariant
under concurrent adjustments and reservations."""

from __future__ import annotations

import secrets
import threading
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
from botocore.exceptions import ReadTimeoutError
from storefront.inventory.invariant import check_inventory
from storefront.inventory.stock_function import StockFunctionClient

from local_cloud.cloud import LocalCloud
from tests.admin_api import assert_problem, bearer, create_category, create_product
from tests.waiting import wait_until

ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "Unter den Linden 1",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "DE",
}


@pytest.fixture(scope="module")
def admin(gateway: Any) -> dict[str, str]:
    with httpx.Client(base_url=gateway.url, timeout=30) as api:
        return bearer(api, "admin")


@pytest.fixture(scope="module")
def staff(gateway: Any) -> dict[str, str]:
    with httpx.Client(base_url=gateway.url, timeout=30) as api:
        return bearer(api, "staff")


@pytest.fixture
def sku(api: httpx.Client, admin: dict[str, str], cloud: LocalCloud) -> Any:
    """A new product's SKU, never stocked; the invariant must hold for it after the test."""
    product = create_product(api, admin, create_category(api, admin))
    sku = product["variants"][0]["sku"]
    yield sku
    table = cloud.physical_id("InventoryTable")
    assert check_inventory(cloud.client("dynamodb"), table, [sku]) == []


def adjust(
    api: httpx.Client,
    headers: dict[str, str],
    sku: str,
    delta: int,
    reason: str = "received",
    key: str | None = None,
    **extra: Any,
) -> httpx.Response:
    return api.post(
        f"/admin/inventory/{sku}/adjustments",
        json={"delta": delta, "reason": reason, **extra},
        headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex},
    )


def level(api: httpx.Client, headers: dict[str, str], sku: str, **params: Any) -> dict[str, Any]:
    response = api.get(f"/admin/inventory/{sku}", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_sku_never_stocked_has_zero_and_an_unknown_one_is_404(
    api: httpx.Client, admin: dict[str, str], sku: str
) -> None:
    assert level(api, admin, sku) == {
        "sku": sku,
        "on_hand": 0,
        "reserved": 0,
        "available": 0,
        "low_stock_threshold": None,
        "ledger": {"items": [], "next_cursor": None},
    }
    assert_problem(api.get("/admin/inventory/NO-SUCH-SKU", headers=admin), 404, "not_found")
    assert_problem(adjust(api, admin, "NO-SUCH-SKU", 5), 404, "not_found")
    assert_problem(api.patch("/admin/inventory/NO-SUCH-SKU", json={"low_stock_threshold": 1}, headers=admin), 404)
    assert_problem(api.get("/admin/inventory/lower-case", headers=admin), 422)


def test_an_adjustment_is_made_once_per_key_and_recorded_with_its_actor(
    api: httpx.Client, admin: dict[str, str], sku: str
) -> None:
    key = uuid.uuid4().hex
    first = adjust(api, admin, sku, 5, key=key, note="pallet 7")
    assert first.status_code == 201, first.text
    assert first.json() == {"sku": sku, "on_hand": 5, "reserved": 0, "available": 5, "low_stock_threshold": None}
    again = adjust(api, admin, sku, 5, key=key, note="pallet 7")
    assert (again.status_code, again.json()) == (201, first.json())
    assert_problem(adjust(api, admin, sku, 6, key=key), 422, "idempotency_key_reused")
    assert_problem(
        api.post(f"/admin/inventory/{sku}/adjustments", json={"delta": 1, "reason": "received"}, headers=admin),
        400,
        "idempotency_key_required",
    )
    view = level(api, admin, sku)
    assert view["on_hand"] == 5
    [entry] = view["ledger"]["items"]
    me = api.get("/admin/me", headers=admin).json()
    assert (entry["delta"], entry["reason"], entry["note"]) == (5, "received", "pallet 7")
    assert entry["actor"] == {"sub": me["sub"], "username": me["username"], "email": None}
    [audited, *_] = api.get("/admin/audit", params={"limit": 1}, headers=admin).json()["items"]
    assert (audited["action"], audited["target"]) == ("inventory.adjust", f"sku:{sku}")
    assert audited["changes"] == {
        "delta": {"before": None, "after": 5},
        "reason": {"before": None, "after": "received"},
        "note": {"before": None, "after": "pallet 7"},
    }


def test_taking_away_more_than_is_available_is_409_and_changes_nothing(
    api: httpx.Client, admin: dict[str, str], sku: str, cloud: LocalCloud
) -> None:
    assert adjust(api, admin, sku, 3).status_code == 201
    order = secrets.token_urlsafe(24)
    assert (
        cloud.functions["StockFunction"].invoke(
            {"action": "reserve", "order_id": order, "lines": [{"sku": sku, "quantity": 2}]}
        )["outcome"]
        == "reserved"
    )
    key = uuid.uuid4().hex
    problem = assert_problem(adjust(api, admin, sku, -2, "damaged", key=key), 409, "insufficient_stock")
    assert problem["errors"] == [
        {"sku": sku, "code": "insufficient_stock", "available": 1, "message": "2 taken away, 1 available"}
    ]
    view = level(api, admin, sku)
    assert (view["on_hand"], view["reserved"], view["available"], len(view["ledger"]["items"])) == (3, 2, 1, 1)
    # Nothing happened, so the key may be used again once stock allows it (its claim was given back).
    cloud.functions["StockFunction"].invoke(
        {"action": "release", "order_id": order, "lines": [{"sku": sku, "quantity": 2}]}
    )
    assert adjust(api, admin, sku, -2, "damaged", key=key).json()["available"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"delta": 0, "reason": "received"}, "delta"),
        ({"delta": 1.5, "reason": "received"}, "delta"),
        ({"delta": "2", "reason": "received"}, "delta"),
        ({"delta": 1_000_001, "reason": "received"}, "delta"),
        ({"delta": 1, "reason": "stolen"}, "reason"),
        ({"delta": 1}, "reason"),
        ({"delta": 1, "reason": "received", "note": "x" * 501}, "note"),
        ({"delta": 1, "reason": "received", "actor": "me"}, "actor"),
    ],
)
def test_invalid_adjustments_are_422_naming_the_field_and_change_nothing(
    api: httpx.Client, admin: dict[str, str], sku: str, body: dict[str, Any], field: str
) -> None:
    response = api.post(
        f"/admin/inventory/{sku}/adjustments", json=body, headers={**admin, "Idempotency-Key": uuid.uuid4().hex}
    )
    problem = assert_problem(response, 422, "validation_error")
    assert [e["field"] for e in problem["errors"]] == [field]
    assert level(api, admin, sku)["ledger"]["items"] == []


def test_a_crash_after_the_stock_function_adjusted_never_adjusts_twice(
    api: httpx.Client, admin: dict[str, str], sku: str, cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stock function commits the adjustment, then the answer is lost (a timeout of the Invoke): the request
    fails and gives its Idempotency-Key back; the operator's retry with the same key adjusts nothing more."""
    move = StockFunctionClient.move
    crashed: list[str] = []

    def move_then_time_out(self: StockFunctionClient, event: dict[str, Any]) -> dict[str, Any]:
        move(self, event)
        if not crashed:
            crashed.append(event["adjustment_id"])
            raise ReadTimeoutError(endpoint_url="https://lambda.local")
        return move(self, event)

    monkeypatch.setattr(StockFunctionClient, "move", move_then_time_out)
    key = uuid.uuid4().hex
    assert_problem(adjust(api, admin, sku, 4, key=key), 500, "internal_error")
    retried = adjust(api, admin, sku, 4, key=key)
    assert retried.status_code == 201 and retried.json()["on_hand"] == 4
    view = level(api, admin, sku)
    assert view["on_hand"] == 4 and len(view["ledger"]["items"]) == 1
    audited = [
        e
        for e in api.get("/admin/audit", params={"limit": 20}, headers=admin).json()["items"]
        if e["target"] == f"sku:{sku}"
    ]
    assert len(audited) == 1


def test_staff_adjust_stock_and_set_thresholds(api: httpx.Client, staff: dict[str, str], sku: str) -> None:
    assert adjust(api, staff, sku, 2).status_code == 201
    response = api.patch(f"/admin/inventory/{sku}", json={"low_stock_threshold": 1}, headers=staff)
    assert response.status_code == 200 and response.json()["low_stock_threshold"] == 1
    assert level(api, staff, sku)["on_hand"] == 2
    assert_problem(adjust(api, bearer(api), sku, 2), 403, "forbidden")


def test_a_threshold_drives_stock_low_and_can_be_cleared(
    api: httpx.Client, admin: dict[str, str], sku: str, cloud: LocalCloud
) -> None:
    assert adjust(api, admin, sku, 10).status_code == 201
    response = api.patch(f"/admin/inventory/{sku}", json={"low_stock_threshold": 4}, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json() == {"sku": sku, "on_hand": 10, "reserved": 0, "available": 10, "low_stock_threshold": 4}
    assert adjust(api, admin, sku, -7, "lost").status_code == 201  # 10 -> 3: at or below 4

    def low() -> list[dict[str, Any]]:
        return [
            e["detail"]
            for e in cloud.integration_events()
            if e["detail-type"] == "stock.low" and e["detail"]["sku"] == sku
        ]

    [event] = wait_until(low, "stock.low")
    assert (event["available"], event["low_stock_threshold"]) == (3, 4)
    cleared = api.patch(f"/admin/inventory/{sku}", json={"low_stock_threshold": None}, headers=admin)
    assert cleared.json()["low_stock_threshold"] is None
    for body in ({"low_stock_threshold": -1}, {"low_stock_threshold": "4"}, {}, {"threshold": 4}):
        assert_problem(api.patch(f"/admin/inventory/{sku}", json=body, headers=admin), 422, "validation_error")
    changes = [
        e["changes"]
        for e in api.get("/admin/audit", params={"limit": 10}, headers=admin).json()["items"]
        if e["action"] == "inventory.set_threshold" and e["target"] == f"sku:{sku}"
    ]
    assert changes == [
        {"low_stock_threshold": {"before": 4, "after": None}},
        {"low_stock_threshold": {"before": None, "after": 4}},
    ]


def test_the_ledger_shows_sales_and_adjustments_newest_first_a_page_at_a_time(
    api: httpx.Client, admin: dict[str, str], sku: str
) -> None:
    for delta in (10, -1, 2):
        assert adjust(api, admin, sku, delta, "received" if delta > 0 else "damaged").status_code == 201
    cart = api.post("/carts", json={}).json()["id"]
    api.post(f"/carts/{cart}/items", json={"sku": sku, "quantity": 3})
    api.put(f"/carts/{cart}/shipping", json={"country": "DE", "method": "standard"})
    order = api.post(
        "/checkout",
        json={"cart_id": cart, "email": "ada@example.com", "shipping_address": ADDRESS},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    ).json()
    payment = wait_until(lambda: api.get(f"/orders/{order['id']}").json()["payment"], "the payment")
    assert api.post(f"/dev/payments/{payment['payment_id']}/succeed").status_code == 200
    wait_until(lambda: api.get(f"/orders/{order['id']}").json()["status"] != "awaiting_payment", "payment")
    assert adjust(api, admin, sku, 1, "returned").status_code == 201
    pages, cursor = [], None
    while True:
        page = level(api, admin, sku, limit=2, **({"cursor": cursor} if cursor else {}))
        pages.append(page["ledger"]["items"])
        if not (cursor := page["ledger"]["next_cursor"]):
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    entries = [entry for p in pages for entry in p]
    assert [(e["delta"], e["reason"], e.get("order_id")) for e in entries] == [
        (1, "returned", None),
        (-3, "sold", order["id"]),
        (2, "received", None),
        (-1, "damaged", None),
        (10, "received", None),
    ]
    assert [e["at"] for e in entries] == sorted((e["at"] for e in entries), reverse=True)
    assert page["on_hand"] == 10 - 1 + 2 - 3 + 1 == sum(e["delta"] for e in entries)
    assert_problem(
        api.get(f"/admin/inventory/{sku}", params={"cursor": "forged.cursor"}, headers=admin), 400, "invalid_cursor"
    )


def test_concurrent_adjustments_and_reservations_keep_the_levels_true(
    gateway: Any, api: httpx.Client, admin: dict[str, str], sku: str, cloud: LocalCloud
) -> None:
    """Operators adjust while shoppers' orders reserve the same SKU: every answer is right, and after it all
    on_hand = reserved + available, with the ledger summing to on_hand (the invariant, checked by the fixture)."""
    assert adjust(api, admin, sku, 20).status_code == 201
    stock = cloud.functions["StockFunction"]
    statuses: Counter[tuple[str, int]] = Counter()
    applied: list[int] = []
    lock = threading.Lock()

    def operator(deltas: list[int]) -> None:
        with httpx.Client(base_url=gateway.url, timeout=60) as client:
            for delta in deltas:
                response = adjust(client, admin, sku, delta, "correction")
                with lock:
                    statuses[("adjust", response.status_code)] += 1
                    if response.status_code == 201:
                        applied.append(delta)

    def shopper(count: int) -> None:
        for _ in range(count):
            outcome = stock.invoke(
                {"action": "reserve", "order_id": secrets.token_urlsafe(24), "lines": [{"sku": sku, "quantity": 2}]}
            )["outcome"]
            with lock:
                statuses[("reserve", 2 if outcome == "reserved" else 0)] += 1

    threads = [threading.Thread(target=operator, args=([3, -4, 5, -6],)) for _ in range(3)]
    threads += [threading.Thread(target=shopper, args=(5,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    held = 2 * statuses[("reserve", 2)]
    assert set(statuses) <= {("adjust", 201), ("adjust", 409), ("reserve", 2), ("reserve", 0)}, statuses
    view = level(api, admin, sku)
    assert view["on_hand"] == 20 + sum(applied)
    assert view["reserved"] == held
    assert view["on_hand"] == view["reserved"] + view["available"] and view["available"] >= 0
