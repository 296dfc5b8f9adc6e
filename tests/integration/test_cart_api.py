"""The cart over HTTP through the local API Gateway, on moto: totals, warnings, concurrency, bad input."""

from __future__ import annotations

import random
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from storefront.cart.models import StoredCart
from storefront.cart.repository import CartRepository
from storefront.catalog.models import StoredProduct, StoredVariant
from storefront.catalog.repository import CatalogRepository
from storefront.inventory.repository import InventoryRepository
from storefront.money import Money

from local_cloud.cloud import LocalCloud
from local_cloud.demo_data import demo_products


def new_cart(api: httpx.Client, **body: Any) -> dict[str, Any]:
    response = api.post("/carts", json=body)
    assert response.status_code == 201, response.text
    cart = response.json()
    assert response.headers["location"] == f"/carts/{cart['id']}"
    return cart


def add(api: httpx.Client, cart_id: str, sku: str, quantity: int, **headers: str) -> httpx.Response:
    return api.post(f"/carts/{cart_id}/items", json={"sku": sku, "quantity": quantity}, headers=headers)


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    if code:
        assert body["code"] == code
    return body


def test_three_skus_to_germany_express_match_hand_computed_totals(api: httpx.Client) -> None:
    cart = new_cart(api)
    add(api, cart["id"], "LINEN-SHIRT-M", 2)  # 2 x 59.00 = 118.00
    add(api, cart["id"], "CHINOS-L", 1)  # 1 x 79.00 =  79.00
    add(api, cart["id"], "CERAMIC-MUG-ONE", 3)  # 3 x 18.00 =  54.00
    response = api.put(f"/carts/{cart['id']}/shipping", json={"country": "DE", "method": "express"})
    assert response.status_code == 200, response.text
    cart = response.json()
    assert [(line["sku"], line["quantity"], line["line_total"]["amount"]) for line in cart["lines"]] == [
        ("LINEN-SHIRT-M", 2, 11800),
        ("CHINOS-L", 1, 7900),
        ("CERAMIC-MUG-ONE", 3, 5400),
    ]
    eur = lambda amount: {"amount": amount, "currency": "EUR"}  # noqa: E731
    # 251.00 goods + 14.90 express = 265.90, prices include 19 % VAT: 265.90 - 265.90 / 1.19 = 42.45
    assert cart["totals"] == {
        "subtotal": eur(25100),
        "shipping": eur(1490),
        "tax": eur(4245),
        "total": eur(26590),
        "tax_included": True,
        "tax_rate_bp": 1900,
    }
    window = cart["shipping"]["estimated_delivery"]
    earliest = date.fromisoformat(window["earliest"])
    assert earliest == date.fromisoformat(window["latest"])  # express: one business day after dispatch
    assert earliest > datetime.now(UTC).date() and earliest.weekday() < 5
    assert cart["warnings"] == [] and cart["version"] == 5


def test_free_standard_shipping_from_the_threshold(api: httpx.Client) -> None:
    cart = new_cart(api)
    add(api, cart["id"], "CERAMIC-MUG-ONE", 2)  # 36.00, under 50.00
    cart = api.put(f"/carts/{cart['id']}/shipping", json={"country": "DE", "method": "standard"}).json()
    assert cart["shipping"]["price"]["amount"] == 495
    cart = add(api, cart["id"], "CERAMIC-MUG-ONE", 1).json()  # 54.00
    assert cart["shipping"]["price"]["amount"] == 0 and cart["totals"]["total"]["amount"] == 5400


def test_a_catalog_price_change_shows_as_a_warning_with_new_totals(cloud: LocalCloud, api: httpx.Client) -> None:
    catalog = CatalogRepository(cloud.client("dynamodb"), cloud.physical_id("CatalogTable"))
    product_id = f"price-{uuid.uuid4().hex[:8]}"
    sku = product_id.upper() + "-ONE"

    def put(price: int) -> None:
        catalog.put_product(
            StoredProduct(
                id=product_id,
                name="Price test",
                description="",
                category="test",
                images=[],
                variants=[StoredVariant(sku=sku, title="One", price=Money(amount=price, currency="EUR"))],
            )
        )

    put(1000)
    InventoryRepository(cloud.client("dynamodb"), cloud.physical_id("InventoryTable")).put_level(sku, 10)
    cart = new_cart(api)
    add(api, cart["id"], sku, 2)
    put(1250)
    cart = api.get(f"/carts/{cart['id']}").json()
    assert [(w["code"], w["sku"]) for w in cart["warnings"]] == [("price_changed", sku)]
    assert cart["lines"][0]["unit_price"]["amount"] == 1250
    assert cart["totals"]["subtotal"]["amount"] == 2500 and cart["totals"]["total"]["amount"] == 2500
    cart = api.put(f"/carts/{cart['id']}/items/{sku}", json={"quantity": 2}).json()  # touching it acknowledges
    assert cart["warnings"] == []


