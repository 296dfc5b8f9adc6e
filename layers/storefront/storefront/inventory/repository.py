"""The inventory table: stock levels per SKU (and, with checkout, the reservations and the ledger).

Items: level  pk=SKU#<sku>  sk=LEVEL  on_hand, reserved, available, low_stock_threshold
The stock function is the only writer of levels; other contexts read them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from storefront.dynamodb import batch_get, key, to_item


class InventoryRepository:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def available(self, skus: Iterable[str]) -> dict[str, int]:
        """Units available per SKU; a SKU with no stock record has 0."""
        wanted = sorted(set(skus))
        rows = batch_get(self._client, self._table, [key(pk=f"SKU#{sku}", sk="LEVEL") for sku in wanted],
                         projection="sku, available")
        levels = {row["sku"]: max(int(row.get("available", 0)), 0) for row in rows}
        return {sku: levels.get(sku, 0) for sku in wanted}

    def put_level(self, sku: str, on_hand: int, low_stock_threshold: int = 5) -> None:
        """Set a SKU's opening stock (seeding); later movements go through the stock function."""
        self._client.put_item(TableName=self._table, Item=to_item({
            "pk": f"SKU#{sku}", "sk": "LEVEL", "sku": sku, "on_hand": on_hand, "reserved": 0,
            "available": on_hand, "low_stock_threshold": low_stock_threshold,
        }))
