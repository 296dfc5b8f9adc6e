"""Inventory shapes: the stock function's event contract, its outcomes, what the inventory table stores, and the
admin API's view of a SKU's stock.

The stock function is invoked by the order workflow (Step Functions) with one of
  {"action": "reserve" | "commit" | "release", "order_id": "<32 chars>", "lines": [{"sku", "quantity"}, ...]}
and by refunds, cancellations and the reconciler with those, or with
  {"action": "return", "return_id": "<refund or cancellation id>", "order_id": ..., "lines": [...]}
(committed units come back on hand, once per return id); and by the admin function (Lambda Invoke) with
  {"action": "adjust", "sku", "adjustment_id", "delta", "reason", "note"?, "actor": {"sub", "username", "email"?}}
  {"action": "set_threshold", "sku", "low_stock_threshold": <int or null>, "actor": {...}}
and answers {"outcome": ..., "level"?: {...}}; see storefront.inventory.service for the meaning of each outcome.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from storefront.audit.models import ActorRef
from storefront.catalog.models import Sku

ORDER_ID_PATTERN = r"^[A-Za-z0-9_-]{32}$"  # 24 random bytes, base64url
MAX_LINES = 50  # a cart holds at most 50 lines: two transaction items each stays within DynamoDB's 100
MAX_QUANTITY = 99
RETURN_ID_PATTERN = r"^[A-Za-z0-9_-]{1,80}$"  # a refund's id (rf_..., late-pi_...) or a cancellation's (cancel-<order>)
MAX_ADJUSTMENT = 1_000_000  # units one adjustment may add or remove
ADJUSTMENT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

Movement = Literal["reserve", "commit", "release"]
LineState = Literal["reserved", "committed", "released"]


class InvalidStockRequest(ValueError):
    """The event is not a valid stock request (or contradicts what is stored for its order): never retry it."""


# ---------------------------------------------------------------- the event contract


class StockLine(BaseModel):
    # Lines usually come straight from the order, which carries more fields (title, price): ignore them.
    model_config = ConfigDict(frozen=True, extra="ignore")
    sku: Sku
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY, strict=True)]


class _OrderMovement(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    order_id: Annotated[str, Field(pattern=ORDER_ID_PATTERN)]
    lines: Annotated[list[StockLine], Field(min_length=1, max_length=MAX_LINES)]

    def quantities(self) -> dict[str, int]:
        """Units per SKU, duplicate lines merged, in SKU order (one transaction item per SKU and table key)."""
        totals: Counter[str] = Counter()
        for line in self.lines:
            totals[line.sku] += line.quantity
        return dict(sorted(totals.items()))


class ReserveRequest(_OrderMovement):
    action: Literal["reserve"]


class CommitRequest(_OrderMovement):
    action: Literal["commit"]


class ReleaseRequest(_OrderMovement):
    action: Literal["release"]


class ReturnRequest(_OrderMovement):
    """Units of a paid order come back (a refund with restock, a cancellation): ledger reason `returned`."""

    action: Literal["return"]
    return_id: Annotated[str, Field(pattern=RETURN_ID_PATTERN)]


# Why an operator changes stock on hand: the admin API's reasons. Sales and returns of orders are the ledger's other
# reasons ("sold", "returned" with the order's id).
AdjustmentReason = Literal["received", "correction", "damaged", "lost", "returned"]
Delta = Annotated[int, Field(strict=True, ge=-MAX_ADJUSTMENT, le=MAX_ADJUSTMENT)]
Note = Annotated[str, Field(min_length=1, max_length=500)]
Threshold = Annotated[int, Field(strict=True, ge=0, le=MAX_ADJUSTMENT)]


class AdjustmentInput(BaseModel):
    """POST /admin/inventory/{sku}/adjustments: units on hand added (a delivery) or removed (damage, a count)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    delta: Delta
    reason: AdjustmentReason
    note: Note | None = None

    @field_validator("delta")
    @classmethod
    def _changes_stock(cls, delta: int) -> int:
        if delta == 0:
            raise ValueError("an adjustment must change the stock: not 0")
        return delta


class ThresholdInput(BaseModel):
    """PATCH /admin/inventory/{sku}: the level at or below which `stock.low` is published (null: never)."""

    model_config = ConfigDict(extra="forbid")
    low_stock_threshold: Threshold | None


