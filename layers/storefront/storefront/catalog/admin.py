"""Catalog management (the admin API): categories, products with their variants and prices, and status.

The rules:
  - a product is draft, active or archived, and only active products are sold: the public catalog lists them,
    carts and checkout price their variants. Any write that takes a product or a variant off sale does it in the
    same transaction as the product's own write, so nothing can be bought a moment later (carts warn
    product_unavailable, checkout answers 422 product_unavailable, orders keep their lines);
  - status moves as STATUS_CHANGES allows (an archived product comes back as a draft), and an archived product is
    not edited until it is restored;
  - a SKU belongs to one product for good (409 sku_taken), decided by the transaction's conditions, not by a read;
  - every write names the version it replaces: with If-Match a stale version is a 412; without it the write
    goes over whatever version is current (a whole-product PUT says what the product is to be);
  - a write that changes nothing writes nothing, and every write that changes something is audited in its own
    transaction.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

from storefront.audit.models import new_entry
from storefront.audit.repository import AuditRepository
from storefront.catalog.models import (
    MAX_IMAGES,
    STATUS_CHANGES,
    AdminProduct,
    AdminProductPage,
    Category,
    CategoryUpdate,
    NewCategory,
    NewProduct,
    ProductStatus,
    ProductUpdate,
    StoredProduct,
    StoredVariant,
)
from storefront.catalog.repository import MAX_TRANSACTION_ITEMS, CatalogRepository
from storefront.catalog.service import variants_on_sale
from storefront.dynamodb import ConditionsFailed, backoff
from storefront.errors import Busy, Conflict, NotFound, ValidationFailed, VersionConflict
from storefront.inventory.repository import InventoryRepository
from storefront.pagination import CursorCodec

_WRITE_ATTEMPTS = 4  # writes without If-Match go over a concurrent one: a few rounds, then 503
_STATUSES: tuple[ProductStatus, ...] = ("active", "archived", "draft")


def name_slug(name: str) -> str:
    """A name in lower-case ASCII words joined by dashes ("Grüne Mütze" -> "grune-mutze"); "" when it has none."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name).strip("-")[:56].strip("-")


def product_id_from(name: str) -> str:
    """An id for a product created without one: its name's slug, or a random one for a name without ASCII letters
    or digits (python -m ops.import_catalog refuses those rather than make a new id on every run)."""
    return name_slug(name) or f"product-{secrets.token_hex(4)}"


def planned_update(
    current: StoredProduct, request: ProductUpdate, if_match: int | None, now: datetime
) -> StoredProduct | None:
    """The product a PUT makes of `current`, or None when it changes nothing. Raises what the rules refuse."""
    if if_match is not None and current.version != if_match:
        raise VersionConflict(f"The product is at version {current.version}, not {if_match}; reload it.")
    if request.status not in STATUS_CHANGES[current.status]:
        raise Conflict(
            "status_change_not_allowed",
            f"A {current.status} product cannot become {request.status} (an archived product is restored as a draft).",
            [
                {
                    "field": "status",
                    "code": "status_change_not_allowed",
                    "message": f"from {current.status}: {', '.join(sorted(STATUS_CHANGES[current.status]))}",
                }
            ],
        )
    changed = StoredProduct(id=current.id, **_fields(request), version=current.version + 1, updated_at=now)
    if _content(changed) == _content(current):
        return None
    if current.status == "archived" and request.status == "archived":
        raise Conflict(
            "product_archived",
            "An archived product is not edited; restore it (status draft) first.",
            [{"field": "status", "code": "product_archived", "message": "restore it as a draft first"}],
        )
    return changed


