"""The payment provider's webhooks: verified, deduplicated, and turned into the order workflow's answer.

This runs in the public webhook function, which holds the webhook secret but not the provider's API key, and
does not import the provider's SDK. What needs the provider (a late payment's refund) is recorded on the order,
reserved there by a conditional write, and handed to the payment tasks function (`finish_later`); the reconciler
finishes it if that hand-over is lost.

    payment_intent.succeeded       paid: the workflow's WaitForPayment is told (or finds it when it registers);
                                   an order that ended unpaid gets a full refund, reason late_payment; a payment
                                   of another amount or currency is refunded in full too (amount_mismatch), and
                                   the workflow told the payment failed
    payment_intent.payment_failed  a decline: the order keeps awaiting payment (attempts, last_error) until
                                   MaxPaymentAttempts, then the workflow is told PaymentFailed
    payment_intent.processing      a delayed method; payment_intent.canceled: recorded
    refund.created/updated/failed  the refund's status, from the provider
Every payment write is conditional (PAYMENT_MOVES), so a late or duplicated failure never undoes a success.
Only the provider the stack is configured for is served (PaymentProvider: stripe on AWS, fake locally); any other
path is 404, so one signed event is never processed once per path.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from storefront.observability import count
from storefront.orders.models import ENDED_UNPAID, OrderStatus, PaymentError, PaymentStatus, StoredOrder
from storefront.orders.repository import OrderRepository, TransitionRefused
from storefront.payments.models import (
    CANCELED,
    FAILED,
    HANDLED_EVENT_TYPES,
    INTENT_EVENT_TYPES,
    PROCESSING,
    SUCCEEDED,
    EventEnvelope,
    PaymentIntent,
    PaymentIntentEvent,
    ProviderPayment,
    RefundEvent,
)
from storefront.payments.records import find_refund, settle_refund
from storefront.payments.service import (
    PAYMENT_FAILED_ERROR,
    Workflow,
    matches_order,
    record_late_payment,
    record_mismatched_payment,
)
from storefront.webhooks import UnknownWebhookSender, parse_event, verify_signature

log = logging.getLogger("storefront.payments")

DECLINE_WRITE_ATTEMPTS = 5


class Events(Protocol):
    def seen(self, provider: str, event_id: str) -> bool: ...
    def record(self, provider: str, event_id: str, event_type: str, at: datetime) -> bool: ...


class PaymentWebhooks:
    def __init__(
        self,
        orders: OrderRepository,
        events: Events,
        workflow: Workflow,
        webhook_secrets: Callable[[], list[str]],
        *,
        provider: str,
        max_attempts: int,
        finish_later: Callable[[str], None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._provider = provider  # the one this stack is configured for (stripe and fake both sign the Stripe way)
        self._orders = orders
        self._events = events
        self._workflow = workflow
        self._webhook_secrets = webhook_secrets  # read per webhook (storefront.secrets caches it)
        self._max_attempts = max_attempts
        self._finish_later = finish_later  # the payment tasks function settles the order's refunds
        self._clock = clock

    def receive(self, provider: str, payload: bytes, signature_header: str | None) -> None:
        """Verify, deduplicate and apply one provider event. Raising means "not processed": the provider retries."""
        if provider != self._provider:
            raise UnknownWebhookSender(f"No payment provider named {provider!r}.")
        verify_signature(
            payload,
            signature_header,
            self._webhook_secrets(),
            header_name="Stripe-Signature",
            sender="payment provider",
        )
        envelope = parse_event(payload, EventEnvelope, "a payment event")
        if envelope.type not in HANDLED_EVENT_TYPES:
            return  # acknowledged, so the provider stops sending it; nothing of ours depends on it
        if self._events.seen(provider, envelope.id):
            log.info("event %s already processed", envelope.id)
            return
        if envelope.type in INTENT_EVENT_TYPES:
            event = parse_event(payload, PaymentIntentEvent, "a payment event")
            handle = {
                SUCCEEDED: self._succeeded,
                FAILED: self._failed,
                PROCESSING: self._processing,
                CANCELED: self._canceled,
            }[event.type]
            handle(event)
        else:
            self._refund_changed(parse_event(payload, RefundEvent, "a refund event"))
        # Recorded only now that the effects are durable: a crash before this line lets the provider's
        # retry through, and every effect above is safe to apply twice.
        self._events.record(provider, envelope.id, envelope.type, self._clock())

    # ---------------------------------------------------------------- payment intents

    def _succeeded(self, event: PaymentIntentEvent) -> None:
        order = self._order_for(event)
        if order is None:
            return
        intent = event.intent
        if order.status in ENDED_UNPAID:
            self._late_payment(order, intent)
            return
        if not matches_order(order, _payment(intent)):
            self._mismatched_payment(order, intent)
            return
        if order.status != OrderStatus.AWAITING_PAYMENT:
            return  # paid already, or on its way (fulfilling, ...): nothing left to decide
        try:
            updated = self._orders.record_payment(
                order.id,
                PaymentStatus.SUCCEEDED,
                statuses={OrderStatus.AWAITING_PAYMENT},
                captured_amount=intent.amount,
            )
        except TransitionRefused as refused:
            current = refused.order
            if current is not None and current.status in ENDED_UNPAID:
                self._late_payment(current, intent)  # the workflow ended it a moment before our write
                return
            if current is None or current.payment is None or current.payment.status != PaymentStatus.SUCCEEDED:
                return
            updated = current  # recorded already (a duplicate): telling the workflow again is harmless
        if updated.task_token:
            self._workflow.succeed(updated.task_token, {"payment_status": "succeeded"})

    def _failed(self, event: PaymentIntentEvent) -> None:
        """A declined attempt. The shopper may pay the same intent again, so the order keeps awaiting payment until
        the max_attempts-th decline; each event is counted once, however often or concurrently it arrives."""
        order = self._order_for(event)
        for _ in range(DECLINE_WRITE_ATTEMPTS):
            if order is None or order.status != OrderStatus.AWAITING_PAYMENT or order.payment is None:
                return  # too late to matter: the workflow ended the order (or it was paid and moved on)
            if order.payment.status not in (PaymentStatus.PENDING, PaymentStatus.DECLINED, PaymentStatus.PROCESSING):
                return  # succeeded (a failed attempt reported late changes nothing), or failed/canceled already
            if event.id in (order.decline_events or ()):
                return  # counted already (a concurrent duplicate)
            attempts = order.payment.attempts + 1
            status = PaymentStatus.FAILED if attempts >= self._max_attempts else PaymentStatus.DECLINED
            error = event.intent.last_payment_error
            last_error = PaymentError(
                code=(error.code if error else None) or "payment_failed",
                message=(error.message if error else None) or "The payment was declined.",
            )
            try:
                order = self._orders.record_payment(
                    order.id,
                    status,
                    statuses={OrderStatus.AWAITING_PAYMENT},
                    attempts=attempts,
                    last_error=last_error,
                    decline_event=event.id,
                )
            except TransitionRefused as refused:
                order = refused.order  # another event wrote first: decide again on what it wrote
                continue
            count("PaymentsDeclined")
            if status == PaymentStatus.FAILED and order.task_token:
                self._workflow.fail(
                    order.task_token,
                    PAYMENT_FAILED_ERROR,
                    f"{attempts} declined payment attempts: {last_error.message}",
                )
            return
        raise TransitionRefused(order)  # kept losing races: the provider redelivers, and we decide again

    def _processing(self, event: PaymentIntentEvent) -> None:
        order = self._order_for(event)
        if order is not None:
            self._record(order, PaymentStatus.PROCESSING, {OrderStatus.AWAITING_PAYMENT})

    def _canceled(self, event: PaymentIntentEvent) -> None:
        order = self._order_for(event)
        if order is not None:
            self._record(order, PaymentStatus.CANCELED, set(OrderStatus))

    def _late_payment(self, order: StoredOrder, intent: PaymentIntent) -> None:
        recorded = record_late_payment(self._orders, order, _payment(intent), self._clock())
        if recorded.money_work_left:
            self._finish_later(order.id)

    def _mismatched_payment(self, order: StoredOrder, intent: PaymentIntent) -> None:
        """Not paid what the order costs: refunded in full (the payment tasks make the refund), and the workflow told
        the payment failed, so the order ends payment_failed and its stock is released."""
        recorded = record_mismatched_payment(self._orders, order, _payment(intent), self._clock())
        if recorded.money_work_left:
            self._finish_later(order.id)
        if (
            recorded.status == OrderStatus.AWAITING_PAYMENT
            and recorded.task_token
            and recorded.payment is not None
            and recorded.payment.status == PaymentStatus.FAILED
        ):
            self._workflow.fail(
                recorded.task_token,
                PAYMENT_FAILED_ERROR,
                f"the payment did not match the order: {intent.amount} {intent.currency}",
            )

    # ---------------------------------------------------------------- refunds

    def _refund_changed(self, event: RefundEvent) -> None:
        refund = event.refund
        order_id, refund_id = refund.metadata.get("order_id"), refund.metadata.get("refund_id")
        order = self._orders.get(order_id) if order_id else None
        if order is None or refund_id is None or find_refund(order, refund_id) is None:
            log.error(
                "event %s (%s) names refund %s of order %s, which has no such refund",
                event.id,
                event.type,
                refund_id,
                order_id,
                extra={"order_id": order_id},
            )
            return
        settle_refund(self._orders, order, refund_id, refund.status, refund.id)

    # ---------------------------------------------------------------- helpers

    def _order_for(self, event: PaymentIntentEvent) -> StoredOrder | None:
        """The order the event's payment belongs to, or None (logged) when it belongs to none of ours."""
        intent = event.intent
        order = self._orders.get(intent.order_id) if intent.order_id else None
        if order is None or order.payment is None or order.payment.payment_id != intent.id:
            # Redelivering cannot make it ours: acknowledge it, and leave a trace for a person.
            log.error(
                "event %s (%s) names payment %s of order %s, which has no such payment",
                event.id,
                event.type,
                intent.id,
                intent.order_id,
                extra={"order_id": intent.order_id, "payment_id": intent.id},
            )
            return None
        return order

    def _record(self, order: StoredOrder, status: PaymentStatus, statuses: set[OrderStatus]) -> None:
        with contextlib.suppress(TransitionRefused):  # it moved on (succeeded, say): what it says now wins
            self._orders.record_payment(order.id, status, statuses=statuses)


def _payment(intent: PaymentIntent) -> ProviderPayment:
    return ProviderPayment(
        payment_id=intent.id, status=intent.status, amount=intent.amount, currency=intent.currency.upper()
    )