def test_stock_falling_under_a_line_shows_as_a_warning(cloud: LocalCloud, api: httpx.Client) -> None:
    inventory = InventoryRepository(cloud.client("dynamodb"), cloud.physical_id("InventoryTable"))
    cart = new_cart(api)
    add(api, cart["id"], "WOOL-THROW-ONE", 3)
    inventory.put_level("WOOL-THROW-ONE", 2)
    try:
        cart = api.get(f"/carts/{cart['id']}").json()
        assert [(w["code"], w["sku"]) for w in cart["warnings"]] == [("insufficient_stock", "WOOL-THROW-ONE")]
    finally:
        inventory.put_level("WOOL-THROW-ONE", 5)


@pytest.mark.slow("race")
def test_twenty_concurrent_writers_lose_no_line(api: httpx.Client, gateway: Any) -> None:
    """20 clients add 20 different SKUs at once with If-Match; those that get 412 reload and retry."""
    skus = [p.variants[0].sku for p, stock in demo_products() if stock[p.variants[0].sku] > 0][:20]
    assert len(skus) == 20
    cart_id = new_cart(api)["id"]
    start = threading.Barrier(len(skus))
    conflicts: list[int] = []
    errors: list[str] = []

    def shopper(sku: str) -> None:
        with httpx.Client(base_url=gateway.url, timeout=30) as client:
            start.wait()
            for _ in range(200):
                version = client.get(f"/carts/{cart_id}").json()["version"]
                response = add(client, cart_id, sku, 1, **{"If-Match": f'"{version}"'})
                if response.status_code == 200:
                    return
                if response.status_code != 412:
                    errors.append(response.text)
                    return
                conflicts.append(1)
                time.sleep(random.uniform(0, 0.05))  # a well-behaved client backs off with jitter
            errors.append(f"{sku}: gave up")

    threads = [threading.Thread(target=shopper, args=(sku,)) for sku in skus]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cart = api.get(f"/carts/{cart_id}").json()
    assert errors == []
    assert sorted(line["sku"] for line in cart["lines"]) == sorted(skus)  # every line, none twice
    assert all(line["quantity"] == 1 for line in cart["lines"])
    assert cart["version"] == 1 + len(skus)  # exactly one successful write per shopper
    assert conflicts, "the race was real: some writers must have been told 412"


def test_concurrent_writers_without_if_match_are_merged_by_the_server(api: httpx.Client, gateway: Any) -> None:
    skus = [p.variants[0].sku for p, stock in demo_products() if stock[p.variants[0].sku] > 0][:10]
    cart_id = new_cart(api)["id"]
    start = threading.Barrier(len(skus))
    statuses: list[int] = []

    def shopper(sku: str) -> None:
        with httpx.Client(base_url=gateway.url, timeout=30) as client:
            start.wait()
            for _ in range(20):
                response = add(client, cart_id, sku, 1)
                if response.status_code != 503:  # Busy: retry after Retry-After, as a client should
                    statuses.append(response.status_code)
                    return

    threads = [threading.Thread(target=shopper, args=(sku,)) for sku in skus]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * len(skus)
    assert sorted(line["sku"] for line in api.get(f"/carts/{cart_id}").json()["lines"]) == sorted(skus)


BAD_ITEM_BODIES = [
    {"sku": "LINEN-SHIRT-M", "quantity": -1},
    {"sku": "LINEN-SHIRT-M", "quantity": 0},
    {"sku": "LINEN-SHIRT-M", "quantity": 100},
    {"sku": "LINEN-SHIRT-M", "quantity": 10**20},
    {"sku": "LINEN-SHIRT-M", "quantity": 1.5},
    {"sku": "LINEN-SHIRT-M", "quantity": "1"},
    {"sku": "LINEN-SHIRT-M", "quantity": True},
    {"sku": "LINEN-SHIRT-M", "quantity": None},
    {"sku": "LINEN-SHIRT-M", "quantity": 1, "price": 1},
    {"quantity": 1},
    {"sku": "linen-shirt-m", "quantity": 1},
    {"sku": "X" * 200, "quantity": 1},
    [],
    "LINEN-SHIRT-M",
]


@pytest.fixture
def filled_cart(api: httpx.Client) -> dict[str, Any]:
    cart = new_cart(api)
    add(api, cart["id"], "LINEN-SHIRT-M", 1)
    return api.put(f"/carts/{cart['id']}/shipping", json={"country": "DE", "method": "standard"}).json()


def assert_unchanged(api: httpx.Client, before: dict[str, Any]) -> None:
    after = api.get(f"/carts/{before['id']}").json()
    assert (after["version"], after["lines"], after["shipping"]) == (
        before["version"],
        before["lines"],
        before["shipping"],
    )


@pytest.mark.parametrize("body", BAD_ITEM_BODIES, ids=[str(b)[:40] for b in BAD_ITEM_BODIES])
def test_bad_item_bodies_are_422_and_change_nothing(api: httpx.Client, filled_cart: dict[str, Any], body: Any) -> None:
    assert_problem(api.post(f"/carts/{filled_cart['id']}/items", json=body), 422)
    assert_unchanged(api, filled_cart)


