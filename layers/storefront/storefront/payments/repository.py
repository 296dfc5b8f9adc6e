"""Processed webhook events, in the orders table, so a redelivered event changes nothing the second time.

Item: processed event  pk=EVENT#<provider>#<event_id>  sk=EVENT  type, processed_at, expires_at_epoch
expires_at_epoch is the table's TTL attribute: DynamoDB deletes the item some time after it passes.
Providers stop redelivering long before (Stripe: three days), so the TTL only bounds the table's growth.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from storefront.dynamodb import key, to_item


class ProcessedEvents:
    def __init__(self, client: Any, table_name: str, ttl_days: int) -> None:
        self._client = client
        self._table = table_name
        self._ttl = timedelta(days=ttl_days)

    def seen(self, provider: str, event_id: str) -> bool:
        item = self._client.get_item(
            TableName=self._table,
            Key=key(pk=_pk(provider, event_id), sk="EVENT"),
            ConsistentRead=True,
            ProjectionExpression="pk",
        ).get("Item")
        return item is not None

    def record(self, provider: str, event_id: str, event_type: str, at: datetime) -> bool:
        """Remember the event as processed; False if it already was (a concurrent duplicate got there first)."""
        item = {
            "pk": _pk(provider, event_id),
            "sk": "EVENT",
            "type": event_type,
            "processed_at": at.isoformat(),
            "expires_at_epoch": int((at + self._ttl).timestamp()),
        }
        try:
            self._client.put_item(
                TableName=self._table, Item=to_item(item), ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True


def _pk(provider: str, event_id: str) -> str:
    return f"EVENT#{provider}#{event_id}"
