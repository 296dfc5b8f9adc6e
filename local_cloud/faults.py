"""DynamoDB refusing transactions on a hot item, as real DynamoDB does and moto never does: for tests and benchmarks.

Real DynamoDB cancels a TransactWriteItems whose item is part of another ongoing transaction (reason
`TransactionConflict`), or whose partition is over its throughput (`ThrottlingError`); the request fails with
`TransactionCanceledException` and one cancellation reason per item, `None` for the others
(docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html, "Transaction conflict handling").
moto serialises every request (local_cloud/moto_fixes.py), so it never does either.

    with TransactionRefusals(share=0.3, partitions={f"SKU#{sku}"}) as refusals:
        ...                                   # 30 % of the transactions writing that SKU's level are refused
    refusals.refused, refusals.attempts       # what happened, per code and per transaction

The refusal happens inside moto, behind its HTTP API: the functions' own SDK clients parse it, retry it or not
exactly as they would on AWS. Only transactions that write an item of `partitions` whose sort key is `sort_key`
are touched, so the other tests of a shared local cloud see a plain moto.
"""

from __future__ import annotations

import functools
import random
import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any

REFUSAL_CODES = ("TransactionConflict", "ThrottlingError")
_REASONS = {
    "TransactionConflict": "Transaction is ongoing for the item",
    "ThrottlingError": "Throughput exceeds the current capacity for one or more global secondary indexes or the "
    "table's partition",
}


class TransactionRefusals:
    """Refuse `share` of the transactions that write a chosen item, alternating the reasons in `codes`."""

    def __init__(
        self,
        share: float,
        partitions: Iterable[str],
        sort_key: str = "LEVEL",
        codes: tuple[str, ...] = REFUSAL_CODES,
        seed: int = 14,
    ) -> None:
        if not 0 <= share <= 1:
            raise ValueError("share is a fraction of transactions, between 0 and 1")
        self.share = share
        self._partitions = set(partitions)
        self._sort_key = sort_key
        self._codes = codes
        self._random = random.Random(seed)  # noqa: S311  seeded, reproducible fault injection
        self._lock = threading.Lock()
        self._original: Any = None
        self.refused: Counter[str] = Counter()  # code -> transactions refused with it
        # What each transaction tried: its other items' keys (a reservation line names its order) -> attempts.
        self.attempts: Counter[str] = Counter()

    def __enter__(self) -> TransactionRefusals:
        import moto.dynamodb.models as models
        from moto.dynamodb.exceptions import TransactionCanceledException

        self._original = original = models.DynamoDBBackend.transact_write_items
        refusals = self

        @functools.wraps(original)
        def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> Any:
            keys = [_key(entry) for entry in transact_items]
            hot = [i for i, (pk, sk) in enumerate(keys) if pk in refusals._partitions and sk == refusals._sort_key]
            if not hot:
                return original(backend, transact_items)
            code = refusals._decide(keys)
            if code is None:
                return original(backend, transact_items)
            raise TransactionCanceledException(
                [
                    (code, _REASONS.get(code, code), None) if i in hot else (None, None, None)
                    for i in range(len(transact_items))
                ]
            )

        models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
        return self

    def __exit__(self, *_: object) -> None:
        import moto.dynamodb.models as models

        models.DynamoDBBackend.transact_write_items = self._original  # type: ignore[method-assign]

    def _decide(self, keys: list[tuple[str, str]]) -> str | None:
        other = ",".join(sorted(f"{pk}/{sk}" for pk, sk in keys if sk != self._sort_key)) or "level only"
        with self._lock:
            self.attempts[other] += 1
            if self._random.random() >= self.share:
                return None
            code = self._codes[sum(self.refused.values()) % len(self._codes)]
            self.refused[code] += 1
            return code

    @property
    def total_refused(self) -> int:
        return sum(self.refused.values())


def _key(entry: dict[str, Any]) -> tuple[str, str]:
    """(pk, sk) of a TransactItems entry, as strings ("" where absent)."""
    ((kind, operation),) = entry.items()
    item = operation.get("Item") if kind == "Put" else operation.get("Key")
    item = item or {}
    return (str((item.get("pk") or {}).get("S", "")), str((item.get("sk") or {}).get("S", "")))
