"""The catalog table: item shapes and DynamoDB expressions, nothing else.

Items (one table, composite key pk/sk):
  product    pk=PRODUCT#<id>  sk=PRODUCT     listing_pk=PRODUCTS  listing_sk=<category>#<id>
  category   pk=CATEGORY      sk=<id>
  variant    pk=VARIANT#<sku> sk=VARIANT     product_id, product_name, title, price
The `ByListing` index lists every product in (category, id) order; a category filter is a
begins_with on its sort key, so one index serves both listings. The variant items let the cart and
checkout price any SKU with one BatchGetItem, without knowing its product.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from storefront.catalog.models import Category, StoredProduct, VariantInfo
from storefront.dynamodb import batch_get, from_item, key, to_item

LISTING_INDEX = "ByListing"
_LISTING_PK = "PRODUCTS"


class CatalogRepository:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get_product(self, product_id: str) -> StoredProduct | None:
        response = self._client.get_item(TableName=self._table, Key=key(pk=f"PRODUCT#{product_id}", sk="PRODUCT"))
        item = response.get("Item")
        return _product(from_item(item)) if item else None

    def list_products(self, category: str | None, limit: int,
                      start_key: dict[str, str] | None) -> tuple[list[StoredProduct], dict[str, str] | None]:
        """Up to `limit` products after `start_key`, and the key to resume from (None on the last page)."""
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

    def list_categories(self) -> list[Category]:
        response = self._client.query(TableName=self._table, KeyConditionExpression="pk = :pk",
                                      ExpressionAttributeValues={":pk": {"S": "CATEGORY"}})
        return [Category(id=i["id"], name=i["name"]) for i in map(from_item, response.get("Items", []))]

    def get_variants(self, skus: Iterable[str]) -> dict[str, VariantInfo]:
        """The variants that exist among `skus`, by SKU (unknown SKUs are simply absent)."""
        rows = batch_get(self._client, self._table, [key(pk=f"VARIANT#{sku}", sk="VARIANT") for sku in set(skus)])
        return {row["sku"]: VariantInfo.model_validate({k: row[k] for k in VariantInfo.model_fields}) for row in rows}

    # --- writes, used by seeding today and by the admin API later ---

    def put_product(self, product: StoredProduct) -> None:
        """The product and one item per variant, all or nothing."""
        items = [{
            "pk": f"PRODUCT#{product.id}", "sk": "PRODUCT",
            "listing_pk": _LISTING_PK, "listing_sk": f"{product.category}#{product.id}",
            **product.model_dump(),
        }] + [{
            "pk": f"VARIANT#{v.sku}", "sk": "VARIANT",
            **VariantInfo(sku=v.sku, product_id=product.id, product_name=product.name, title=v.title,
                          price=v.price).model_dump(),
        } for v in product.variants]
        self._client.transact_write_items(TransactItems=[{"Put": {"TableName": self._table, "Item": to_item(i)}}
                                                         for i in items])

    def put_category(self, category: Category) -> None:
        self._client.put_item(TableName=self._table,
                              Item=to_item({"pk": "CATEGORY", "sk": category.id, **category.model_dump()}))


def _product(item: dict[str, Any]) -> StoredProduct:
    return StoredProduct.model_validate({k: v for k, v in item.items() if k in StoredProduct.model_fields})
