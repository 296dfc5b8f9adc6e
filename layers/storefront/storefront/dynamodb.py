"""Low-level DynamoDB helpers shared by the repositories: item (de)serialisation and batch reads."""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from storefront.errors import Busy

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

BATCH_GET_LIMIT = 100
_MAX_UNPROCESSED_RETRIES = 8
BACKOFF_BASE_SECONDS = 0.025
# Transient refusals, as a whole-request error code or as a transaction's cancellation reason: retry them.
RETRYABLE = frozenset(
    {
        "TransactionConflictException",
        "TransactionConflict",
        "ThrottlingException",
        "ThrottlingError",
        "ProvisionedThroughputExceededException",
        "ProvisionedThroughputExceeded",
        "RequestLimitExceeded",
    }
)


def backoff(attempt: int) -> None:
    """Full jitter: concurrent losers of the same race spread out instead of colliding again."""
    time.sleep(random.uniform(0, BACKOFF_BASE_SECONDS * 2**attempt))  # noqa: S311  jitter, not a secret


def refusal_codes(error: Any) -> set[str]:
    """A ClientError's code and, for a cancelled transaction, every item's cancellation reason."""
    reasons = {r.get("Code") for r in error.response.get("CancellationReasons") or []}
    return {error.response["Error"]["Code"], *(r for r in reasons if r)}


def item_before_refusal(error: ClientError) -> dict[str, Any] | None:
    """The item as it was when a condition failed (asked for with ReturnValuesOnConditionCheckFailure), if any.

    botocore's stubs do not list this field of the error response, hence the plain mapping view."""
    response: Mapping[str, Any] = error.response
    item: dict[str, Any] | None = response.get("Item")
    return item


def cancelled_item(reason: Mapping[str, Any]) -> dict[str, Any] | None:
    """The item a transaction's cancellation reason carries (DynamoDB's form). botocore's stubs type it as a
    key/value pair, which it is not; a mapping view reads it as DynamoDB sends it."""
    item: dict[str, Any] | None = reason.get("Item")
    return item


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


def batch_get(
    client: Any, table: str, keys: Iterable[dict[str, Any]], projection: str | None = None
) -> list[dict[str, Any]]:
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


def sortable_time(at: datetime) -> str:
    """A time as a sort key: UTC, always with microseconds, so that string order is time order (isoformat() drops
    zero microseconds and keeps the offset, which breaks that)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def cancellation_codes(error: ClientError) -> list[str | None]:
    """Per item of a refused TransactWriteItems, the reason's code (None where the item was not the cause)."""
    return [
        reason.get("Code") if reason.get("Code") != "None" else None
        for reason in error.response.get("CancellationReasons") or []
    ]


@dataclass(frozen=True)
class SortKeyRange:
    """Bounds on an index's sort key, for a listing that pages by the last key it returned: `after` (exclusive)
    is where the previous page stopped; `low` and `high` (inclusive) are the caller's filter."""

    low: str | None = None
    high: str | None = None
    after: str | None = None


def merged_query(
    client: Any,
    table: str,
    index: str | None,
    hash_name: str,
    range_name: str,
    partitions: Sequence[str],
    limit: int,
    bounds: SortKeyRange = SortKeyRange(),
    descending: bool = False,
) -> tuple[list[dict[str, Any]], bool]:
    """Up to `limit` items of several partitions of a table or index, in one order of their sort key (which must
    be unique across the partitions), and whether more follow. The way to read a sharded or bucketed index as
    one list: each partition is queried for `limit + 1` items past `bounds.after`, and the merge keeps the first
    `limit`; the next page starts after the last sort key returned (SortKeyRange.after), so a cursor is one key.
    Items come back as DynamoDB returns them (wire format)."""
    low, high = bounds.low, bounds.high
    exclusive = bounds.after  # the previous page's last key: a bound that is itself left out
    if exclusive is not None:
        if descending:
            high = exclusive if high is None or exclusive <= high else high
        else:
            low = exclusive if low is None or exclusive >= low else low
    if low is not None and high is not None and low > high:
        return [], False  # an empty range (DynamoDB refuses a BETWEEN whose bounds are the wrong way round)
    found: list[dict[str, Any]] = []
    for partition in partitions:
        found += _query_partition(
            client, table, index, hash_name, range_name, partition, limit + 1, low, high, exclusive, descending
        )
    found.sort(key=lambda item: item[range_name]["S"], reverse=descending)
    return found[:limit], len(found) > limit


def _query_partition(
    client: Any,
    table: str,
    index: str | None,
    hash_name: str,
    range_name: str,
    partition: str,
    wanted: int,
    low: str | None,
    high: str | None,
    exclusive: str | None,
    descending: bool,
) -> list[dict[str, Any]]:
    """The first `wanted` items of one partition in the listing's order, within [low, high] but for `exclusive`."""
    names = {"#h": hash_name, "#r": range_name}
    values: dict[str, Any] = {":h": {"S": partition}}
    condition = "#h = :h"
    if low is not None and high is not None:
        condition += " AND #r BETWEEN :low AND :high"
        values.update({":low": {"S": low}, ":high": {"S": high}})
    elif high is not None:
        condition += " AND #r <= :high"
        values[":high"] = {"S": high}
    elif low is not None:
        condition += " AND #r >= :low"
        values[":low"] = {"S": low}
    if "#r" not in condition:
        del names["#r"]  # DynamoDB refuses a name the expression does not use
    request: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        "ScanIndexForward": not descending,
        "Limit": wanted + 1,
    }  # + 1: the excluded key itself may come back
    if index is not None:
        request["IndexName"] = index
    items: list[dict[str, Any]] = []
    while len(items) < wanted:
        page = client.query(**request)
        items += [item for item in page.get("Items", []) if item[range_name]["S"] != exclusive]
        if "LastEvaluatedKey" not in page:  # a page cut short by DynamoDB's 1 MB limit goes on
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return items[:wanted]


_TRANSACT_ATTEMPTS = 6


class ConditionsFailed(Exception):
    """A TransactWriteItems whose conditions did not all hold: nothing was written. `codes` has, per item, the
    reason's code (ConditionalCheckFailed where a condition failed, None where the item was not the cause)."""

    def __init__(self, codes: list[str | None]) -> None:
        super().__init__(codes)
        self.codes = codes

    def failed(self) -> list[int]:
        """The positions of the items whose condition failed."""
        return [i for i, code in enumerate(self.codes) if code == "ConditionalCheckFailed"]


class Contention(Busy):
    """DynamoDB kept refusing a transaction for transient reasons (conflicting transactions, throttling): over
    HTTP a 503 with Retry-After."""


def transact_write(client: Any, items: list[dict[str, Any]]) -> None:
    """One TransactWriteItems, retried with jittered backoff while DynamoDB refuses it for transient reasons;
    ConditionsFailed when a condition fails, Contention when the retries run out."""
    for attempt in range(_TRANSACT_ATTEMPTS):
        try:
            client.transact_write_items(TransactItems=items)
            return
        except ClientError as error:
            codes = cancellation_codes(error)
            if "ConditionalCheckFailed" in codes:
                raise ConditionsFailed(codes) from error
            if not refusal_codes(error) & RETRYABLE:
                raise
        if attempt < _TRANSACT_ATTEMPTS - 1:
            backoff(attempt)
    raise Contention("This is being changed by many requests at once; retry shortly.")
