"""Payments: what a provider answers when asked for a payment, and the Stripe-shaped webhook events it sends."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

SUCCEEDED = "payment_intent.succeeded"
FAILED = "payment_intent.payment_failed"
PROCESSING = "payment_intent.processing"
CANCELED = "payment_intent.canceled"
INTENT_EVENT_TYPES = frozenset({SUCCEEDED, FAILED, PROCESSING, CANCELED})
# A refund's status changes (Stripe also sends charge.refunded; the refund events name our refund, so they suffice).
REFUND_EVENT_TYPES = frozenset({"refund.created", "refund.updated", "refund.failed"})
HANDLED_EVENT_TYPES = INTENT_EVENT_TYPES | REFUND_EVENT_TYPES


class CreatedPayment(BaseModel):
    model_config = ConfigDict(frozen=True)
    payment_id: str
    client_secret: str | None
    status: str  # the provider's own status, e.g. Stripe's requires_payment_method
    redirect_url: str | None = None


class ProviderPayment(BaseModel):
    """A payment as the provider reports it now (Stripe's PaymentIntent status: requires_payment_method,
    processing, succeeded, canceled, ...)."""

    model_config = ConfigDict(frozen=True)
    payment_id: str
    status: str
    amount: int
    currency: str  # upper case, as Money has it


class ProviderRefund(BaseModel):
    model_config = ConfigDict(frozen=True)
    refund_id: str
    status: str  # pending | succeeded | failed | canceled | requires_action
    amount: int


class PaymentError(BaseModel):
    model_config = ConfigDict(extra="ignore")
    code: str | None = None
    message: str | None = None


class PaymentIntent(BaseModel):
    """The part of Stripe's PaymentIntent object the webhook relies on; Stripe sends many more fields."""

    model_config = ConfigDict(extra="ignore")
    id: Annotated[str, Field(min_length=1, max_length=255)]
    amount: Annotated[int, Field(strict=True, ge=0)]
    currency: Annotated[str, Field(pattern=r"^[A-Za-z]{3}$")]  # Stripe writes it lower case
    status: str
    metadata: dict[str, str] = {}
    last_payment_error: PaymentError | None = None

    @property
    def order_id(self) -> str | None:
        return self.metadata.get("order_id")


class EventEnvelope(BaseModel):
    """Every Stripe event: its id (the deduplication key) and type. `data.object` depends on the type."""

    model_config = ConfigDict(extra="ignore")
    id: Annotated[str, Field(min_length=1, max_length=255)]
    type: Annotated[str, Field(min_length=1, max_length=255)]


class _IntentData(BaseModel):
    model_config = ConfigDict(extra="ignore")
    object: PaymentIntent


class PaymentIntentEvent(EventEnvelope):
    type: Literal[
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.processing",
        "payment_intent.canceled",
    ]
    data: _IntentData

    @property
    def intent(self) -> PaymentIntent:
        return self.data.object


class RefundObject(BaseModel):
    """The part of Stripe's Refund object we rely on: our refund's id travels in its metadata."""

    model_config = ConfigDict(extra="ignore")
    id: Annotated[str, Field(min_length=1, max_length=255)]
    status: str
    amount: Annotated[int, Field(strict=True, ge=0)]
    payment_intent: str | None = None
    metadata: dict[str, str] = {}


class _RefundData(BaseModel):
    model_config = ConfigDict(extra="ignore")
    object: RefundObject


class RefundEvent(EventEnvelope):
    type: Literal["refund.created", "refund.updated", "refund.failed"]
    data: _RefundData

    @property
    def refund(self) -> RefundObject:
        return self.data.object
