"""The notifications table (what became of each event's email; the suppressed addresses) and the order an email
is made from (read from the orders table).

Items of the notifications table:
  email of an event  pk=EVENT#<event_id>        sk=EMAIL    status (sending | sent | suppressed | refused |
                     rejected | unknown_order), claim, locked_until (epoch s), order_id, kind, message_id?,
                     expires_at_epoch (the table's TTL attribute)
  suppressed address pk=SUPPRESSED#<sha256 hex>  sk=ADDRESS  reason (bounce | complaint), at
The suppression list holds a SHA-256 of the normalised address, not the address: enough to recognise it,
nothing to leak.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from storefront.dynamodb import from_item, key, to_item
from storefront.notifications.addresses import deliverable
from storefront.notifications.models import MAILABLE_ATTRIBUTES, MailableOrder

SENDING = "sending"


def _conditional_check_failed(error: ClientError) -> bool:
    return error.response["Error"]["Code"] == "ConditionalCheckFailedException"


class EmailRecords:
    """One record per event: the claim that makes one delivery of an event the one that sends its email."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def claim(self, event_id: str, claim: str, now: int, lock_seconds: int, ttl_seconds: int, **fields: str) -> bool:
        """Claim the event's email for this delivery (True), unless a record says it is done or another delivery
        holds a live claim (False). A claim whose lock expired (its holder crashed) is taken over."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    **self._key(event_id),
                    **to_item(
                        {
                            "status": SENDING,
                            "claim": claim,
                            "locked_until": now + lock_seconds,
                            "expires_at_epoch": now + ttl_seconds,
                            **fields,
                        }
                    ),
                },
                ConditionExpression="attribute_not_exists(pk) OR (#status = :sending AND locked_until < :now)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":sending": {"S": SENDING}, ":now": {"N": str(now)}},
            )
            return True
        except ClientError as error:
            if _conditional_check_failed(error):
                return False
            raise

    def finish(self, event_id: str, claim: str, status: str, **fields: str) -> bool:
        """Record what became of the email, if this delivery still holds the claim (False: it was taken over)."""
        names = {"#status": "status", **{f"#f{i}": name for i, name in enumerate(fields)}}
        values = {":status": status, ":claim": claim, **{f":f{i}": value for i, value in enumerate(fields.values())}}
        sets = ["#status = :status", *(f"#f{i} = :f{i}" for i in range(len(fields)))]
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(event_id),
                UpdateExpression="SET " + ", ".join(sets) + " REMOVE locked_until",
                ConditionExpression="claim = :claim",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_item(values),
            )
            return True
        except ClientError as error:
            if _conditional_check_failed(error):
                return False
            raise

    def release(self, event_id: str, claim: str) -> None:
        """Give the claim back (nothing was sent), so the event's next delivery sends at once."""
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=self._key(event_id),
                ConditionExpression="claim = :claim AND #status = :sending",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":claim": {"S": claim}, ":sending": {"S": SENDING}},
            )
        except ClientError as error:
            if not _conditional_check_failed(error):
                raise

    def get(self, event_id: str) -> dict[str, Any] | None:
        item = self._client.get_item(TableName=self._table, Key=self._key(event_id), ConsistentRead=True).get("Item")
        return from_item(item) if item else None

    @staticmethod
    def _key(event_id: str) -> dict[str, Any]:
        return key(pk=f"EVENT#{event_id}", sk="EMAIL")


class SuppressionList:
    """Addresses that bounced for good or complained: no email goes to them again."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def contains(self, address: str) -> bool:
        return "Item" in self._client.get_item(
            TableName=self._table, Key=self._key(address), ConsistentRead=True, ProjectionExpression="pk"
        )

    def add(self, address: str, reason: str, at: datetime) -> None:
        self._client.put_item(
            TableName=self._table, Item={**self._key(address), **to_item({"reason": reason, "at": at.isoformat()})}
        )

    @staticmethod
    def _key(address: str) -> dict[str, Any]:
        normalised = (deliverable(address.strip()) or address.strip()).lower()
        return key(pk=f"SUPPRESSED#{hashlib.sha256(normalised.encode()).hexdigest()}", sk="ADDRESS")


class MailableOrders:
    """The order an email is made from: one consistent GetItem of the attributes an email shows."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get(self, order_id: str) -> MailableOrder | None:
        names = {f"#a{i}": name for i, name in enumerate(MAILABLE_ATTRIBUTES)}
        item = self._client.get_item(
            TableName=self._table,
            Key=key(pk=f"ORDER#{order_id}", sk="ORDER"),
            ConsistentRead=True,
            ProjectionExpression=", ".join(names),
            ExpressionAttributeNames=names,
        ).get("Item")
        return MailableOrder.model_validate(from_item(item)) if item else None
