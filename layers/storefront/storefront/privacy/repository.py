"""What erasure reads and writes in the orders table: a shopper's orders through the ByEmail index, the
personal fields of one order, and the erasure's audit record.

Audit item: pk=ERASURE#<id>  sk=AUDIT  at, actor, subject (SHA-256 of the erased email key), erased, kept, fields
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from storefront.dynamodb import from_item, to_item
from storefront.orders.models import OrderStatus
from storefront.orders.repository import EMAIL_INDEX


class ErasureRepository:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def order_ids(self, email_key: str) -> list[str]:
        """The ids of the orders the index holds for the email, oldest first (the index is eventually consistent:
        an order placed a moment ago may not be there yet)."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": EMAIL_INDEX,
            "KeyConditionExpression": "email_key = :key",
            "ExpressionAttributeValues": {":key": {"S": email_key}},
        }
        ids: list[str] = []
        while True:
            page = self._client.query(**request)
            ids += [from_item(item)["pk"].removeprefix("ORDER#") for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return ids
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def erase(
        self, order_id: str, email_key: str, statuses: frozenset[OrderStatus], replacements: dict[str, Any], at: str
    ) -> bool:
        """Overwrite the order's personal fields with `replacements` and drop email_key (and its client places), if the
        order still belongs to the email and is in one of `statuses`; False if it is not (any more)."""
        names = {f"#r{i}": name for i, name in enumerate(replacements)}
        values = {f":r{i}": value for i, value in enumerate(replacements.values())}
        names |= {
            "#email_key": "email_key",
            "#status": "status",
            "#client_hold": "client_hold",
            "#erased_at": "erased_at",
        }
        values |= {":key": email_key, ":at": at, **{f":s{i}": s.value for i, s in enumerate(sorted(statuses))}}
        try:
            self._client.update_item(
                TableName=self._table,
                Key=to_item({"pk": f"ORDER#{order_id}", "sk": "ORDER"}),
                UpdateExpression="SET "
                + ", ".join([f"#r{i} = :r{i}" for i in range(len(replacements))] + ["#erased_at = :at"])
                + " REMOVE #email_key, #client_hold",
                ConditionExpression=(
                    f"#email_key = :key AND #status IN ({', '.join(f':s{i}' for i in range(len(statuses)))})"
                ),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_item(values),
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def record(self, audit_id: str, audit: dict[str, Any]) -> None:
        self._client.put_item(
            TableName=self._table,
            Item=to_item({"pk": f"ERASURE#{audit_id}", "sk": "AUDIT", **audit}),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def audit(self, audit_id: str) -> dict[str, Any] | None:
        item = self._client.get_item(
            TableName=self._table, Key=to_item({"pk": f"ERASURE#{audit_id}", "sk": "AUDIT"}), ConsistentRead=True
        ).get("Item")
        return from_item(item) if item else None
