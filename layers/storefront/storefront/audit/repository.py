"""The audit table: one item per entry, kept AUDIT_RETENTION_DAYS (the table's TTL), written once and never changed.

Items: entry  pk=<target>  sk=<sortable time>#<entry id>  log_shard, id, at, actor, action, target, changes,
                                                          expires_at_epoch
A target's history is one Query of its partition, strongly consistent and newest first (an order's page shows it
right after the change). Index ByTime (log_shard, sk), every attribute projected, is the whole log newest first:
LOG_SHARDS partitions read as one list (storefront.dynamodb.merged_query), so the log's write rate is not one
partition's. Functions may only PutItem here (template.yaml), and every put is conditional on the entry being new.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from storefront.audit.models import AuditEntry
from storefront.dynamodb import SortKeyRange, from_item, merged_query, sortable_time, to_item

TIME_INDEX = "ByTime"
LOG_SHARDS = 4
MAX_TARGET_ENTRIES = 100  # an order's or a product's page shows at most its newest 100 changes


def log_shard(entry_id: str) -> str:
    return str(int(hashlib.sha256(entry_id.encode()).hexdigest()[:8], 16) % LOG_SHARDS)


class AuditRepository:
    def __init__(self, client: Any, table_name: str, retention_days: int) -> None:
        self._client = client
        self._table = table_name
        self._retention = timedelta(days=retention_days)

    def put_item(self, entry: AuditEntry) -> dict[str, Any]:
        """The entry as an item of a TransactWriteItems: written with the change it records, or not at all."""
        return {
            "Put": {
                "TableName": self._table,
                "Item": self._item(entry),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def put(self, entry: AuditEntry) -> None:
        """The entry on its own; a retry with the same entry id and time writes nothing more."""
        try:
            self._client.put_item(**self.put_item(entry)["Put"])
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def for_target(self, target: str, limit: int = MAX_TARGET_ENTRIES) -> list[AuditEntry]:
        response = self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :target",
            ExpressionAttributeValues={":target": {"S": target}},
            ScanIndexForward=False,
            ConsistentRead=True,
            Limit=limit,
        )
        return [_entry(item) for item in response.get("Items", [])]

    def page(self, limit: int, after: str | None) -> tuple[list[AuditEntry], str | None]:
        """Up to `limit` entries newest first, older than the sort key `after`, and the key to go on from."""
        items, more = merged_query(
            self._client,
            self._table,
            TIME_INDEX,
            "log_shard",
            "sk",
            [str(shard) for shard in range(LOG_SHARDS)],
            limit,
            SortKeyRange(after=after),
            descending=True,
        )
        return [_entry(item) for item in items], items[-1]["sk"]["S"] if more else None

    def _item(self, entry: AuditEntry) -> dict[str, Any]:
        values = entry.model_dump(mode="json")
        return to_item(
            {
                "pk": entry.target,
                "sk": f"{sortable_time(entry.at)}#{entry.id}",
                "log_shard": log_shard(entry.id),
                "expires_at_epoch": int((entry.at + self._retention).timestamp()),
                **values,
            }
        )


def _entry(item: dict[str, Any]) -> AuditEntry:
    values = from_item(item)
    return AuditEntry.model_validate({k: v for k, v in values.items() if k in AuditEntry.model_fields})
