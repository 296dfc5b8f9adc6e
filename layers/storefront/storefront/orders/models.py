"""Orders: the shapes the API returns (docs/api.md, "Checkout and orders") and the status rules.

Status only moves forward. ALLOWED_FROM says, for each status, the statuses an order may enter it from;
every write checks it with a DynamoDB condition, so a late or duplicated event can never move an order back.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from storefront.cart.models import CartLine, CartShipping
from storefront.cart.pricing import Totals
from storefront.catalog.models import Sku
from storefront.limits.models import ClientHold
from storefront.money import Money
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
    S.CANCELLED: frozenset({S.PENDING, S.AWAITING_PAYMENT, S.PAID, S.FULFILLING}),
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


# Orders that ended without being paid: a payment that succeeds for one of them is refunded in full.
ENDED_UNPAID = frozenset({S.REJECTED, S.PAYMENT_FAILED, S.EXPIRED, S.CANCELLED})
# Orders that were paid and whose units left with them (committed): the workflow's work is done, and a refund may
# return units to on_hand (restock). A cancelled order is not among them: its cancellation returns every unit.
# Money, though, may be refunded from any order that captured some (captured_amount), whatever its status.
PAID_ON = frozenset({S.PAID, S.FULFILLING, S.SHIPPED, S.DELIVERED})


class PaymentStatus(StrEnum):
    PENDING = "pending"  # waiting for the shopper
    PROCESSING = "processing"  # a delayed method (bank debit): the outcome comes later
    DECLINED = "declined"  # an attempt failed; the shopper may try again until MaxPaymentAttempts
    FAILED = "failed"  # MaxPaymentAttempts declines: the workflow cancels the payment
    SUCCEEDED = "succeeded"
    CANCELED = "canceled"  # cancelled at the provider: it can never be paid


# What each payment status may follow: a payment that succeeded never becomes anything else, whatever arrives late.
PAYMENT_MOVES: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    PaymentStatus.PROCESSING: frozenset({PaymentStatus.PENDING, PaymentStatus.DECLINED}),
    PaymentStatus.DECLINED: frozenset({PaymentStatus.PENDING, PaymentStatus.DECLINED, PaymentStatus.PROCESSING}),
    PaymentStatus.FAILED: frozenset({PaymentStatus.PENDING, PaymentStatus.DECLINED, PaymentStatus.PROCESSING}),
    PaymentStatus.SUCCEEDED: frozenset(
        {
            PaymentStatus.PENDING,
            PaymentStatus.DECLINED,
            PaymentStatus.PROCESSING,
            PaymentStatus.FAILED,
            PaymentStatus.CANCELED,
        }
    ),
    PaymentStatus.CANCELED: frozenset(
        {PaymentStatus.PENDING, PaymentStatus.DECLINED, PaymentStatus.PROCESSING, PaymentStatus.FAILED}
    ),
}


class PaymentError(BaseModel):
    code: str
    message: str


class Payment(BaseModel):
    provider: str
    status: PaymentStatus
    payment_id: str
    client_secret: str | None = None
    redirect_url: str | None = None
    attempts: int = 0  # declined attempts so far
    last_error: PaymentError | None = None


class RefundLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    sku: Sku
    quantity: Annotated[int, Field(ge=1, le=99, strict=True)]


class Refund(BaseModel):
    id: str
    amount: Money
    status: Literal["pending", "succeeded", "failed"]
    lines: list[RefundLine] = []
    restock: bool = False
    reason: str
    created_at: datetime


class StoredRefund(Refund):
    provider_refund_id: str | None = None  # the provider's id, once it accepted the refund
    restocked: bool = False  # the lines' units are back on hand (stock function, ledger reason "returned")

    @property
    def to_restock(self) -> bool:
        """Its units are still to come back on hand. A refund that failed before they came back returns none (the
        goods were not taken back); one that fails after they came back leaves them there (see units_returned)."""
        return self.restock and bool(self.lines) and not self.restocked and self.status != "failed"

    @property
    def open(self) -> bool:
        """Work is left: the provider has not settled it, or its units are not back yet."""
        return self.status == "pending" or self.to_restock


class Cancellation(BaseModel):
    """Recorded with the move to cancelled: what the cancellation still has to do is derived from it."""

    reason: str
    at: datetime
    actor: str | None = None
    refund_id: str | None = None  # the refund of what is left of the payment, for an order cancelled after payment
    # The units the cancellation put back on hand (return id = refund_id), once it has: those no refund returned.
    returned: list[RefundLine] | None = None

    @property
    def after_payment(self) -> bool:
        return self.refund_id is not None


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
    refunds: list[Refund] = []
    refunded: Money | None = None  # what refunds took back (pending ones included); 0 when none
    created_at: datetime
    updated_at: datetime


class StoredOrder(Order):
    """The order as stored: what the API shows, plus the workflow's private bookkeeping."""

    refunds: list[StoredRefund] = []  # type: ignore[assignment]  # with their private fields
    task_token: str | None = None  # Step Functions' token for WaitForPayment; never shown to clients
    shipment_id: str | None = None  # the carrier's id of the order's shipment; tracking updates must name it
    tracking_at: datetime | None = None  # when the newest tracking update applied happened (the carrier's time)
    captured_amount: int | None = None  # minor units the provider captured (the payment succeeded)
    refunded_amount: int = 0  # minor units refunded or being refunded: never more than captured_amount
    cancellation: Cancellation | None = None
    repair: dict[str, str] | None = None  # a workflow step that failed for good: {"step", "error", "at"}
    # The reconciler's sparse index (ByReconcileDue): an order is due for a look at reconcile_at (see reconciler).
    reconcile_shard: str | None = None
    reconcile_at: str | None = None
    execution_name: str | None = None  # the workflow execution now in charge, when not the original (order id)
    decline_events: set[str] | None = None  # ids of the decline events counted in payment.attempts
    email_key: str | None = None  # the ByEmail index's key (email_key(email)); erasure removes it
    client_hold: ClientHold | None = None  # its places in its clients' limits (storefront.limits), while it holds stock

    @property
    def currency(self) -> str:
        return self.totals.total.currency

    def units_ordered(self) -> Counter[str]:
        ordered: Counter[str] = Counter()
        for line in self.lines:
            ordered[line.sku] += line.quantity
        return ordered

    def units_refunded(self) -> Counter[str]:
        """Units whose money is refunded or on its way back: the lines of every refund that did not fail. An
        operator's refund by lines may name at most the units ordered minus these."""
        refunded: Counter[str] = Counter()
        for refund in self.refunds:
            if refund.status != "failed":
                for line in refund.lines:
                    refunded[line.sku] += line.quantity
        return refunded

    def units_returned(self) -> Counter[str]:
        """Units back on hand, or on their way there: the lines of refunds that restocked them or still will
        (whatever became of the refund's money afterwards), and the cancellation's return. A restock may name at
        most the units ordered minus these; a cancellation returns exactly the rest."""
        returned: Counter[str] = Counter()
        for refund in self.refunds:
            if refund.restocked or refund.to_restock:
                for line in refund.lines:
                    returned[line.sku] += line.quantity
        for line in (self.cancellation.returned or []) if self.cancellation else []:
            returned[line.sku] += line.quantity
        return returned

    @property
    def money_work_left(self) -> bool:
        """A refund not settled or not restocked, or a cancellation after payment whose refund (of what is left, if
        anything is) or return is not done: the payment tasks' `finish` has work (the reconciler hands it over)."""
        cancellation = self.cancellation
        if cancellation is None or cancellation.refund_id is None:
            cancellation_owes = False
        else:
            refund_missing = all(refund.id != cancellation.refund_id for refund in self.refunds)
            cancellation_owes = cancellation.returned is None or (
                refund_missing and (self.captured_amount or 0) > self.refunded_amount
            )
        return cancellation_owes or any(refund.open for refund in self.refunds)

    def public(self) -> Order:
        """What the API shows: an allow-list (the Order's fields), so new bookkeeping never leaks by default."""
        values = self.model_dump(include=set(Order.model_fields) - {"refunded"})
        values["refunded"] = Money(amount=self.refunded_amount, currency=self.currency)
        return Order.model_validate(values)
