"""Customer emails: which integration event means which email, what the email is made from, what happened.

The email for an order event is made from the order as it is in the orders table, never from the event: events
carry ids and figures, not the shopper's email address or street address (docs/events.md).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from storefront.cart.models import CartLine, CartShipping
from storefront.cart.pricing import Totals
from storefront.money import Money
from storefront.orders.models import Address, Fulfilment, OrderStatus


class EmailKind(StrEnum):
    """One email a shopper can get; each has templates/<language>/<kind>.txt and .html."""

    ORDER_CONFIRMED = "order_confirmed"
    PAYMENT_DECLINED = "payment_declined"
    PAYMENT_FAILED = "payment_failed"
    ORDER_EXPIRED = "order_expired"
    ORDER_SHIPPED = "order_shipped"
    ORDER_DELIVERED = "order_delivered"
    ORDER_REFUNDED = "order_refunded"
    ORDER_CANCELLED = "order_cancelled"


# The integration events the notifications rule subscribes to (template.yaml, NotificationsRule, lists exactly
# these: tests/integration/test_template.py checks), and the email each one sends.
EMAIL_FOR_EVENT: dict[str, EmailKind] = {
    "order.paid": EmailKind.ORDER_CONFIRMED,
    "order.payment_declined": EmailKind.PAYMENT_DECLINED,  # a decline the shopper may retry (docs/api.md)
    "order.payment_failed": EmailKind.PAYMENT_FAILED,
    "order.expired": EmailKind.ORDER_EXPIRED,
    "order.shipped": EmailKind.ORDER_SHIPPED,
    "order.delivered": EmailKind.ORDER_DELIVERED,
    "order.refunded": EmailKind.ORDER_REFUNDED,
    "order.cancelled": EmailKind.ORDER_CANCELLED,
}

OrderId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]


# ---------------------------------------------------------------- what arrives on the queue


class OrderRef(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: OrderId


class OrderEventDetail(BaseModel):
    """An `order.*` integration event's detail (docs/events.md): only the ids are read."""

    model_config = ConfigDict(extra="ignore")
    event_id: Annotated[str, Field(min_length=1, max_length=512)]
    type: str
    occurred_at: datetime
    order: OrderRef


class BouncedRecipient(BaseModel):
    model_config = ConfigDict(extra="ignore")
    emailAddress: str


class Bounce(BaseModel):
    model_config = ConfigDict(extra="ignore")
    bounceType: str
    bouncedRecipients: list[BouncedRecipient]


class Complaint(BaseModel):
    model_config = ConfigDict(extra="ignore")
    complainedRecipients: list[BouncedRecipient]


class SesFeedback(BaseModel):
    """SES's "Email Bounced" / "Email Complaint Received" event detail (event publishing to EventBridge)."""

    model_config = ConfigDict(extra="ignore")
    eventType: str
    bounce: Bounce | None = None
    complaint: Complaint | None = None

    def addresses_to_suppress(self) -> list[str]:
        """Hard bounces and complaints: the addresses no mail may go to again. A soft bounce is not one."""
        if self.bounce is not None and self.bounce.bounceType == "Permanent":
            return [r.emailAddress for r in self.bounce.bouncedRecipients]
        if self.complaint is not None:
            return [r.emailAddress for r in self.complaint.complainedRecipients]
        return []


# ---------------------------------------------------------------- the order, as an email needs it


class PaymentError(BaseModel):
    model_config = ConfigDict(extra="ignore")
    code: str
    message: str


class MailPayment(BaseModel):
    model_config = ConfigDict(extra="ignore")
    status: str
    attempts: int | None = None  # declines so far (docs/api.md, "The payment lifecycle")
    last_error: PaymentError | None = None


class MailRefund(BaseModel):
    model_config = ConfigDict(extra="ignore")
    amount: Money
    status: str  # pending | succeeded | failed
    created_at: datetime


class MailableOrder(BaseModel):
    """The order's fields an email shows (docs/api.md, "Checkout and orders" and "The payment lifecycle")."""

    model_config = ConfigDict(extra="ignore")
    id: OrderId
    status: OrderStatus
    email: str
    lines: list[CartLine]
    totals: Totals
    shipping_address: Address
    shipping: CartShipping
    payment: MailPayment | None = None
    fulfilment: Fulfilment | None = None
    refunds: list[MailRefund] = []
    created_at: datetime

    @property
    def refunded(self) -> Money | None:
        """What the provider has refunded so far (the refunds that succeeded); None before the first one. Computed
        from the refunds themselves, not from the order's bookkeeping of amounts reserved for pending ones."""
        done = [refund.amount for refund in self.refunds if refund.status == "succeeded"]
        return sum(done[1:], done[0]) if done else None


# The order's attributes read for an email (a projection: the task token, the payment's client secret and the
# rest stay in the table).
MAILABLE_ATTRIBUTES = tuple(MailableOrder.model_fields)


# ---------------------------------------------------------------- what leaves


class Email(BaseModel):
    model_config = ConfigDict(frozen=True)
    to: str
    subject: str
    text: str
    html: str
    tags: dict[str, str]  # SES message tags: the kind and the order number, seen again in bounce events


class Outcome(StrEnum):
    """What became of one event; everything but SENT is final without a mail."""

    SENT = "sent"
    DUPLICATE = "duplicate"  # another delivery of the event has (or is) sending it
    SUPPRESSED = "suppressed"  # the address bounced or complained before
    REFUSED = "refused"  # the order's address is not one a mail can safely go to
    REJECTED = "rejected"  # SES refused this message for good
    UNKNOWN_ORDER = "unknown_order"
    NOT_AN_EMAIL = "not_an_email"  # an event type with no email (the rule does not send those)
