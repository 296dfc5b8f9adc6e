"""Asking the stock function (the only writer of stock) for a movement from another function: a synchronous
Lambda Invoke with the same event the order workflow sends (storefront.inventory.models). Each movement is
idempotent (per order, per return id, or per adjustment id), so a caller may repeat one after any failure."""

from __future__ import annotations

import json
from typing import Any

from storefront.audit.models import ActorRef
from storefront.errors import Busy
from storefront.inventory.models import StockOutcome
from storefront.orders.models import RefundLine


class StockFunctionFailed(Exception):
    """The stock function raised (its error type and message are in the text); the movement may be repeated."""


class StockFunctionClient:
    def __init__(self, client: Any, function_name: str) -> None:
        self._client = client
        self._function = function_name

    def return_units(self, return_id: str, order_id: str, lines: list[RefundLine]) -> None:
        """Committed units of the order come back on hand (ledger reason `returned`), once per return id."""
        self.move(
            {
                "action": "return",
                "return_id": return_id,
                "order_id": order_id,
                "lines": [line.model_dump() for line in lines],
            }
        )

    def adjust(
        self, sku: str, adjustment_id: str, delta: int, reason: str, note: str | None, actor: ActorRef
    ) -> StockOutcome:
        return StockOutcome.model_validate(
            self.move(
                {
                    "action": "adjust",
                    "sku": sku,
                    "adjustment_id": adjustment_id,
                    "delta": delta,
                    "reason": reason,
                    **({"note": note} if note is not None else {}),
                    "actor": actor.model_dump(exclude_none=True),
                }
            )
        )

    def set_threshold(self, sku: str, threshold: int | None, actor: ActorRef) -> StockOutcome:
        return StockOutcome.model_validate(
            self.move(
                {
                    "action": "set_threshold",
                    "sku": sku,
                    "low_stock_threshold": threshold,
                    "actor": actor.model_dump(exclude_none=True),
                }
            )
        )

    def move(self, event: dict[str, Any]) -> dict[str, Any]:
        response = self._client.invoke(FunctionName=self._function, Payload=json.dumps(event).encode())
        payload: dict[str, Any] = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            if payload.get("errorType") == "StockContention":  # busy stock: the caller may simply retry
                raise Busy(payload.get("errorMessage") or "Stock is busy; retry shortly.")
            raise StockFunctionFailed(f"{payload.get('errorType')}: {payload.get('errorMessage')}")
        return payload