class AdjustRequest(AdjustmentInput):
    """An operator's adjustment, once per adjustment id (the admin API's Idempotency-Key makes it)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)
    action: Literal["adjust"]
    sku: Sku
    adjustment_id: Annotated[str, Field(pattern=ADJUSTMENT_ID_PATTERN)]
    actor: ActorRef


class ThresholdRequest(ThresholdInput):
    model_config = ConfigDict(frozen=True, extra="forbid")
    action: Literal["set_threshold"]
    sku: Sku
    actor: ActorRef


AnyStockRequest = ReserveRequest | CommitRequest | ReleaseRequest | ReturnRequest | AdjustRequest | ThresholdRequest
StockRequest = Annotated[AnyStockRequest, Field(discriminator="action")]
_STOCK_REQUEST: TypeAdapter[StockRequest] = TypeAdapter(StockRequest)


def parse_stock_request(event: Any) -> AnyStockRequest:
    try:
        return _STOCK_REQUEST.validate_python(event)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'event'}: {e['msg']}" for e in error.errors())
        raise InvalidStockRequest(problems) from None


# ---------------------------------------------------------------- outcomes


class ShortLine(BaseModel):
    sku: str
    requested: int
    available: int


class Rejection(BaseModel):
    """The same shape as an order's `reason`, so the workflow can store it as it is."""

    code: Literal["insufficient_stock"] = "insufficient_stock"
    detail: str
    lines: list[ShortLine]


class StockOutcome(BaseModel):
    outcome: Literal[
        "reserved", "rejected", "committed", "released", "nothing_to_release", "returned", "adjusted", "threshold_set"
    ]
    reason: Rejection | None = None
    level: StockLevel | None = None  # after an adjustment or a new threshold

    def to_payload(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


# ---------------------------------------------------------------- what the table stores


class StockLevel(BaseModel):
    sku: str
    on_hand: int
    reserved: int
    available: int
    low_stock_threshold: int | None = None  # None: nobody asked to hear when it runs low


class HistoryEntry(BaseModel):
    movement: Movement
    delta_available: int
    delta_reserved: int
    delta_on_hand: int
    at: str


class ReservationLine(BaseModel):
    """One SKU of one order; its history is that order's ledger for the SKU."""

    order_id: str
    sku: str
    quantity: int
    state: LineState
    history: list[HistoryEntry]
    returned: int = 0  # units of a committed line back on hand (return movements; the RETURN# items are their ledger)


class ReturnEntry(BaseModel):
    """One SKU of one return: pk=SKU#<sku> sk=RETURN#<return_id>."""

    return_id: str
    order_id: str
    sku: str
    quantity: int
    reason: Literal["returned"] = "returned"
    at: str


# Per unit: how each movement changes (available, reserved, on_hand), the state it requires and the one it leaves.
UNIT_DELTAS: dict[Movement, tuple[int, int, int]] = {
    "reserve": (-1, +1, 0),
    "commit": (0, -1, -1),
    "release": (+1, -1, 0),
}
STATE_AFTER: dict[Movement, LineState] = {"reserve": "reserved", "commit": "committed", "release": "released"}
# The movements a line in each state has been through, in order.
HISTORY_OF: dict[LineState, list[Movement]] = {
    "reserved": ["reserve"],
    "committed": ["reserve", "commit"],
    "released": ["reserve", "release"],
}


def history_entry(movement: Movement, quantity: int, at: str) -> HistoryEntry:
    available, reserved, on_hand = (quantity * unit for unit in UNIT_DELTAS[movement])
    return HistoryEntry(
        movement=movement, delta_available=available, delta_reserved=reserved, delta_on_hand=on_hand, at=at
    )


# ---------------------------------------------------------------- the admin API's view of a SKU


class LedgerEntry(BaseModel):
    """One movement of a SKU's units on hand."""

    delta: int = Field(description="Units on hand added (+) or taken away (-)")
    reason: str = Field(
        description="An operator's adjustment: received, correction, damaged, lost or returned; an "
        "order's: sold (paid, the units left) or returned (given back, with order_id)"
    )
    order_id: str | None = None
    actor: ActorRef | None = Field(default=None, description="Who made an adjustment")
    note: str | None = None
    at: datetime


class Ledger(BaseModel):
    items: list[LedgerEntry]
    next_cursor: str | None


class InventoryView(StockLevel):
    """GET /admin/inventory/{sku}: the level now, and the ledger newest first."""

    ledger: Ledger
