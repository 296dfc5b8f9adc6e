"""The public catalog's rules: listing, lookup and categories of the products for sale (active), with live
availability from the inventory. Managing the catalog is storefront.catalog.admin."""

from __future__ import annotations

from collections.abc import Mapping

from storefront.catalog.models import Category, Product, ProductPage, StoredProduct, Variant
from storefront.catalog.repository import CatalogRepository
from storefront.errors import NotFound
from storefront.inventory.repository import InventoryRepository
from storefront.pagination import CursorCodec

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


class CatalogService:
    def __init__(self, catalog: CatalogRepository, inventory: InventoryRepository, cursors: CursorCodec) -> None:
        self._catalog = catalog
        self._inventory = inventory
        self._cursors = cursors

    def list_products(
        self, category: str | None, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
    ) -> ProductPage:
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError("limit out of range")  # the handler validates; this guards other callers
        scope = f"products?category={category or ''}"
        start = self._cursors.decode(cursor, scope) if cursor else None
        stored, resume = self._catalog.list_products(category, limit, start)
        return ProductPage(
            items=self._with_availability(stored), next_cursor=self._cursors.encode(resume, scope) if resume else None
        )

    def get_product(self, product_id: str) -> Product:
        stored = self._catalog.get_product(product_id)
        if stored is None or stored.status != "active":  # drafts and archived products are not for sale
            raise NotFound(f"There is no product {product_id!r}.")
        return self._with_availability([stored])[0]

    def list_categories(self) -> list[Category]:
        return self._catalog.list_categories()

    def _with_availability(self, products: list[StoredProduct]) -> list[Product]:
        available = self._inventory.available(v.sku for p in products for v in p.variants)
        return [
            Product(
                id=p.id,
                name=p.name,
                description=p.description,
                category=p.category,
                images=p.images,
                variants=variants_on_sale(p, available),
            )
            for p in products
        ]


def variants_on_sale(product: StoredProduct, available: Mapping[str, int]) -> list[Variant]:
    """The product's variants with the units on sale now: the shop and the admin show the same figures."""
    return [
        Variant(sku=v.sku, title=v.title, price=v.price, available=available[v.sku], in_stock=available[v.sku] > 0)
        for v in product.variants
    ]
