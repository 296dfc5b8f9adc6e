"""The catalog table: item shapes and DynamoDB expressions, nothing else.

Items (one table, composite key pk/sk):
  product    pk=PRODUCT#<id>  sk=PRODUCT     listing_pk, listing_sk=<category>#<id>, the product's fields, status,
                                             version, updated_at
  category   pk=CATEGORY      sk=<id>        id, name
  variant    pk=VARIANT#<sku> sk=VARIANT     product_id, product_name, title, price, sellable
The `ByListing` index lists products in (category, id) order; a category filter is a begins_with on its sort key.
Its partition is the product's status: listing_pk=PRODUCTS for active products, which is the whole public
listing, and PRODUCTS#draft / PRODUCTS#archived for the others, which only the admin lists (the three read as one
list with storefront.dynamodb.merged_query).
A variant item is two things. It prices a SKU with one BatchGetItem, without its product (carts, checkout), and
only while `sellable`: its product active and the variant still in it. And it is the SKU's claim: it names the one
product the SKU belongs to, for good (a removed variant's SKU stays its product's, since its stock history and
orders name it). Every write of a product writes its changed variant items in the same transaction, conditional on
each SKU being unclaimed or its own, so two products can never take one SKU, however concurrent the writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from storefront.catalog.models import Category, StoredProduct, VariantInfo
from storefront.dynamodb import (
    SortKeyRange,
    batch_get,
    from_item,
    key,
    merged_query,
    to_item,
    transact_write,
)

LISTING_INDEX = "ByListing"
_LISTING_PK = "PRODUCTS"
# DynamoDB's TransactWriteItems takes at most 100 items.
MAX_TRANSACTION_ITEMS = 100


def listing_partition(status: str) -> str:
    return _LISTING_PK if status == "active" else f"{_LISTING_PK}#{status}"


def variant_items(product: StoredProduct) -> dict[str, dict[str, Any]]:
    """Per SKU, the variant item a product's variants should have (sellable while the product is active)."""
    return {
        v.sku: {
            "pk": f"VARIANT#{v.sku}",
            "sk": "VARIANT",
            "sellable": product.status == "active",
            **VariantInfo(
                sku=v.sku, product_id=product.id, product_name=product.name, title=v.title, price=v.price
            ).model_dump(mode="json"),
        }
        for v in product.variants
    }


