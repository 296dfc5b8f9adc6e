"""Stock for the merchant (the admin API): a SKU's level and ledger, adjustments and low-stock thresholds.

Reads come from the inventory table; every write is asked of the stock function, the only writer of stock
(storefront.inventory.stock_function). An adjustment is idempotent twice over: the HTTP request by its
Idempotency-Key (storefront.idempotency: the same key and body replay the first answer), and the movement by its
adjustment id, made from that key, which the stock function records in the level's own transaction, so a crash
between the stock function and the answer never adjusts twice.
"""

from __future__ import annotations

import hashlib
from typing import Any

from storefront.audit.models import ActorRef
from storefront.catalog.repository import CatalogRepository
from storefront.errors import InsufficientStock, NotFound
from storefront.idempotency import IdempotencyStore, StoredResponse, request_hash, require_key
from storefront.inventory.models import (
    AdjustmentInput,
    InventoryView,
    Ledger,
    LedgerEntry,
    StockLevel,
    StockOutcome,
    ThresholdInput,
)
from storefront.inventory.repository import InventoryRepository
from storefront.inventory.stock_function import StockFunctionClient
from storefront.pagination import CursorCodec


def adjustment_id(idempotency_key: str) -> str:
    """The stock function's id of the adjustment an Idempotency-Key asks for (the key may be any 255 characters)."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]


def ledger_entry(item: dict[str, Any]) -> LedgerEntry:
    """A ByLedger item as the merchant reads it: an adjustment, an order's sale (a committed reservation line), or
    units of an order given back (a return: a refund with restock, a cancellation after payment)."""
    at = item["ledger_at"].split("#", 1)[0]
    if item["sk"].startswith("ORDER#"):
        return LedgerEntry(delta=-item["quantity"], reason="sold", order_id=item["order_id"], at=at)
    if item["sk"].startswith("RETURN#"):
        return LedgerEntry(delta=item["quantity"], reason="returned", order_id=item["order_id"], at=at)
    return LedgerEntry(
        delta=item["delta"],
        reason=item["reason"],
        note=item.get("note"),
        actor=item.get("actor"),
        order_id=item.get("order_id"),
        at=at,
    )


class InventoryAdmin:
    def __init__(
        self,
        inventory: InventoryRepository,
        catalog: CatalogRepository,
        stock: StockFunctionClient,
        idempotency: IdempotencyStore,
        cursors: CursorCodec,
    ) -> None:
        self._inventory = inventory
        self._catalog = catalog
        self._stock = stock
        self._idempotency = idempotency
        self._cursors = cursors

    def view(self, sku: str, limit: int, cursor: str | None) -> InventoryView:
        level = self._level(sku)
        scope = f"admin/inventory/{sku}"
        items, resume = self._inventory.ledger(sku, limit, self._cursors.decode(cursor, scope) if cursor else None)
        return InventoryView(
            **level.model_dump(),
            ledger=Ledger(
                items=[ledger_entry(item) for item in items],
                next_cursor=self._cursors.encode(resume, scope) if resume else None,
            ),
        )

    def adjust(self, actor: Any, sku: str, request: AdjustmentInput, idempotency_key: str | None) -> StoredResponse:
        """201 with the level after the adjustment; the same key and body answer the same again, once adjusted."""
        key = require_key(idempotency_key)

        def adjust() -> StoredResponse:
            self._level(sku)  # 404 for a SKU the catalog does not have
            outcome = self._stock.adjust(
                sku, adjustment_id(key), request.delta, request.reason, request.note, ActorRef.of(actor)
            )
            if outcome.outcome == "rejected" and outcome.reason is not None:
                [short] = outcome.reason.lines
                raise InsufficientStock(
                    outcome.reason.detail,
                    [
                        {
                            "sku": sku,
                            "code": "insufficient_stock",
                            "available": short.available,
                            "message": f"{short.requested} taken away, {short.available} available",
                        }
                    ],
                )
            return StoredResponse(status=201, body=_level_of(outcome).model_dump_json())

        return self._idempotency.run(
            f"inventory-adjust:{sku}", key, request_hash(request.model_dump(mode="json")), adjust
        )

    def set_threshold(self, actor: Any, sku: str, request: ThresholdInput) -> StockLevel:
        self._level(sku)
        return _level_of(self._stock.set_threshold(sku, request.low_stock_threshold, ActorRef.of(actor)))

    def _level(self, sku: str) -> StockLevel:
        """The SKU's level: zero for a SKU of the catalog never stocked; NotFound for a SKU the catalog lacks."""
        level = self._inventory.level(sku)
        if level is not None:
            return level
        if sku not in self._catalog.sku_owners([sku]):
            raise NotFound(f"There is no SKU {sku!r} in the catalog.")
        return StockLevel(sku=sku, on_hand=0, reserved=0, available=0)


def _level_of(outcome: StockOutcome) -> StockLevel:
    if outcome.level is None:
        raise ValueError(f"the stock function answered {outcome.outcome} without a level")
    return outcome.level