@pytest.mark.parametrize(
    ("method", "suffix", "kwargs", "status", "code"),
    [
        ("POST", "/items", {"json": {"sku": "NO-SUCH-SKU", "quantity": 1}}, 422, "unknown_sku"),
        ("POST", "/items", {"json": {"sku": "LAST-ONE-WALLET-ONE", "quantity": 2}}, 409, "insufficient_stock"),
        ("POST", "/items", {"json": {"sku": "LINEN-SHIRT-M", "quantity": 99}}, 422, "quantity_limit"),
        (
            "POST",
            "/items",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            400,
            "malformed_json",
        ),
        (
            "POST",
            "/items",
            {"content": b"x" * 20_000, "headers": {"content-type": "application/json"}},
            413,
            "payload_too_large",
        ),
        (
            "POST",
            "/items",
            {"content": bytes(range(256)), "headers": {"content-type": "application/octet-stream"}},
            422,
            None,
        ),
        ("PUT", "/items/LINEN-SHIRT-M", {"json": {"quantity": -1}}, 422, "validation_error"),
        ("PUT", "/items/LINEN-SHIRT-M", {"json": {"quantity": 100}}, 422, "validation_error"),
        ("PUT", "/items/LINEN-SHIRT-M", {"json": {"quantity": 500}}, 422, "validation_error"),
        ("PUT", "/items/CHINOS-L", {"json": {"quantity": 1}}, 404, "not_found"),
        ("DELETE", "/items/CHINOS-L", {}, 404, "not_found"),
        ("PUT", "/shipping", {"json": {"country": "US", "method": "standard"}}, 422, "unsupported_country"),
        ("PUT", "/shipping", {"json": {"country": "DE", "method": "teleport"}}, 422, "unsupported_shipping_method"),
        ("PUT", "/shipping", {"json": {"country": "de", "method": "standard"}}, 422, "validation_error"),
        ("PUT", "/shipping", {"json": {"country": "DE"}}, 422, "validation_error"),
        (
            "POST",
            "/items",
            {"json": {"sku": "CHINOS-L", "quantity": 1}, "headers": {"If-Match": '"1"'}},
            412,
            "version_conflict",
        ),
        (
            "POST",
            "/items",
            {"json": {"sku": "CHINOS-L", "quantity": 1}, "headers": {"If-Match": "abc"}},
            412,
            "version_conflict",
        ),
    ],
)
def test_bad_requests_are_problems_and_change_nothing(
    api: httpx.Client,
    filled_cart: dict[str, Any],
    method: str,
    suffix: str,
    kwargs: dict[str, Any],
    status: int,
    code: str | None,
) -> None:
    assert_problem(api.request(method, f"/carts/{filled_cart['id']}{suffix}", **kwargs), status, code)
    assert_unchanged(api, filled_cart)


@pytest.mark.parametrize(
    "body",
    [
        {"currency": "USD"},
        {"currency": "eur"},
        {"currency": "XXX"},
        {"currency": 978},
        {"currency": "EUR", "customer": "x"},
    ],
)
def test_carts_in_currencies_the_shop_does_not_sell_in_are_refused(api: httpx.Client, body: dict[str, Any]) -> None:
    assert_problem(api.post("/carts", json=body), 422)


def test_cart_responses_are_private_and_versioned(api: httpx.Client) -> None:
    cart = new_cart(api)
    response = api.get(f"/carts/{cart['id']}")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["etag"] == '"1"'
    assert len(cart["id"]) == 32  # 192 random bits
    assert_problem(api.get("/carts/" + "A" * 32), 404, "not_found")
    assert_problem(api.get("/carts/short"), 404, "not_found")


def test_an_expired_cart_is_404_before_dynamodb_deletes_it(cloud: LocalCloud, api: httpx.Client) -> None:
    past = datetime.now(UTC) - timedelta(hours=100)
    cart_id = uuid.uuid4().hex
    CartRepository(cloud.client("dynamodb"), cloud.physical_id("CartTable")).create(
        StoredCart(
            id=cart_id,
            currency="EUR",
            version=1,
            lines=[],
            shipping=None,
            created_at=past,
            updated_at=past,
            expires_at=past + timedelta(hours=72),
        )
    )
    assert_problem(api.get(f"/carts/{cart_id}"), 404, "not_found")
    ttl = cloud.client("dynamodb").describe_time_to_live(TableName=cloud.physical_id("CartTable"))
    assert ttl["TimeToLiveDescription"] == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at_epoch"}


def test_shipping_methods(api: httpx.Client) -> None:
    methods = api.get("/shipping-methods", params={"country": "DE"}).json()["items"]
    assert [m["id"] for m in methods] == ["standard", "express"]
    for method in methods:
        assert set(method) == {"id", "name", "price", "free_over", "delivery_days", "estimated_delivery"}
        window = method["estimated_delivery"]
        assert window["earliest"] <= window["latest"]
    assert api.get("/shipping-methods", params={"country": "JP"}).json() == {"items": []}
    assert_problem(api.get("/shipping-methods", params={"country": "germany"}), 422, "validation_error")
    assert_problem(api.get("/shipping-methods"), 422, "validation_error")
