"""Catalog management over HTTP on the local cloud: categories, products, status, versions, SKU claims, and what an
edit does to the shop at once (the public catalog, carts, checkout, orders)."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
from storefront.inventory.repository import InventoryRepository

from local_cloud.cloud import LocalCloud
from tests.admin_api import assert_problem, bearer, create_category, create_product, product_body, unique

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


@pytest.fixture(scope="module")
def category(gateway: Any, admin: dict[str, str]) -> str:
    with httpx.Client(base_url=gateway.url, timeout=30) as api:
        return create_category(api, admin)


def audit_of(api: httpx.Client, admin: dict[str, str], target: str) -> list[dict[str, Any]]:
    """The audit log's entries for `target`, newest first (the whole log is walked: it is this cloud's)."""
    entries, cursor = [], None
    while True:
        page = api.get("/admin/audit", params={"limit": 100, **({"cursor": cursor} if cursor else {})}, headers=admin)
        assert page.status_code == 200, page.text
        entries += [e for e in page.json()["items"] if e["target"] == target]
        if not (cursor := page.json()["next_cursor"]):
            return entries


# ---------------------------------------------------------------- categories


def test_categories_are_created_renamed_and_listed_publicly(api: httpx.Client, admin: dict[str, str]) -> None:
    category = unique("cat")
    created = api.post("/admin/categories", json={"id": category, "name": "Hats"}, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json() == {"id": category, "name": "Hats"} and created.headers["cache-control"] == "no-store"
    assert_problem(
        api.post("/admin/categories", json={"id": category, "name": "Caps"}, headers=admin), 409, "category_exists"
    )
    renamed = api.put(f"/admin/categories/{category}", json={"name": "Hats and caps"}, headers=admin)
    assert renamed.status_code == 200 and renamed.json()["name"] == "Hats and caps"
    assert {"id": category, "name": "Hats and caps"} in api.get("/categories").json()["items"]
    assert_problem(api.put(f"/admin/categories/{unique('nope')}", json={"name": "X"}, headers=admin), 404, "not_found")
    assert [(e["action"], e["changes"]) for e in audit_of(api, admin, f"category:{category}")] == [
        ("category.update", {"name": {"before": "Hats", "after": "Hats and caps"}}),
        ("category.create", {"id": {"before": None, "after": category}, "name": {"before": None, "after": "Hats"}}),
    ]


# ---------------------------------------------------------------- products


def test_a_new_active_product_is_in_the_shop_at_once_with_no_stock(
    api: httpx.Client, admin: dict[str, str], category: str
) -> None:
    product_id = unique("new")
    response = api.post(
        "/admin/products",
        headers=admin,
        json={"id": product_id, **product_body(category, f"{product_id.upper()}-S", f"{product_id.upper()}-M")},
    )
    assert response.status_code == 201, response.text
    product = response.json()
    assert response.headers["location"] == f"/admin/products/{product_id}"
    assert response.headers["etag"] == '"1"' and response.headers["cache-control"] == "no-store"
    assert (product["status"], product["version"]) == ("active", 1) and product["updated_at"]
    assert [(v["available"], v["in_stock"]) for v in product["variants"]] == [(0, False), (0, False)]
    public = api.get(f"/products/{product_id}")
    assert public.status_code == 200
    assert set(public.json()) == {"id", "name", "description", "category", "images", "variants"}
    listed = api.get("/products", params={"category": category, "limit": 100}).json()["items"]
    assert product_id in [p["id"] for p in listed]


def test_without_an_id_the_product_is_named_after_its_name(
    api: httpx.Client, admin: dict[str, str], category: str
) -> None:
    name = f"Grüne Mütze {uuid.uuid4().hex[:6]}"
    response = api.post("/admin/products", json=product_body(category, unique("CAP").upper(), name=name), headers=admin)
    assert response.status_code == 201, response.text
    assert response.json()["id"] == name.lower().replace("ü", "u").replace(" ", "-")
    again = api.post("/admin/products", json=product_body(category, unique("CAP").upper(), name=name), headers=admin)
    assert_problem(again, 409, "product_exists")


def test_drafts_are_not_sold_and_the_admin_lists_every_status(
    api: httpx.Client, admin: dict[str, str], category: str
) -> None:
    draft = create_product(api, admin, category, status="draft")
    archived = create_product(api, admin, category)
    assert api.delete(f"/admin/products/{archived['id']}", headers=admin).status_code == 204
    assert api.get(f"/products/{draft['id']}").status_code == 404
    assert api.get(f"/products/{archived['id']}").status_code == 404
    listed = [p["id"] for p in api.get("/products", params={"category": category, "limit": 100}).json()["items"]]
    assert draft["id"] not in listed and archived["id"] not in listed
    statuses: dict[str, str] = {}
    for status in ("draft", "archived", None):
        cursor = None
        while True:
            params = {"limit": 2, **({"status": status} if status else {}), **({"cursor": cursor} if cursor else {})}
            page = api.get("/admin/products", params=params, headers=admin)
            assert page.status_code == 200, page.text
            for item in page.json()["items"]:
                assert status in (None, item["status"])
                statuses.setdefault(item["id"], item["status"])
            if not (cursor := page.json()["next_cursor"]):
                break
    assert statuses[draft["id"]] == "draft" and statuses[archived["id"]] == "archived"
    assert statuses["linen-shirt"] == "active"


def test_pages_of_every_status_list_each_product_once_in_order(
    api: httpx.Client, admin: dict[str, str], category: str
) -> None:
    mine = {create_product(api, admin, category, status=status)["id"] for status in ("draft", "active", "draft")}
    seen: list[str] = []
    cursor = None
    while True:
        page = api.get("/admin/products", params={"limit": 3, **({"cursor": cursor} if cursor else {})}, headers=admin)
        seen += [f"{p['category']}#{p['id']}" for p in page.json()["items"]]
        if not (cursor := page.json()["next_cursor"]):
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen))
    assert mine <= {key.split("#", 1)[1] for key in seen}
    other = api.get("/admin/products", params={"limit": 3}, headers=admin).json()["next_cursor"]
    assert_problem(
        api.get("/admin/products", params={"status": "draft", "cursor": other}, headers=admin), 400, "invalid_cursor"
    )


def test_a_sku_belongs_to_one_product(api: httpx.Client, admin: dict[str, str], category: str) -> None:
    first = create_product(api, admin, category)
    sku = first["variants"][0]["sku"]
    other = unique("other")
    refused = api.post(
        "/admin/products", json={"id": other, **product_body(category, unique("NEW").upper(), sku)}, headers=admin
    )
    problem = assert_problem(refused, 409, "sku_taken")
    assert problem["errors"] == [
        {"sku": sku, "code": "sku_taken", "product_id": first["id"], "message": f"belongs to {first['id']}"}
    ]
    assert api.get(f"/admin/products/{other}", headers=admin).status_code == 404  # nothing half-written
    # A SKU removed from its product stays that product's: its stock history and orders name it.
    kept = unique("KEPT").upper()
    put = api.put(f"/admin/products/{first['id']}", json=product_body(category, kept), headers=admin)
    assert put.status_code == 200, put.text
    assert_problem(api.post("/admin/products", json=product_body(category, sku), headers=admin), 409, "sku_taken")
    back = api.put(f"/admin/products/{first['id']}", json=product_body(category, kept, sku), headers=admin)
    assert back.status_code == 200 and [v["sku"] for v in back.json()["variants"]] == [kept, sku]


def test_concurrent_products_claiming_one_sku_get_it_once(gateway: Any, admin: dict[str, str], category: str) -> None:
    sku = unique("RACE").upper()
    statuses: list[int] = []

    def create(index: int) -> None:
        with httpx.Client(base_url=gateway.url, timeout=60) as api:
            body = {"id": unique(f"race{index}"), **product_body(category, unique("OWN").upper(), sku)}
            statuses.append(api.post("/admin/products", json=body, headers=admin).status_code)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counter(statuses) == {201: 1, 409: 7}


def test_two_admins_editing_one_product_one_gets_412(
    gateway: Any, api: httpx.Client, admin: dict[str, str], category: str
) -> None:
    product = create_product(api, admin, category)
    sku = product["variants"][0]["sku"]
    other_admin = bearer(api, "admin")
    results: dict[str, httpx.Response] = {}
    barrier = threading.Barrier(2)

    def edit(who: str, headers: dict[str, str], price: int) -> None:
        with httpx.Client(base_url=gateway.url, timeout=60) as client:
            read = client.get(f"/admin/products/{product['id']}", headers=headers)
            barrier.wait()  # both read version 1 before either writes
            results[who] = client.put(
                f"/admin/products/{product['id']}",
                headers={**headers, "If-Match": read.headers["etag"]},
                json=product_body(category, sku, price=price),
            )

    threads = [
        threading.Thread(target=edit, args=("a", admin, 1700)),
        threading.Thread(target=edit, args=("b", other_admin, 1900)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status_code for r in results.values()) == [200, 412]
    winner = next(r for r in results.values() if r.status_code == 200).json()
    assert_problem(next(r for r in results.values() if r.status_code == 412), 412, "version_conflict")
    now = api.get(f"/admin/products/{product['id']}", headers=admin).json()
    assert now["version"] == 2 and now["variants"][0]["price"] == winner["variants"][0]["price"]
    assert len(audit_of(api, admin, f"product:{product['id']}")) == 2  # the creation and the one edit


def test_a_price_edit_changes_the_public_etag_and_an_unchanged_put_writes_nothing(
    api: httpx.Client, admin: dict[str, str], category: str
) -> None:
    product = create_product(api, admin, category)
    sku = product["variants"][0]["sku"]
    before = api.get(f"/products/{product['id']}")
    listing_before = api.get("/products", params={"category": category, "limit": 100})
    same = api.put(f"/admin/products/{product['id']}", json=product_body(category, sku), headers=admin)
    assert same.status_code == 200 and same.json()["version"] == 1
    assert api.get(f"/products/{product['id']}").headers["etag"] == before.headers["etag"]
    edited = api.put(
        f"/admin/products/{product['id']}",
        json=product_body(category, sku, price=1600),
        headers={**admin, "If-Match": '"1"'},
    )
    assert edited.status_code == 200 and edited.headers["etag"] == '"2"'
    after = api.get(f"/products/{product['id']}")
    assert after.json()["variants"][0]["price"]["amount"] == 1600
    assert after.headers["etag"] != before.headers["etag"]
    assert api.get(f"/products/{product['id']}", headers={"If-None-Match": before.headers["etag"]}).status_code == 200
    assert (
        api.get("/products", params={"category": category, "limit": 100}).headers["etag"]
        != listing_before.headers["etag"]
    )


def test_status_rules(api: httpx.Client, admin: dict[str, str], category: str) -> None:
    product = create_product(api, admin, category)
    sku = product["variants"][0]["sku"]
    assert api.delete(f"/admin/products/{product['id']}", headers=admin).status_code == 204
    assert api.delete(f"/admin/products/{product['id']}", headers=admin).status_code == 204  # nothing repeated
    assert api.get(f"/admin/products/{product['id']}", headers=admin).json()["status"] == "archived"
    assert_problem(
        api.put(f"/admin/products/{product['id']}", json=product_body(category, sku), headers=admin),
        409,
        "status_change_not_allowed",
    )
    assert_problem(
        api.put(
            f"/admin/products/{product['id']}",
            headers=admin,
            json=product_body(category, sku, status="archived", price=99),
        ),
        409,
        "product_archived",
    )
    restored = api.put(
        f"/admin/products/{product['id']}", json=product_body(category, sku, status="draft"), headers=admin
    )
    assert restored.status_code == 200 and restored.json()["status"] == "draft"
    active = api.put(f"/admin/products/{product['id']}", json=product_body(category, sku), headers=admin)
    assert active.status_code == 200 and api.get(f"/products/{product['id']}").status_code == 200
    assert [e["action"] for e in audit_of(api, admin, f"product:{product['id']}")] == [
        "product.update",
        "product.update",
        "product.archive",
        "product.create",
    ]
    assert_problem(
        api.delete(f"/admin/products/{product['id']}", headers={**admin, "If-Match": '"1"'}), 412, "version_conflict"
    )


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"category": "no-such-category"}, "category", "unknown_category"),
        ({"variants": []}, "variants", "too_short"),
        (
            {"variants": [{"sku": "lower-case", "title": "x", "price": {"amount": 1, "currency": "EUR"}}]},
            "variants.0.sku",
            "string_pattern_mismatch",
        ),
        (
            {"variants": [{"sku": "NEG-PRICE", "title": "x", "price": {"amount": -1, "currency": "EUR"}}]},
            "variants.0.price",
            "value_error",
        ),
        (
            {"variants": [{"sku": "YEN", "title": "x", "price": {"amount": 100, "currency": "JPY"}}]},
            "variants.0.price.currency",
            "unsupported_currency",
        ),
        (
            {"variants": [{"sku": "TWICE", "title": "x", "price": {"amount": 1, "currency": "EUR"}}] * 2},
            "variants",
            "value_error",
        ),
        ({"status": "archived"}, "status", "literal_error"),
        ({"images": ["javascript:alert(1)"]}, "images.0", "string_pattern_mismatch"),
        ({"name": ""}, "name", "string_too_short"),
        ({"price": 1}, "price", "extra_forbidden"),
    ],
)
def test_invalid_products_are_422_naming_the_field_and_write_nothing(
    api: httpx.Client, admin: dict[str, str], category: str, change: dict[str, Any], field: str, code: str
) -> None:
    product_id = unique("invalid")
    body = {"id": product_id, **product_body(category, product_id.upper()), **change}
    problem = assert_problem(api.post("/admin/products", json=body, headers=admin), 422)
    assert any(e.get("field") == field and e["code"] == code for e in problem["errors"]), problem
    assert api.get(f"/admin/products/{product_id}", headers=admin).status_code == 404


def test_one_write_changes_at_most_97_variants(api: httpx.Client, admin: dict[str, str], category: str) -> None:
    product_id = unique("big")
    old = [f"{product_id.upper()}-{i}" for i in range(50)]
    create_product(api, admin, category, *old, id=product_id)
    new = [f"{product_id.upper()}-N{i}" for i in range(50)]
    problem = assert_problem(
        api.put(f"/admin/products/{product_id}", json=product_body(category, *new), headers=admin),
        422,
        "too_many_variant_changes",
    )
    assert problem["errors"][0]["field"] == "variants"
    assert [v["sku"] for v in api.get(f"/admin/products/{product_id}", headers=admin).json()["variants"]] == old
    # In two writes it works: 48 removed and 48 added, then the last two of each.
    half = api.put(f"/admin/products/{product_id}", json=product_body(category, *old[:2], *new[:48]), headers=admin)
    assert half.status_code == 200, half.text
    assert api.put(f"/admin/products/{product_id}", json=product_body(category, *new), headers=admin).status_code == 200


def test_staff_read_but_do_not_change_the_catalog(
    api: httpx.Client, admin: dict[str, str], staff: dict[str, str], category: str
) -> None:
    product = create_product(api, admin, category)
    assert api.get(f"/admin/products/{product['id']}", headers=staff).status_code == 200
    assert api.get("/admin/products", headers=staff).status_code == 200
    sku = product["variants"][0]["sku"]
    refused = [
        api.post("/admin/products", json=product_body(category, unique("STAFF").upper()), headers=staff),
        api.put(f"/admin/products/{product['id']}", json=product_body(category, sku, price=1), headers=staff),
        api.delete(f"/admin/products/{product['id']}", headers=staff),
        api.post("/admin/categories", json={"id": unique("staff"), "name": "Staff"}, headers=staff),
        api.put(f"/admin/categories/{category}", json={"name": "Staff"}, headers=staff),
        api.get("/admin/audit", headers=staff),
    ]
    for response in refused:
        assert_problem(response, 403, "forbidden")
    after = api.get(f"/admin/products/{product['id']}", headers=admin).json()
    assert (after["version"], after["status"]) == (1, "active")


# ---------------------------------------------------------------- unpurchasable at once


def _cart_with(api: httpx.Client, sku: str) -> str:
    cart = api.post("/carts", json={}).json()
    added = api.post(f"/carts/{cart['id']}/items", json={"sku": sku, "quantity": 1})
    assert added.status_code == 200, added.text
    assert api.put(f"/carts/{cart['id']}/shipping", json={"country": "DE", "method": "standard"}).status_code == 200
    return cart["id"]


def _checkout(api: httpx.Client, cart_id: str) -> httpx.Response:
    return api.post(
        "/checkout",
        json={"cart_id": cart_id, "email": "ada@example.com", "shipping_address": ADDRESS},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )


@pytest.mark.parametrize("how", ["archive", "draft", "remove the variant"])
def test_taking_a_product_off_sale_warns_carts_refuses_checkout_and_keeps_orders(
    cloud: LocalCloud, api: httpx.Client, admin: dict[str, str], category: str, how: str
) -> None:
    product = create_product(api, admin, category, unique("SOLD").upper(), unique("KEEP").upper())
    sold, kept = (v["sku"] for v in product["variants"])
    InventoryRepository(cloud.client("dynamodb"), cloud.physical_id("InventoryTable")).put_level(sold, 5)
    ordered = _checkout(api, _cart_with(api, sold))
    assert ordered.status_code == 202, ordered.text
    waiting_cart = _cart_with(api, sold)

    if how == "archive":
        assert api.delete(f"/admin/products/{product['id']}", headers=admin).status_code == 204
    else:
        body = product_body(category, sold, kept, status="draft") if how == "draft" else product_body(category, kept)
        assert api.put(f"/admin/products/{product['id']}", json=body, headers=admin).status_code == 200

    cart = api.get(f"/carts/{waiting_cart}").json()
    assert [(w["code"], w["sku"]) for w in cart["warnings"]] == [("product_unavailable", sold)]
    assert cart["lines"] == [] and cart["totals"]["total"]["amount"] == cart["totals"]["shipping"]["amount"]
    problem = assert_problem(_checkout(api, waiting_cart), 422, "product_unavailable")
    assert problem["errors"][0]["sku"] == sold
    assert_problem(api.post(f"/carts/{waiting_cart}/items", json={"sku": sold, "quantity": 1}), 422, "unknown_sku")
    order = api.get(f"/orders/{ordered.json()['id']}").json()
    assert [(line["sku"], line["quantity"]) for line in order["lines"]] == [(sold, 1)]
    public = api.get(f"/products/{product['id']}")
    if how == "remove the variant":
        assert [v["sku"] for v in public.json()["variants"]] == [kept]
    else:
        assert public.status_code == 404
