"""Payment rules: asking the provider for a payment, and turning its webhooks into the order workflow's answer.

The workflow's WaitForPayment task and the provider's webhook race each other; either may come first.
Both write to the order item and then read what the write returned, so whichever writes second sees the
other's half (the task token, or the payment's outcome) and answers the workflow. Both may answer: the
second answer finds the token spent, which is harmless.

Order statuses (paid, payment_failed, expired) are the workflow's to set; this context only records the
payment's own status on the order and tells the workflow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from storefront.observability import count
from storefront.orders.models import OrderStatus, Payment, StoredOrder
from storefront.orders.repository import Orders, TransitionRefused
from storefront.payments.models import HANDLED_EVENT_TYPES, SUCCEEDED, EventEnvelope, PaymentIntentEvent
from storefront.payments.providers import PaymentProvider
from storefront.webhooks import UnknownWebhookSender, parse_event, verify_signature

log = logging.getLogger("storefront.payments")

PAYMENT_FAILED_ERROR = "PaymentFailed"  # the error name the workflow's Catch matches
WEBHOOK_PROVIDERS = frozenset({"stripe", "fake"})  # both sign the Stripe way


class OrderNotFound(Exception):
    pass


class OrderNotAwaitingPayment(Exception):
    pass


class Events(Protocol):
    def seen(self, provider: str, event_id: str) -> bool: ...
    def record(self, provider: str, event_id: str, event_type: str, at: datetime) -> bool: ...


class Workflow(Protocol):
    def succeed(self, task_token: str, output: dict[str, Any]) -> bool: ...
    def fail(self, task_token: str, error: str, cause: str) -> bool: ...


class PaymentsService:
    def __init__(self, orders: Orders, events: Events, provider: PaymentProvider, workflow: Workflow,
                 webhook_secrets: Callable[[], list[str]], clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self._orders = orders
        self._events = events
        self._provider = provider
        self._workflow = workflow
        self._webhook_secrets = webhook_secrets  # read per webhook (storefront.secrets caches it); tasks never do
        self._clock = clock

    # ---------------------------------------------------------------- the workflow's tasks

    def create_payment(self, order_id: str) -> Payment:
        """CreatePayment: one payment per order, however often the task is retried."""
        order = self._order(order_id)
        if order.payment is not None:
            return order.payment  # a retried task: the first attempt got this far
        # The key names the order: a retry after a lost response gets the same PaymentIntent back.
        created = self._provider.create_payment(order_id, order.totals.total, idempotency_key=f"order-{order_id}")
        payment = Payment(provider=self._provider.name, status="pending", payment_id=created.payment_id,
                          client_secret=created.client_secret, redirect_url=created.redirect_url)
        try:
            self._orders.transition(order_id, OrderStatus.AWAITING_PAYMENT, self._clock(),
                                    payment=payment.model_dump(exclude_none=True))
        except TransitionRefused as refused:
            current = refused.order
            already_done = (current is not None and current.status == OrderStatus.AWAITING_PAYMENT
                            and current.payment is not None and current.payment.payment_id == created.payment_id)
            if not already_done:
                raise
        return payment

    def await_payment(self, order_id: str, task_token: str) -> None:
        """WaitForPayment: keep the token where the webhook finds it; answer at once if the webhook came first."""
        try:
            order = self._orders.update_fields(order_id, condition_status={OrderStatus.AWAITING_PAYMENT},
                                               task_token=task_token)
        except TransitionRefused as refused:
            status = refused.order.status if refused.order else "missing"
            raise OrderNotAwaitingPayment(f"order {order_id} is {status}, not awaiting payment") from refused
        payment_status = order.payment.status if order.payment else None
        if payment_status == "succeeded":
            self._workflow.succeed(task_token, {"payment_status": "succeeded"})
        elif payment_status == "failed":
            self._workflow.fail(task_token, PAYMENT_FAILED_ERROR, "the payment failed before the workflow waited")

    # ---------------------------------------------------------------- webhooks

    def receive_webhook(self, provider: str, payload: bytes, signature_header: str | None) -> None:
        """Verify, deduplicate and apply one provider event. Raising means "not processed": the provider retries."""
        if provider not in WEBHOOK_PROVIDERS:
            raise UnknownWebhookSender(f"No payment provider named {provider!r}.")
        verify_signature(payload, signature_header, self._webhook_secrets(), header_name="Stripe-Signature",
                         sender="payment provider")
        envelope = parse_event(payload, EventEnvelope, "a payment event")
        if envelope.type not in HANDLED_EVENT_TYPES:
            return  # acknowledged, so the provider stops sending it; nothing of ours depends on it
        if self._events.seen(provider, envelope.id):
            log.info("event %s already processed", envelope.id)
            return
        event = parse_event(payload, PaymentIntentEvent, "a payment event")
        if event.type == SUCCEEDED:
            self._payment_succeeded(event)
        else:
            self._payment_failed(event)
        # Recorded only now that the effects are durable: a crash before this line lets the provider's
        # retry through, and every effect above is safe to apply twice.
        self._events.record(provider, event.id, event.type, self._clock())

    def _payment_succeeded(self, event: PaymentIntentEvent) -> None:
        order = self._order_for(event)
        if order is None:
            return
        intent = event.intent
        expected = order.totals.total
        if intent.amount != expected.amount or intent.currency.upper() != expected.currency:
            # Not paid what the order costs. A redelivery would carry the same numbers, so answer 2xx and
            # leave it to a person: the order times out (expired) unless someone intervenes.
            log.error("payment %s for order %s is %s %s, the order totals %s: not marking it paid",
                      intent.id, order.id, intent.amount, intent.currency, expected,
                      extra={"order_id": order.id, "payment_id": intent.id})
            return
        if order.status != OrderStatus.AWAITING_PAYMENT:
            if order.status in (OrderStatus.EXPIRED, OrderStatus.PAYMENT_FAILED, OrderStatus.CANCELLED):
                log.error("payment %s succeeded for order %s, which is %s: it needs a refund",
                          intent.id, order.id, order.status, extra={"order_id": order.id, "payment_id": intent.id})
            return  # already paid, or past it: nothing left to decide
        updated = self._set_payment_status(order, "succeeded")
        if updated is not None and updated.task_token:
            self._workflow.succeed(updated.task_token, {"payment_status": "succeeded"})

    def _payment_failed(self, event: PaymentIntentEvent) -> None:
        order = self._order_for(event)
        if order is None:
            return
        if order.status != OrderStatus.AWAITING_PAYMENT or (order.payment and order.payment.status == "succeeded"):
            return  # out of order: a failed attempt reported after the payment succeeded changes nothing
        count("PaymentsDeclined")
        updated = self._set_payment_status(order, "failed")
        if updated is not None and updated.task_token:
            error = event.intent.last_payment_error
            cause = (error.message if error and error.message else None) or "the payment provider reported a failure"
            self._workflow.fail(updated.task_token, PAYMENT_FAILED_ERROR, cause)

    # ---------------------------------------------------------------- helpers

    def _order(self, order_id: str) -> StoredOrder:
        order = self._orders.get(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        return order

    def _order_for(self, event: PaymentIntentEvent) -> StoredOrder | None:
        """The order the event's payment belongs to, or None (logged) when it belongs to none of ours."""
        intent = event.intent
        order = self._orders.get(intent.order_id) if intent.order_id else None
        if order is None or order.payment is None or order.payment.payment_id != intent.id:
            # Redelivering cannot make it ours: acknowledge it, and leave a trace for a person.
            log.error("event %s (%s) names payment %s of order %s, which has no such payment",
                      event.id, event.type, intent.id, intent.order_id,
                      extra={"order_id": intent.order_id, "payment_id": intent.id})
            return None
        return order

    def _set_payment_status(self, order: StoredOrder, status: str) -> StoredOrder | None:
        """Record the payment's outcome while the order awaits payment; the returned order carries the token
        if the workflow registered it before this write (see the module docstring)."""
        assert order.payment is not None
        payment = order.payment.model_copy(update={"status": status}).model_dump(exclude_none=True)
        try:
            return self._orders.update_fields(order.id, condition_status={OrderStatus.AWAITING_PAYMENT},
                                              payment=payment)
        except TransitionRefused:
            return None  # the workflow moved the order on meanwhile (timeout, cancel): too late to matter
