"""The audit log of operators' writes on orders (cancellations, refunds): who, what, when, before and after.

Item: pk=AUDIT#<yyyy-mm-dd>  sk=<iso time>#<random>  at, actor, action, target, changes
One partition per day: operators' writes are few, and a day's entries read newest first with one Query.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from storefront.dynamodb import to_item


class AuditLog:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def record(self, at: datetime, actor: str, action: str, target: str, changes: dict[str, Any]) -> None:
        stamp = at.isoformat()
        self._client.put_item(TableName=self._table, Item=to_item({
            "pk": f"AUDIT#{stamp[:10]}", "sk": f"{stamp}#{secrets.token_hex(6)}", "at": stamp, "actor": actor,
            "action": action, "target": target, "changes": changes}))
