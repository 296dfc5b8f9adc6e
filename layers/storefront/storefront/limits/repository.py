"""Limit items in the orders table: one per client, holding the orders that count against its limit.

Item: pk=LIMIT#<email|ip>#<hash>  sk=HOLDS  holds (string set of members), expires_at_epoch (the table's TTL)
The key is a SHA-256 of the client (no email or address in a key: keys end up in metrics, logs and traces).
A place is taken by an atomic conditional ADD to the set, in the same transaction that stores the order, so a
client at its limit is refused however many of its checkouts race, and no place is ever taken for an order that
was not stored (nor an order stored without its place). Giving a place back is a set DELETE: doing it twice is
the same as once.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from storefront.dynamodb import key
from storefront.limits.models import ClientHold, expiry_of

HOLDS_SK = "HOLDS"


class ClientHoldRepository:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def take(self, pk: str, member: str, limit: int) -> dict[str, Any]:
        """The transaction item that takes a place for `member` if the client holds fewer than `limit` (or already
        holds this one); its condition fails otherwise, returning the item as it was."""
        return {
            "Update": {
                "TableName": self._table,
                "Key": key(pk=pk, sk=HOLDS_SK),
                # The newest place expires last: the item lives (TTL) as long as its newest place.
                "UpdateExpression": "ADD #holds :members SET #expires = :expires",
                "ConditionExpression": (
                    "attribute_not_exists(#holds) OR size(#holds) < :limit OR contains(#holds, :member)"
                ),
                "ExpressionAttributeNames": {"#holds": "holds", "#expires": "expires_at_epoch"},
                "ExpressionAttributeValues": {
                    ":members": {"SS": [member]},
                    ":member": {"S": member},
                    ":limit": {"N": str(limit)},
                    ":expires": {"N": str(expiry_of(member))},
                },
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def give_back(self, pk: str, members: list[str]) -> None:
        """Remove `members` from the client's places; members already gone (or a lapsed item) are no error."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=key(pk=pk, sk=HOLDS_SK),
                UpdateExpression="DELETE #holds :members",
                ConditionExpression="attribute_exists(pk)",  # never create an empty item for a lapsed client
                ExpressionAttributeNames={"#holds": "holds"},
                ExpressionAttributeValues={":members": {"SS": members}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def release(self, hold: ClientHold) -> None:
        """Give back every place the order took."""
        for pk in hold.keys:
            self.give_back(pk, [hold.member])

    def forget(self, pk: str) -> None:
        """Delete the client's item (erasure)."""
        self._client.delete_item(TableName=self._table, Key=key(pk=pk, sk=HOLDS_SK))


def held_members(item: dict[str, Any] | None) -> list[str]:
    """The members of a limit item as DynamoDB returned it (a transaction's ALL_OLD), oldest expiry first."""
    return sorted((item or {}).get("holds", {}).get("SS", []))
