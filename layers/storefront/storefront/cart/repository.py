"""The cart table: one item per cart, written only if its version is the one read (optimistic concurrency).

Item: pk=CART#<id> sk=CART  currency, version, lines (list of maps), shipping, timestamps,
      expires_at_epoch (the table's TTL attribute; DynamoDB deletes lazily, so reads check it too)
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from storefront.cart.models import StoredCart
from storefront.dynamodb import from_item, key, to_item


class StaleVersion(Exception):
    """Another writer saved the cart since it was read."""


class CartRepository:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get(self, cart_id: str) -> StoredCart | None:
        response = self._client.get_item(
            TableName=self._table, Key=key(pk=f"CART#{cart_id}", sk="CART"), ConsistentRead=True
        )
        item = response.get("Item")
        if not item:
            return None
        values = from_item(item)
        return StoredCart.model_validate({k: values[k] for k in StoredCart.model_fields if k in values})

    def create(self, cart: StoredCart) -> None:
        self._client.put_item(
            TableName=self._table, Item=self._item(cart), ConditionExpression="attribute_not_exists(pk)"
        )

    def save(self, cart: StoredCart, read_version: int) -> None:
        """Write `cart` only if the stored version is still `read_version`."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item=self._item(cart),
                ConditionExpression="version = :read",
                ExpressionAttributeValues={":read": {"N": str(read_version)}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise StaleVersion(cart.id) from error
            raise

    @staticmethod
    def _item(cart: StoredCart) -> dict[str, Any]:
        return to_item(
            {
                "pk": f"CART#{cart.id}",
                "sk": "CART",
                **cart.model_dump(mode="json"),
                "expires_at_epoch": int(cart.expires_at.timestamp()),
            }
        )
