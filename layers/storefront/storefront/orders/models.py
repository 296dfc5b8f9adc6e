"""Orders: the shapes the API returns (docs/api.md, "Checkout and orders") and the status rules.

Status only moves forward. ALLOWED_FROM says, for each status, the statuses an order may enter it from;
every write checks it with a DynamoDB condition, so a late or duplicated event can never move an order back.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from storefront.cart.models import CartLine, CartShipping
from storefront.cart.pricing import Totals
from storefront.shop import CountryCode

EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]{1,189}\.[A-Za-z]{2,24}$"


def email_key(email: str) -> str:
    """How orders are found by email (the orders table's ByEmail index) and counted per email: trimmed, lower case."""
    return email.strip().lower()


class OrderStatus(StrEnum):
    PENDING = "pending"
    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    FULFILLING = "fulfilling"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    REJECTED = "rejected"
    PAYMENT_FAILED = "payment_failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


S = OrderStatus
ALLOWED_FROM: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.AWAITING_PAYMENT: frozenset({S.PENDING}),
    S.REJECTED: frozenset({S.PENDING}),
    S.PAID: frozenset({S.AWAITING_PAYMENT}),
    S.PAYMENT_FAILED: frozenset({S.AWAITING_PAYMENT}),
    S.EXPIRED: frozenset({S.AWAITING_PAYMENT}),
    S.CANCELLED: frozenset({S.PENDING, S.AWAITING_PAYMENT, S.PAID}),
    S.FULFILLING: frozenset({S.PAID}),
    S.SHIPPED: frozenset({S.FULFILLING}),
    S.DELIVERED: frozenset({S.SHIPPED}),
}


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: Annotated[str, Field(min_length=1, max_length=100)]
    line1: Annotated[str, Field(min_length=1, max_length=200)]
    line2: Annotated[str | None, Field(max_length=200)] = None
    city: Annotated[str, Field(min_length=1, max_length=100)]
    postal_code: Annotated[str, Field(min_length=2, max_length=12, pattern=r"^[A-Za-z0-9][A-Za-z0-9 -]*$")]
    country: CountryCode


class CheckoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    cart_id: Annotated[str, Field(min_length=1, max_length=64)]
    email: Annotated[str, Field(max_length=254, pattern=EMAIL_PATTERN)]
    shipping_address: Address


class Payment(BaseModel):
    provider: str
    status: str  # pending | requires_action | succeeded | failed
    payment_id: str
    client_secret: str | None = None
    redirect_url: str | None = None


class Fulfilment(BaseModel):
    status: str
    carrier: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None


class ReasonLine(BaseModel):
    sku: str
    requested: int
    available: int


class Reason(BaseModel):
    code: str
    detail: str
    lines: list[ReasonLine] | None = None


class HistoryEntry(BaseModel):
    status: OrderStatus
    at: datetime


class Order(BaseModel):
    id: str
    status: OrderStatus
    cart_id: str
    email: str
    lines: list[CartLine]
    totals: Totals
    shipping_address: Address
    shipping: CartShipping
    payment: Payment | None = None
    fulfilment: Fulfilment | None = None
    reason: Reason | None = None
    history: list[HistoryEntry]
    created_at: datetime
    updated_at: datetime


class StoredOrder(Order):
    """The order as stored: what the API shows, plus the workflow's private bookkeeping."""

    task_token: str | None = None  # Step Functions' token for WaitForPayment; never shown to clients
    shipment_id: str | None = None  # the carrier's id of the order's shipment; tracking updates must name it
    tracking_at: datetime | None = None  # when the newest tracking update applied happened (the carrier's time)
    email_key: str | None = None  # the ByEmail index's key (email_key(email)); erasure removes it

    def public(self) -> Order:
        return Order.model_validate(self.model_dump(include=set(Order.model_fields)))
