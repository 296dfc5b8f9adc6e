"""CatalogService rules, on in-memory fakes of its two repositories (no DynamoDB)."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from storefront.catalog.models import Category, StoredProduct
from storefront.catalog.service import CatalogService
from storefront.errors import InvalidCursor, NotFound
from storefront.pagination import CursorCodec

from local_cloud.demo_data import demo_products


class FakeCatalog:
    def __init__(self, products: list[StoredProduct]) -> None:
        self.products = sorted(products, key=lambda p: (p.category, p.id))

    def get_product(self, product_id: str) -> StoredProduct | None:
        return next((p for p in self.products if p.id == product_id), None)

    def list_products(self, category: str | None, limit: int, start_key: dict[str, str] | None):
        rows = [p for p in self.products if category is None or p.category == category]
        if start_key:
            rows = [p for p in rows if (p.category, p.id) > tuple(start_key["listing_sk"].split("#"))]
        page = rows[:limit]
        more = len(rows) > limit
        resume = (
            {
                "pk": f"PRODUCT#{page[-1].id}",
                "sk": "PRODUCT",
                "listing_pk": "PRODUCTS",
                "listing_sk": f"{page[-1].category}#{page[-1].id}",
            }
            if more
            else None
        )
        return page, resume

    def list_categories(self) -> list[Category]:
        return [Category(id=c, name=c.title()) for c in sorted({p.category for p in self.products})]


class FakeInventory:
    def __init__(self, levels: dict[str, int]) -> None:
        self.levels = levels

    def available(self, skus: Iterable[str]) -> dict[str, int]:
        return {sku: self.levels.get(sku, 0) for sku in skus}


@pytest.fixture
def service() -> CatalogService:
    return _service()


def _service() -> CatalogService:
    products = demo_products()
    levels = {sku: units for _, stock in products for sku, units in stock.items()}
    return CatalogService(
        FakeCatalog([p for p, _ in products]),
        FakeInventory(levels),  # type: ignore[arg-type]
        CursorCodec(lambda: "unit-test-secret"),
    )


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 30), st.sampled_from([None, "shirts", "shoes", "accessories", "nope"]))
def test_pages_cover_every_product_once_in_order(limit: int, category: str | None) -> None:
    service = _service()
    seen, cursor = [], None
    while True:
        page = service.list_products(category, limit, cursor)
        assert len(page.items) <= limit
        seen += [p.id for p in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
        assert len(page.items) == limit  # only the last page may be short, and never empty unless all are
    expected = [
        p.id
        for p, _ in sorted(demo_products(), key=lambda x: (x[0].category, x[0].id))
        if category is None or p.category == category
    ]
    assert seen == expected


def test_availability_and_in_stock_come_from_the_inventory(service: CatalogService) -> None:
    wallet = service.get_product("last-one-wallet").variants[0]
    scarf = service.get_product("sold-out-scarf").variants[0]
    assert (wallet.available, wallet.in_stock) == (1, True)
    assert (scarf.available, scarf.in_stock) == (0, False)


def test_unknown_product_is_not_found(service: CatalogService) -> None:
    with pytest.raises(NotFound):
        service.get_product("does-not-exist")


def test_a_cursor_from_one_category_is_refused_for_another(service: CatalogService) -> None:
    cursor = service.list_products("shirts", 1).next_cursor
    assert cursor is not None
    with pytest.raises(InvalidCursor):
        service.list_products("shoes", 1, cursor)
    with pytest.raises(InvalidCursor):
        service.list_products(None, 1, cursor)


def test_limit_is_guarded(service: CatalogService) -> None:
    for limit in (0, 101):
        with pytest.raises(ValueError, match="limit"):
            service.list_products(None, limit)


def test_categories(service: CatalogService) -> None:
    assert [c.id for c in service.list_categories()] == ["accessories", "home", "shirts", "shoes", "trousers"]
