"""Payments: what a provider answers when asked for a payment, and the Stripe-shaped webhook events it sends."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

SUCCEEDED = "payment_intent.succeeded"
FAILED = "payment_intent.payment_failed"
HANDLED_EVENT_TYPES = frozenset({SUCCEEDED, FAILED})


class CreatedPayment(BaseModel):
    model_config = ConfigDict(frozen=True)
    payment_id: str
    client_secret: str | None
    status: str  # the provider's own status, e.g. Stripe's requires_payment_method
    redirect_url: str | None = None


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
    type: Literal["payment_intent.succeeded", "payment_intent.payment_failed"]
    data: _IntentData

    @property
    def intent(self) -> PaymentIntent:
        return self.data.object
