"""Asking the stock function (the only writer of stock) for a movement from another function: a synchronous
Lambda Invoke with the same event the order workflow sends (storefront.inventory.models). Each movement is
idempotent (per order, or per return id), so a caller may repeat one after any failure."""

from __future__ import annotations

import json
from typing import Any

from storefront.orders.models import RefundLine


class StockFunctionFailed(Exception):
    """The stock function raised (its error type and message are in the text); the movement may be repeated."""


class StockFunctionClient:
    def __init__(self, client: Any, function_name: str) -> None:
        self._client = client
        self._function = function_name

    def return_units(self, return_id: str, order_id: str, lines: list[RefundLine]) -> None:
        """Committed units of the order come back on hand (ledger reason `returned`), once per return id."""
        self.move({"action": "return", "return_id": return_id, "order_id": order_id,
                   "lines": [line.model_dump() for line in lines]})

    def move(self, event: dict[str, Any]) -> dict[str, Any]:
        response = self._client.invoke(FunctionName=self._function, Payload=json.dumps(event).encode())
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            raise StockFunctionFailed(f"{payload.get('errorType')}: {payload.get('errorMessage')}")
        return payload
