"""Idempotency keys, as Stripe's API has them, on DynamoDB.

`IdempotencyStore.run(scope, key, body_hash, operation)` is the one way to make a request idempotent: the first
request with a key claims it (a conditional put, status in_progress), runs the operation, and stores its response.
Later requests with that key get, depending on the record:
  same body, completed      -> the stored response, again
  same body, in progress    -> 409 request_in_progress (unless its lock expired: the first one crashed)
  another body              -> 422 idempotency_key_reused
A request that fails with a 4xx before doing anything, or with a 5xx, gives its claim back, so the client
may fix the problem and retry with the same key; unless its effects had begun (the caller says how to tell: a
refund already on its order): then the key stays bound to its body, unlocked, and a retry with that body runs the
operation again, which finishes what the first left (the operation must be idempotent by the key, as a refund is
by its id); another body is 422.

Item: pk=IDEMPOTENCY#<sha256(scope:key)> sk=REQUEST  status, request_hash, response_status, response_body,
      locked_until (epoch s), expires_at_epoch (the table's TTL attribute; reads also treat it as gone)
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from botocore.exceptions import ClientError

from storefront.dynamodb import from_item, key, to_item
from storefront.errors import StorefrontError


class IdempotencyKeyRequired(StorefrontError):
    status, code, title = 400, "idempotency_key_required", "Idempotency-Key required"


def require_key(header: str | None) -> str:
    """The request's Idempotency-Key header; 400 idempotency_key_required without one."""
    if header is None:
        raise IdempotencyKeyRequired("Send an Idempotency-Key header (a fresh random value per attempt).")
    return header


class KeyReused(StorefrontError):
    status, code, title = 422, "idempotency_key_reused", "Idempotency key reused"


class RequestInProgress(StorefrontError):
    status, code, title = 409, "request_in_progress", "Request in progress"
    headers = MappingProxyType({"Retry-After": "1"})


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: str


def request_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class IdempotencyStore:
    def __init__(self, client: Any, table_name: str, ttl_seconds: int, lock_seconds: int = 60) -> None:
        self._client = client
        self._table = table_name
        self._ttl = ttl_seconds
        self._lock = lock_seconds  # longer than the function's timeout: a live request never loses its claim

    def run(
        self,
        scope: str,
        idempotency_key: str,
        body_hash: str,
        operation: Callable[[], StoredResponse],
        *,
        effects_began: Callable[[], bool] = lambda: False,
    ) -> StoredResponse:
        """The response of the first request with this key (replayed), or `operation()`'s, stored for the next.
        If the operation raises, the claim is given back (nothing happened worth replaying, so a retry may run), or,
        if `effects_began()` (asked then; an error asking counts as yes), kept for this body and unlocked: a retry
        with the same body runs the operation again at once, to finish it."""
        replay = self.claim(scope, idempotency_key, body_hash)
        if replay is not None:
            return replay
        try:
            response = operation()
        except Exception:
            if _began(effects_began):
                self.unlock(scope, idempotency_key)
            else:
                self.release(scope, idempotency_key)
            raise
        self.complete(scope, idempotency_key, response)
        return response

    def claim(self, scope: str, idempotency_key: str, body_hash: str) -> StoredResponse | None:
        """Claim the key for this request (None), or return the response of the completed earlier one."""
        now = int(time.time())
        item_key = self._key(scope, idempotency_key)
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    **item_key,
                    **to_item(
                        {
                            "status": "in_progress",
                            "request_hash": body_hash,
                            "locked_until": now + self._lock,
                            "expires_at_epoch": now + self._ttl,
                        }
                    ),
                },
                ConditionExpression=(
                    "attribute_not_exists(pk) OR expires_at_epoch < :now"
                    " OR (#status = :in_progress AND locked_until < :now AND request_hash = :hash)"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":now": {"N": str(now)},
                    ":in_progress": {"S": "in_progress"},
                    ":hash": {"S": body_hash},
                },
            )
            return None
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        item = self._client.get_item(TableName=self._table, Key=item_key, ConsistentRead=True).get("Item")
        if item is None:  # given back between our put and get: let the client try again
            raise RequestInProgress("The first request with this Idempotency-Key just finished; retry.")
        record = from_item(item)
        if record["request_hash"] != body_hash:
            raise KeyReused("This Idempotency-Key was used with a different request body.")
        if record["status"] == "in_progress":
            raise RequestInProgress("A request with this Idempotency-Key is still being processed.")
        return StoredResponse(status=record["response_status"], body=record["response_body"])

    def complete(self, scope: str, idempotency_key: str, response: StoredResponse) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=self._key(scope, idempotency_key),
            UpdateExpression="SET #status = :completed, response_status = :code, response_body = :body",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":completed": {"S": "completed"},
                ":code": {"N": str(response.status)},
                ":body": {"S": response.body},
            },
        )

    def release(self, scope: str, idempotency_key: str) -> None:
        """Give the claim back (the request failed without an effect worth replaying)."""
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=self._key(scope, idempotency_key),
                ConditionExpression="#status = :in_progress",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":in_progress": {"S": "in_progress"}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def unlock(self, scope: str, idempotency_key: str) -> None:
        """Keep the claim for its body but let the next request with it take over now (its lock ran out)."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(scope, idempotency_key),
                UpdateExpression="SET locked_until = :unlocked",
                ConditionExpression="#status = :in_progress",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":in_progress": {"S": "in_progress"}, ":unlocked": {"N": "0"}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    @staticmethod
    def _key(scope: str, idempotency_key: str) -> dict[str, Any]:
        digest = hashlib.sha256(f"{scope}:{idempotency_key}".encode()).hexdigest()
        return key(pk=f"IDEMPOTENCY#{digest}", sk="REQUEST")


def _began(effects_began: Callable[[], bool]) -> bool:
    try:
        return effects_began()
    except Exception:  # noqa: BLE001 - cannot tell: keep the key bound, the safe side when money may have moved
        return True