class CatalogRepository:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # ---------------------------------------------------------------- reads

    def get_product(self, product_id: str, consistent: bool = False) -> StoredProduct | None:
        response = self._client.get_item(
            TableName=self._table, Key=key(pk=f"PRODUCT#{product_id}", sk="PRODUCT"), ConsistentRead=consistent
        )
        item = response.get("Item")
        return _product(from_item(item)) if item else None

    def list_products(
        self, category: str | None, limit: int, start_key: dict[str, str] | None
    ) -> tuple[list[StoredProduct], dict[str, str] | None]:
        """Up to `limit` products for sale (active) after `start_key`, and the key to resume from (None on the last
        page)."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": LISTING_INDEX,
            "KeyConditionExpression": "listing_pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": _LISTING_PK}},
            # One more than asked: it tells whether a next page exists without an empty last page.
            "Limit": limit + 1,
        }
        if category is not None:
            request["KeyConditionExpression"] += " AND begins_with(listing_sk, :prefix)"
            request["ExpressionAttributeValues"][":prefix"] = {"S": f"{category}#"}
        if start_key is not None:
            request["ExclusiveStartKey"] = key(**start_key)
        items = [from_item(i) for i in self._client.query(**request).get("Items", [])]
        page, more = items[:limit], len(items) > limit
        resume = {name: page[-1][name] for name in ("pk", "sk", "listing_pk", "listing_sk")} if more else None
        return [_product(i) for i in page], resume

    def list_by_status(
        self, statuses: Iterable[str], limit: int, after: str | None
    ) -> tuple[list[StoredProduct], str | None]:
        """Up to `limit` products of these statuses in (category, id) order after the listing key `after`, and the
        key to go on from (None on the last page)."""
        items, more = merged_query(
            self._client,
            self._table,
            LISTING_INDEX,
            "listing_pk",
            "listing_sk",
            [listing_partition(status) for status in statuses],
            limit,
            SortKeyRange(after=after),
        )
        return [_product(from_item(i)) for i in items], items[-1]["listing_sk"]["S"] if more else None

    def get_category(self, category_id: str) -> Category | None:
        item = self._client.get_item(
            TableName=self._table, Key=key(pk="CATEGORY", sk=category_id), ConsistentRead=True
        ).get("Item")
        return (
            Category.model_validate({k: v for k, v in from_item(item).items() if k in Category.model_fields})
            if item
            else None
        )

    def list_categories(self) -> list[Category]:
        response = self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "CATEGORY"}},
        )
        return [Category(id=i["id"], name=i["name"]) for i in map(from_item, response.get("Items", []))]

    def get_variants(self, skus: Iterable[str]) -> dict[str, VariantInfo]:
        """The variants for sale among `skus`, by SKU (unknown, removed and unlisted ones are simply absent)."""
        rows = batch_get(self._client, self._table, [key(pk=f"VARIANT#{sku}", sk="VARIANT") for sku in set(skus)])
        # Variant items written before products had a status have no `sellable`: they were all for sale.
        return {
            row["sku"]: VariantInfo.model_validate({k: row[k] for k in VariantInfo.model_fields})
            for row in rows
            if row.get("sellable", True)
        }

    def sku_owners(self, skus: Iterable[str]) -> dict[str, str]:
        """The product each of `skus` belongs to, for those that belong to one (sold or not)."""
        rows = batch_get(
            self._client,
            self._table,
            [key(pk=f"VARIANT#{sku}", sk="VARIANT") for sku in set(skus)],
            projection="sku, product_id",
        )
        return {row["sku"]: row["product_id"] for row in rows}

    # ---------------------------------------------------------------- the admin's writes: one transaction each

    def write_product(
        self, product: StoredProduct, previous: StoredProduct | None, also: Iterable[dict[str, Any]] = ()
    ) -> None:
        """Store `product` (new when `previous` is None, else replacing exactly that version) with the variant items
        that change, and `also` (the audit entry's put), all or nothing. Raises ConditionsFailed; the positions of
        the failed items are those of write_product_items."""
        transact_write(self._client, self.write_product_items(product, previous, also))

    def write_product_items(
        self, product: StoredProduct, previous: StoredProduct | None, also: Iterable[dict[str, Any]] = ()
    ) -> list[dict[str, Any]]:
        """The transaction's items, in this order: the category's existence check, the product, each variant item
        that changes (sorted by SKU), then `also`."""
        items: list[dict[str, Any]] = [
            {
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": key(pk="CATEGORY", sk=product.category),
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item(_product_item(product)),
                    **_version_condition(previous),
                }
            },
        ]
        for _sku, item in sorted(self.variant_changes(product, previous).items()):
            # The SKU must be unclaimed or this product's: the claim that keeps a SKU to one product.
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": to_item(item),
                        "ConditionExpression": "attribute_not_exists(pk) OR product_id = :product",
                        "ExpressionAttributeValues": {":product": {"S": product.id}},
                    }
                }
            )
        return items + list(also)

    @staticmethod
    def variant_changes(product: StoredProduct, previous: StoredProduct | None) -> dict[str, dict[str, Any]]:
        """The variant items a write of `product` over `previous` must put: new or changed variants, and removed
        ones, which stay the product's but are no longer sold."""
        wanted = variant_items(product)
        had = variant_items(previous) if previous is not None else {}
        for sku, item in had.items():
            if sku not in wanted:
                wanted[sku] = {**item, "sellable": False}
        return {sku: item for sku, item in wanted.items() if had.get(sku) != item}

    def write_category(
        self, category: Category, previous: Category | None, also: Iterable[dict[str, Any]] = ()
    ) -> None:
        """Create `category` (previous None) or rename exactly `previous`, with `also`; raises ConditionsFailed."""
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(pk)"}
            if previous is None
            else {
                "ConditionExpression": "#name = :read",
                "ExpressionAttributeNames": {"#name": "name"},
                "ExpressionAttributeValues": {":read": {"S": previous.name}},
            }
        )
        transact_write(
            self._client,
            [{"Put": {"TableName": self._table, "Item": to_item(_category_item(category)), **condition}}, *also],
        )

    # ---------------------------------------------------------------- seeding (demo data, tests, benchmarks)

    def put_product(self, product: StoredProduct) -> None:
        """The product and its variant items as they are, all or nothing, without conditions: for fixtures."""
        items = [_product_item(product), *variant_items(product).values()]
        self._client.transact_write_items(
            TransactItems=[{"Put": {"TableName": self._table, "Item": to_item(i)}} for i in items]
        )

    def put_category(self, category: Category) -> None:
        self._client.put_item(TableName=self._table, Item=to_item(_category_item(category)))


def _product_item(product: StoredProduct) -> dict[str, Any]:
    return {
        "pk": f"PRODUCT#{product.id}",
        "sk": "PRODUCT",
        "listing_pk": listing_partition(product.status),
        "listing_sk": f"{product.category}#{product.id}",
        **product.model_dump(mode="json"),
    }


def _version_condition(previous: StoredProduct | None) -> dict[str, Any]:
    """Write only over the version read (a new product: only if there is none)."""
    if previous is None:
        return {"ConditionExpression": "attribute_not_exists(pk)"}
    # Products stored before versions existed have none: they are at version 1.
    unversioned = "attribute_not_exists(version) OR " if previous.version == 1 else ""
    return {
        "ConditionExpression": f"{unversioned}version = :read",
        "ExpressionAttributeValues": {":read": {"N": str(previous.version)}},
    }


def _category_item(category: Category) -> dict[str, Any]:
    return {"pk": "CATEGORY", "sk": category.id, **category.model_dump()}


def _product(item: dict[str, Any]) -> StoredProduct:
    return StoredProduct.model_validate({k: v for k, v in item.items() if k in StoredProduct.model_fields})
