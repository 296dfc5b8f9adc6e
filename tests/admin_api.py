"""Helpers for the admin API's tests: tokens of the local user pool, and products made through the API itself."""

from __future__ import annotations

import uuid
from typing import Any

import httpx


def bearer(api: httpx.Client, *groups: str) -> dict[str, str]:
    """An Authorization header with a real token of the local pool for a user in `groups` (none: no group)."""
    response = api.post("/dev/auth/token", json={"groups": list(groups)})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def product_body(category: str, *skus: str, status: str = "active", price: int = 1500, **fields: Any) -> dict[str, Any]:
    return {
        "name": fields.pop("name", "Test product"),
        "description": "Made by a test.",
        "category": category,
        "status": status,
        "images": [],
        **fields,
        "variants": [
            {"sku": sku, "title": f"Variant {sku}", "price": {"amount": price, "currency": "EUR"}} for sku in skus
        ],
    }


def create_category(api: httpx.Client, admin: dict[str, str]) -> str:
    category = unique("cat")
    response = api.post("/admin/categories", json={"id": category, "name": "Test category"}, headers=admin)
    assert response.status_code == 201, response.text
    return category


def create_product(
    api: httpx.Client, admin: dict[str, str], category: str, *skus: str, **fields: Any
) -> dict[str, Any]:
    """A new product (id and SKUs unique unless given) through POST /admin/products."""
    product_id = fields.pop("id", unique("product"))
    skus = skus or (product_id.upper() + "-ONE",)
    response = api.post(
        "/admin/products", json={"id": product_id, **product_body(category, *skus, **fields)}, headers=admin
    )
    assert response.status_code == 201, response.text
    return response.json()


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    if code is not None:
        assert body["code"] == code, body
    return body