class CatalogAdmin:
    def __init__(
        self,
        catalog: CatalogRepository,
        inventory: InventoryRepository,
        audit: AuditRepository,
        cursors: CursorCodec,
        currencies: Collection[str],
        now: Callable[[], datetime],
    ) -> None:
        self._catalog = catalog
        self._inventory = inventory
        self._audit = audit
        self._cursors = cursors
        self._currencies = frozenset(currencies)
        self._now = now

    # ---------------------------------------------------------------- categories

    def create_category(self, actor: Any, request: NewCategory) -> Category:
        category = Category(id=request.id, name=request.name)
        entry = new_entry(actor, "category.create", f"category:{category.id}", None, category.model_dump(), self._now())
        try:
            self._catalog.write_category(category, None, [self._audit.put_item(entry)])
        except ConditionsFailed:
            raise Conflict(
                "category_exists",
                f"There is a category {category.id!r} already.",
                [{"field": "id", "code": "category_exists", "message": "taken"}],
            ) from None
        return category

    def rename_category(self, actor: Any, category_id: str, request: CategoryUpdate) -> Category:
        for attempt in range(_WRITE_ATTEMPTS):
            current = self._catalog.get_category(category_id)
            if current is None:
                raise NotFound(f"There is no category {category_id!r}.")
            category = Category(id=category_id, name=request.name)
            if category == current:
                return category
            entry = new_entry(
                actor,
                "category.update",
                f"category:{category_id}",
                current.model_dump(),
                category.model_dump(),
                self._now(),
            )
            try:
                self._catalog.write_category(category, current, [self._audit.put_item(entry)])
                return category
            except ConditionsFailed:
                backoff(attempt)  # renamed meanwhile: read it again
        raise Busy("The category is being changed by many requests at once; retry shortly.")

    # ---------------------------------------------------------------- products: reads

    def list_products(self, status: ProductStatus | None, limit: int, cursor: str | None) -> AdminProductPage:
        scope = f"admin/products?status={status or ''}"
        after = self._cursors.decode(cursor, scope)["after"] if cursor else None
        products, resume = self._catalog.list_by_status([status] if status else _STATUSES, limit, after)
        return AdminProductPage(
            items=self._with_availability(products),
            next_cursor=self._cursors.encode({"after": resume}, scope) if resume else None,
        )

    def get_product(self, product_id: str) -> AdminProduct:
        return self._with_availability([self._stored(product_id)])[0]

    # ---------------------------------------------------------------- products: writes

    def create_product(self, actor: Any, request: NewProduct) -> AdminProduct:
        product = StoredProduct(
            id=request.id or product_id_from(request.name), **_fields(request), version=1, updated_at=self._now()
        )
        self._write(actor, "product.create", product, None)
        return self.get_product(product.id)

    def replace_product(
        self, actor: Any, product_id: str, request: ProductUpdate, if_match: int | None
    ) -> AdminProduct:
        action = "product.archive" if request.status == "archived" else "product.update"
        self._update(
            actor,
            action,
            product_id,
            lambda current: planned_update(current, request, if_match, self._now()),
            stale_is_conflict=if_match is not None,
        )
        return self.get_product(product_id)

    def archive_product(self, actor: Any, product_id: str, if_match: int | None) -> None:
        """DELETE: the product is archived, not erased (orders name its SKUs); archiving an archived one is a no-op."""

        def archive(current: StoredProduct) -> StoredProduct | None:
            if if_match is not None and current.version != if_match:
                raise VersionConflict(f"The product is at version {current.version}, not {if_match}; reload it.")
            if current.status == "archived":
                return None
            return current.model_copy(
                update={"status": "archived", "version": current.version + 1, "updated_at": self._now()}
            )

        self._update(actor, "product.archive", product_id, archive, stale_is_conflict=if_match is not None)

    def add_image(self, actor: Any, product_id: str, image_url: str) -> None:
        """The product's images gain `image_url` (an upload the caller was just given)."""

        def add(current: StoredProduct) -> StoredProduct | None:
            if current.status == "archived":
                raise Conflict("product_archived", "An archived product gets no new images; restore it first.")
            if len(current.images) >= MAX_IMAGES:
                raise ValidationFailed(
                    "too_many_images",
                    f"A product has at most {MAX_IMAGES} images.",
                    [
                        {
                            "field": "images",
                            "code": "too_many_images",
                            "message": f"remove one of the {len(current.images)} first",
                        }
                    ],
                )
            return current.model_copy(
                update={
                    "images": [*current.images, image_url],
                    "version": current.version + 1,
                    "updated_at": self._now(),
                }
            )

        self._update(actor, "product.add_image", product_id, add, stale_is_conflict=False)

    # ---------------------------------------------------------------- helpers

    def _stored(self, product_id: str) -> StoredProduct:
        product = self._catalog.get_product(product_id, consistent=True)
        if product is None:
            raise NotFound(f"There is no product {product_id!r}.")
        return product

    def _update(
        self,
        actor: Any,
        action: str,
        product_id: str,
        change: Callable[[StoredProduct], StoredProduct | None],
        stale_is_conflict: bool,
    ) -> None:
        for attempt in range(_WRITE_ATTEMPTS):
            current = self._stored(product_id)
            changed = change(current)
            if changed is None:
                return
            try:
                self._write(actor, action, changed, current)
                return
            except VersionConflict:
                if stale_is_conflict:
                    raise
                backoff(attempt)  # another write came first: apply this one to what it left
        raise Busy("The product is being changed by many requests at once; retry shortly.")

    def _write(self, actor: Any, action: str, product: StoredProduct, previous: StoredProduct | None) -> None:
        self._check_currencies(product)
        variant_writes = sorted(self._catalog.variant_changes(product, previous))
        if 2 + len(variant_writes) + 1 > MAX_TRANSACTION_ITEMS:
            raise ValidationFailed(
                "too_many_variant_changes",
                f"One write can change at most {MAX_TRANSACTION_ITEMS - 3} variants (adding, changing and removing "
                f"count alike); this one changes {len(variant_writes)}. Make the change in two writes.",
                [
                    {
                        "field": "variants",
                        "code": "too_many_variant_changes",
                        "message": f"{len(variant_writes)} changes",
                    }
                ],
            )
        entry = new_entry(
            actor,
            action,
            f"product:{product.id}",
            _audited(previous),
            _audited(product),
            product.updated_at or self._now(),
        )
        try:
            self._catalog.write_product(product, previous, [self._audit.put_item(entry)])
        except ConditionsFailed as refused:
            raise self._refusal(refused.failed(), product, previous, variant_writes) from None

    def _refusal(
        self, failed: list[int], product: StoredProduct, previous: StoredProduct | None, variant_writes: list[str]
    ) -> Exception:
        """What the failed conditions (positions in CatalogRepository.write_product_items) mean."""
        if 0 in failed:
            return ValidationFailed(
                "unknown_category",
                f"There is no category {product.category!r}.",
                [
                    {
                        "field": "category",
                        "code": "unknown_category",
                        "message": "create it first (POST /admin/categories)",
                    }
                ],
            )
        if 1 in failed:
            if previous is None:
                return Conflict(
                    "product_exists",
                    f"There is a product {product.id!r} already.",
                    [{"field": "id", "code": "product_exists", "message": "taken"}],
                )
            return VersionConflict("The product changed while this request ran; reload it.")
        taken = [variant_writes[i - 2] for i in failed if 2 <= i < 2 + len(variant_writes)]
        owners = self._catalog.sku_owners(taken)
        return Conflict(
            "sku_taken",
            "A SKU belongs to another product: " + ", ".join(taken) + ".",
            [
                {
                    "sku": sku,
                    "code": "sku_taken",
                    "product_id": owners.get(sku),
                    "message": f"belongs to {owners.get(sku)}",
                }
                for sku in taken
            ],
        )

    def _check_currencies(self, product: StoredProduct) -> None:
        wrong = [
            {
                "field": f"variants.{i}.price.currency",
                "code": "unsupported_currency",
                "message": f"the shop sells in {', '.join(sorted(self._currencies))}",
            }
            for i, variant in enumerate(product.variants)
            if variant.price.currency not in self._currencies
        ]
        if wrong:
            raise ValidationFailed("unsupported_currency", "A price is in a currency the shop does not sell in.", wrong)

    def _with_availability(self, products: list[StoredProduct]) -> list[AdminProduct]:
        available = self._inventory.available(v.sku for p in products for v in p.variants)
        return [
            AdminProduct(
                id=p.id,
                name=p.name,
                description=p.description,
                category=p.category,
                images=p.images,
                variants=variants_on_sale(p, available),
                status=p.status,
                version=p.version,
                updated_at=p.updated_at,
            )
            for p in products
        ]


def _fields(source: Any) -> dict[str, Any]:
    """The fields a request (or a stored product) gives a stored product, but its id, version and time."""
    return {
        "name": source.name,
        "description": source.description,
        "category": source.category,
        "images": list(source.images),
        "status": source.status,
        "variants": [StoredVariant(sku=v.sku, title=v.title, price=v.price) for v in source.variants],
    }


def _content(product: StoredProduct) -> dict[str, Any]:
    return product.model_dump(exclude={"version", "updated_at"})


def _audited(product: StoredProduct | None) -> dict[str, Any] | None:
    return None if product is None else product.model_dump(mode="json", exclude={"id", "version", "updated_at"})
