"""The catalog over HTTP through the local API Gateway emulation, on moto, exactly as a frontend calls it."""

from __future__ import annotations

import http.client
import uuid
from urllib.parse import urlsplit

import httpx
import pytest
from storefront.catalog.models import StoredProduct, StoredVariant
from storefront.catalog.repository import CatalogRepository
from storefront.inventory.repository import InventoryRepository
from storefront.money import Money

from local_cloud.cloud import LocalCloud
from local_cloud.demo_data import PRODUCTS

DEMO_IDS = {p[0] for p in PRODUCTS}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["status"], body["code"]) == (status, code)
    assert body["type"].endswith(code) and body["title"] and body["detail"]
    return body


def walk(api: httpx.Client, **params: object) -> list[dict]:
    items, cursor, pages = [], None, 0
    while True:
        response = api.get("/products", params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items
        assert pages < 200


@pytest.mark.parametrize("limit", [1, 7, 20, 100])
def test_pagination_returns_every_product_exactly_once(api: httpx.Client, limit: int) -> None:
    ids = [p["id"] for p in walk(api, limit=limit)]
    assert len(ids) == len(set(ids))
    assert set(ids) >= DEMO_IDS


def test_default_page_is_20_and_ordered_by_category(api: httpx.Client) -> None:
    body = api.get("/products").json()
    assert len(body["items"]) == 20 and body["next_cursor"]
    keys = [(p["category"], p["id"]) for p in body["items"]]
    assert keys == sorted(keys)


def test_category_filter(api: httpx.Client) -> None:
    shoes = walk(api, category="shoes", limit=2)
    assert {p["id"] for p in shoes} == {p[0] for p in PRODUCTS if p[1] == "shoes"}
    assert api.get("/products", params={"category": "no-such-category"}).json() == {"items": [], "next_cursor": None}


def test_product_shape_matches_the_contract(api: httpx.Client) -> None:
    product = api.get("/products/leather-sneakers").json()
    assert set(product) == {"id", "name", "description", "category", "images", "variants"}
    variant = product["variants"][0]
    assert set(variant) == {"sku", "title", "price", "available", "in_stock"}
    assert variant["price"] == {"amount": 13900, "currency": "EUR"}
    sold_out = api.get("/products/trail-runners").json()["variants"]
    assert [(v["available"], v["in_stock"]) for v in sold_out] == [(7, True), (0, False)]


def test_categories(api: httpx.Client) -> None:
    response = api.get("/categories")
    assert response.status_code == 200
    ids = [c["id"] for c in response.json()["items"]]
    assert ids == sorted(ids)  # the admin API's tests add categories of their own to this cloud
    assert {"accessories", "home", "shirts", "shoes", "trousers"} <= set(ids)


@pytest.mark.parametrize("path", ["/products", "/products/linen-shirt", "/categories"])
def test_catalog_responses_are_cacheable_and_conditional(api: httpx.Client, path: str) -> None:
    first = api.get(path)
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')  # strong
    assert first.headers["cache-control"].startswith("public, max-age=")
    again = api.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert api.get(path, headers={"If-None-Match": '"stale"'}).status_code == 200


def test_etag_changes_when_price_or_availability_changes(cloud: LocalCloud, api: httpx.Client) -> None:
    dynamodb = cloud.client("dynamodb")
    catalog = CatalogRepository(dynamodb, cloud.physical_id("CatalogTable"))
    inventory = InventoryRepository(dynamodb, cloud.physical_id("InventoryTable"))
    product_id = f"etag-{uuid.uuid4().hex[:8]}"
    sku = product_id.upper() + "-ONE"

    def put(price: int) -> None:
        catalog.put_product(
            StoredProduct(
                id=product_id,
                name="Etag test",
                description="",
                category="test",
                images=[],
                variants=[StoredVariant(sku=sku, title="One", price=Money(amount=price, currency="EUR"))],
            )
        )

    put(1000)
    inventory.put_level(sku, 5)
    original = api.get(f"/products/{product_id}").headers["etag"]
    inventory.put_level(sku, 4)
    after_stock = api.get(f"/products/{product_id}", headers={"If-None-Match": original})
    assert after_stock.status_code == 200 and after_stock.json()["variants"][0]["available"] == 4
    put(1100)
    after_price = api.get(f"/products/{product_id}", headers={"If-None-Match": after_stock.headers["etag"]})
    assert after_price.status_code == 200 and after_price.json()["variants"][0]["price"]["amount"] == 1100
    assert len({original, after_stock.headers["etag"], after_price.headers["etag"]}) == 3


def test_unknown_product_is_404_problem(api: httpx.Client) -> None:
    assert_problem(api.get("/products/no-such-product"), 404, "not_found")
    assert_problem(api.get("/products/" + "x" * 129), 422, "validation_error")


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5", "99999999999999999999"])
def test_limit_out_of_range_is_422_problem(api: httpx.Client, limit: str) -> None:
    body = assert_problem(api.get("/products", params={"limit": limit}), 422, "validation_error")
    assert body["errors"][0]["field"] == "limit"


def test_tampered_and_foreign_cursors_are_400_problems(api: httpx.Client) -> None:
    cursor = api.get("/products", params={"limit": 2}).json()["next_cursor"]
    payload, mac = cursor.split(".")
    for bad in ("garbage", payload + ".AAAA", payload[:-2] + "xx." + mac, "." + mac, cursor + "."):
        assert_problem(api.get("/products", params={"cursor": bad}), 400, "invalid_cursor")
    shirts_cursor = api.get("/products", params={"limit": 1, "category": "shirts"}).json()["next_cursor"]
    assert_problem(api.get("/products", params={"cursor": shirts_cursor, "category": "shoes"}), 400, "invalid_cursor")
    assert_problem(api.get("/products", params={"cursor": "x" * 1025}), 422, "validation_error")


def test_cors_follows_the_templates_configuration(api: httpx.Client) -> None:
    allowed = api.get("/products/linen-shirt", headers={"Origin": "http://localhost:5173"})
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "ETag" in allowed.headers["access-control-expose-headers"]
    denied = api.get("/products/linen-shirt", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in denied.headers
    preflight = api.options(
        "/products",
        headers={
            "Origin": "http://127.0.0.1:8080",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "if-none-match",
        },
    )
    assert preflight.status_code == 204
    for header in ("Content-Type", "Idempotency-Key", "If-Match", "If-None-Match", "Authorization"):
        assert header in preflight.headers["access-control-allow-headers"]


def test_unrouted_requests_get_api_gateways_own_404(api: httpx.Client) -> None:
    response = api.get("/no/such/route")
    assert response.status_code == 404
    assert response.json() == {"message": "Not Found"}
    assert api.post("/products").status_code == 404  # no POST route in the template: API Gateway answers


@pytest.mark.parametrize(("content_length", "status"), [("abc", 400), ("1e3", 400), ("", 200)])
def test_a_content_length_that_is_not_a_number_is_refused_by_the_gateway(
    gateway: object, content_length: str, status: int
) -> None:
    # Found by a random fuzz run: the local gateway raised ValueError here; API Gateway answers 400 before routing.
    url = urlsplit(gateway.url)  # type: ignore[attr-defined]
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        connection.putrequest("GET", "/categories")
        connection.putheader("Content-Length", content_length)
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == status, response.read()
    finally:
        connection.close()


def test_the_shop_tells_frontends_its_settings_and_is_cacheable(api: httpx.Client) -> None:
    from storefront.shop import load_shop_config

    response = api.get("/shop")
    assert response.status_code == 200, response.text
    config = load_shop_config()
    assert response.json() == {
        "name": config.name,
        "currency": config.currency,
        "currencies": config.currencies,
        "locale": config.locale,
        "prices_include_tax": config.prices_include_tax,
        "default_country": config.default_country,
        "countries": [{"code": code, "name": country.name} for code, country in config.countries.items()],
        "support": config.support.model_dump(exclude_none=True) | ({"url": None} if config.support.url is None else {}),
    }
    assert response.headers["cache-control"].startswith("public, max-age=")
    again = api.get("/shop", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert "tax_rate_bp" not in response.text and config.address.line1 not in response.text  # not a frontend's business
