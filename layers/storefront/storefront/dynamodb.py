"""Low-level DynamoDB helpers shared by the repositories: item (de)serialisation and batch reads."""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

BATCH_GET_LIMIT = 100
_MAX_UNPROCESSED_RETRIES = 8
BACKOFF_BASE_SECONDS = 0.025
# Transient refusals, as a whole-request error code or as a transaction's cancellation reason: retry them.
RETRYABLE = frozenset({
    "TransactionConflictException", "TransactionConflict", "ThrottlingException", "ThrottlingError",
    "ProvisionedThroughputExceededException", "ProvisionedThroughputExceeded", "RequestLimitExceeded",
})


def backoff(attempt: int) -> None:
    """Full jitter: concurrent losers of the same race spread out instead of colliding again."""
    time.sleep(random.uniform(0, BACKOFF_BASE_SECONDS * 2**attempt))


def refusal_codes(error: Any) -> set[str]:
    """A ClientError's code and, for a cancelled transaction, every item's cancellation reason."""
    reasons = {r.get("Code") for r in error.response.get("CancellationReasons") or []}
    return {error.response["Error"]["Code"], *(r for r in reasons if r)}


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in values.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(_deserializer.deserialize(v)) for k, v in item.items()}


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; everything this project stores is an integer."""
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def key(**parts: str) -> dict[str, Any]:
    return {name: {"S": value} for name, value in parts.items()}


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def batch_get(client: Any, table: str, keys: Iterable[dict[str, Any]], projection: str | None = None) -> list[dict[str, Any]]:
    """BatchGetItem over any number of keys, retrying UnprocessedKeys with backoff (throttling)."""
    found: list[dict[str, Any]] = []
    for chunk in _chunks(list(keys), BATCH_GET_LIMIT):
        request: dict[str, Any] = {"Keys": chunk}
        if projection:
            request["ProjectionExpression"] = projection
        pending: dict[str, Any] = {table: request}
        for attempt in range(_MAX_UNPROCESSED_RETRIES):
            response = client.batch_get_item(RequestItems=pending)
            found.extend(from_item(item) for item in response.get("Responses", {}).get(table, []))
            pending = response.get("UnprocessedKeys") or {}
            if not pending:
                break
            time.sleep(min(0.05 * 2**attempt, 1.0))
        else:
            raise RuntimeError("DynamoDB kept keys unprocessed; giving up")
    return found
