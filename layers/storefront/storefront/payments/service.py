"""The order workflow's payment tasks, and refunds: everything that talks to the payment provider (the public
webhook receiver, storefront.payments.webhooks, never does, and holds no API key).

    CreatePayment        one PaymentIntent per order (the provider's idempotency key names the order)
    WaitForPayment       keeps the task token where the webhook finds it (either may come first: each acts on
                         what its own write returned, so the workflow is always told exactly once what happened)
    CheckPayment         at the timeout: ask the provider before giving up (succeeded -> paid, processing -> grace)
    CancelPayment        so an order that ends unpaid can never be paid; refused because it succeeded -> paid
    finish               settle an order's open refunds (create them at the provider, follow pending ones, put
                         returned units back on hand): the webhook receiver and the reconciler hand work here
    refund               an operator's refund (full, partial by amount, or by lines with restock)

Order statuses are the workflow's to set (storefront.orders.service.OrderSteps); this context records the
payment's and the refunds' own states on the order, each write conditional (storefront.payments.records).
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from storefront.errors import NotFound, StorefrontError, ValidationFailed
from storefront.money import Money
from storefront.observability import count
from storefront.orders.models import (
    ENDED_UNPAID, REFUNDABLE, OrderStatus, Payment, PaymentStatus, RefundLine, StoredOrder, StoredRefund,
)
from storefront.orders.repository import OrderRepository, TransitionRefused
from storefront.payments.models import ProviderPayment
from storefront.payments.providers import PaymentProvider, PaymentProviderError, PaymentProviderUnavailable
from storefront.payments.records import due, find_refund, settle_refund

log = logging.getLogger("storefront.payments")

PAYMENT_FAILED_ERROR = "PaymentFailed"  # error names the workflow's Catch matches
ORDER_CANCELLED_ERROR = "OrderCancelled"
REFUND_WRITE_ATTEMPTS = 16  # refunds by lines race optimistically (one wins each round); amounts never need a retry
LATE_PAYMENT = "late_payment"


class OrderNotFound(Exception):
    pass


class OrderNotAwaitingPayment(Exception):
    pass


class OrderCancelled(Exception):
    """The order was cancelled while its workflow was on the way: the workflow cancels the payment, releases."""


class OrderNotRefundable(StorefrontError):
    status, code, title = 409, "order_not_refundable", "Order not refundable"


class RefundExceedsPayment(StorefrontError):
    status, code, title = 409, "refund_exceeds_payment", "Refund exceeds payment"


class Workflow(Protocol):
    def succeed(self, task_token: str, output: dict[str, Any]) -> bool: ...
    def fail(self, task_token: str, error: str, cause: str) -> bool: ...


class StockReturns(Protocol):
    def return_units(self, return_id: str, order_id: str, lines: list[RefundLine]) -> None: ...


class PaymentTasks:
    def __init__(self, orders: OrderRepository, provider: PaymentProvider, workflow: Workflow, stock: StockReturns,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._orders = orders
        self._provider = provider
        self._workflow = workflow
        self._stock = stock
        self._clock = clock

    # ---------------------------------------------------------------- the workflow's tasks

    def create_payment(self, order_id: str) -> Payment:
        """CreatePayment: one payment per order, however often the task is retried."""
        order = self._order(order_id)
        if order.status == OrderStatus.CANCELLED:
            raise OrderCancelled(f"order {order_id} was cancelled before its payment was created")
        if order.payment is not None:
            return order.payment  # a retried task: the first attempt got this far
        # The key names the order: a retry after a lost response gets the same PaymentIntent back.
        created = self._provider.create_payment(order_id, order.totals.total, idempotency_key=f"order-{order_id}")
        payment = Payment(provider=self._provider.name, status=PaymentStatus.PENDING, payment_id=created.payment_id,
                          client_secret=created.client_secret, redirect_url=created.redirect_url)
        try:
            self._orders.transition(order_id, OrderStatus.AWAITING_PAYMENT, self._clock(),
                                    payment=payment.model_dump(mode="json", exclude_none=True))
        except TransitionRefused as refused:
            current = refused.order
            if current is not None and current.status == OrderStatus.CANCELLED:
                # Cancelled while we asked: nobody may pay this intent now.
                self._provider.cancel_payment(created.payment_id)
                canceled = payment.model_copy(update={"status": PaymentStatus.CANCELED})
                self._orders.update_fields(order_id, payment=canceled.model_dump(mode="json", exclude_none=True))
                raise OrderCancelled(f"order {order_id} was cancelled while its payment was created") from refused
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
            if status == OrderStatus.CANCELLED:
                raise OrderCancelled(f"order {order_id} was cancelled") from refused
            raise OrderNotAwaitingPayment(f"order {order_id} is {status}, not awaiting payment") from refused
        payment_status = order.payment.status if order.payment else None
        if payment_status == PaymentStatus.SUCCEEDED:
            self._workflow.succeed(task_token, {"payment_status": "succeeded"})
        elif payment_status == PaymentStatus.FAILED:
            self._workflow.fail(task_token, PAYMENT_FAILED_ERROR, "the payment failed before the workflow waited")

    def check_payment(self, order_id: str) -> str:
        """CheckPayment, when the payment window closed: succeeded, processing, or open (nobody paid)."""
        order = self._order(order_id)
        if order.payment is None:
            return "open"
        if order.payment.status == PaymentStatus.SUCCEEDED:
            return "succeeded"
        current = self._provider.payment(order.payment.payment_id)
        if current.status == "succeeded":
            return "succeeded" if self._accept(order, current) else "open"
        if current.status == "processing":
            self._record(order, PaymentStatus.PROCESSING)
            return "processing"
        return "open"

    def cancel_payment(self, order_id: str) -> str:
        """CancelPayment: canceled (it can never be paid now), succeeded (it was paid meanwhile: the order is paid),
        or not_canceled (the provider would not: processing). An order without a payment has nothing to cancel."""
        order = self._order(order_id)
        if order.payment is None:
            return "canceled"
        if order.payment.status == PaymentStatus.SUCCEEDED:
            return "succeeded"
        if order.payment.status == PaymentStatus.CANCELED:
            return "canceled"
        current = self._provider.cancel_payment(order.payment.payment_id)
        if current.status == "succeeded":
            return "succeeded" if self._accept(order, current) else "not_canceled"
        if current.status == "canceled":
            self._record(order, PaymentStatus.CANCELED)
            return "canceled"
        log.warning("payment %s of order %s is %s and could not be canceled", current.payment_id, order_id,
                    current.status, extra={"order_id": order_id})
        return "not_canceled"

    # ---------------------------------------------------------------- refunds

    def refund(self, order_id: str, *, amount: Money | None, lines: list[RefundLine], restock: bool, reason: str,
               refund_id: str | None = None) -> StoredRefund:
        """Refund the order (the whole remaining amount when neither amount nor lines are given), then ask the
        provider and put restocked units back on hand. The amount is reserved on the order first, by a conditional
        write, so concurrent refunds never add up to more than was captured (409 refund_exceeds_payment)."""
        order = self._order(order_id, not_found=NotFound("There is no such order."))
        refund_id = refund_id or "rf_" + secrets.token_urlsafe(18)
        for _ in range(REFUND_WRITE_ATTEMPTS):
            if find_refund(order, refund_id) is not None:
                break  # recorded by an earlier attempt of this call (a cancellation retried)
            captured = self._captured(order)
            refund = StoredRefund(id=refund_id, amount=self._amount(order, amount, lines), status="pending",
                                  lines=_merged(lines), restock=restock and bool(lines), reason=reason,
                                  created_at=self._clock())
            self._check_units(order, refund.lines)
            if refund.amount.amount > captured - order.refunded_amount:
                raise RefundExceedsPayment(f"Only {Money(amount=captured - order.refunded_amount, currency=order.currency)}"
                                           f" of this order's payment is left to refund.")
            try:
                order = self._orders.add_refund(order.id, refund, captured_amount=captured, statuses=set(REFUNDABLE),
                                                refunds_read=len(order.refunds) if refund.lines else None,
                                                due=due(self._clock()))
                break
            except TransitionRefused as refused:
                if refused.order is None:
                    raise NotFound("There is no such order.") from refused
                order = refused.order  # another refund got there first: decide again on what it wrote
        else:
            raise RefundExceedsPayment("Other refunds of this order kept changing it; none was made. Retry.")
        order = self._settle_open_refund(order, refund_id)
        index = find_refund(order, refund_id)
        assert index is not None
        return order.refunds[index]

    def finish(self, order_id: str) -> int:
        """Settle the order's money: a cancellation after payment gets its full refund (and its units back on hand)
        if a crash left it without one, and every open refund (late payments' included) is settled. Returns the
        number of refunds still open (the reconciler looks again later)."""
        order = self._order(order_id)
        cancellation = order.cancellation
        if cancellation is not None and cancellation.refund_id and find_refund(order, cancellation.refund_id) is None:
            order = self._refund_cancellation(order, cancellation.refund_id)
        for refund in list(order.refunds):
            if refund.open:
                order = self._settle_open_refund(order, refund.id)
        return sum(refund.open for refund in order.refunds)

    def _refund_cancellation(self, order: StoredOrder, refund_id: str) -> StoredOrder:
        """All that is left of the payment back, and all units not yet returned back on hand (one return id)."""
        left = self._units_left(order)
        remaining = (order.captured_amount or 0) - order.refunded_amount
        if remaining > 0:
            self.refund(order.id, amount=Money(amount=remaining, currency=order.currency), lines=left, restock=True,
                        reason="cancelled", refund_id=refund_id)
        elif left:  # refunded in full already, but some units never came back
            self._stock.return_units(refund_id, order.id, left)
        return self._order(order.id)

    @staticmethod
    def _units_left(order: StoredOrder) -> list[RefundLine]:
        left: Counter[str] = Counter()
        for line in order.lines:
            left[line.sku] += line.quantity
        for refund in order.refunds:
            if refund.status != "failed" and refund.restock:
                for line in refund.lines:
                    left[line.sku] -= line.quantity
        return [RefundLine(sku=sku, quantity=q) for sku, q in sorted(left.items()) if q > 0]

    def _settle_open_refund(self, order: StoredOrder, refund_id: str) -> StoredOrder:
        index = find_refund(order, refund_id)
        assert index is not None
        refund = order.refunds[index]
        if refund.status == "pending":
            assert order.payment is not None
            try:
                if refund.provider_refund_id is None:
                    answer = self._provider.refund(order.payment.payment_id, refund.amount, idempotency_key=refund.id,
                                                   metadata={"order_id": order.id, "refund_id": refund.id})
                    if refund.reason == LATE_PAYMENT:
                        count("LatePaymentsRefunded")
                else:
                    answer = self._provider.refund_status(refund.provider_refund_id)
                order = settle_refund(self._orders, order, refund.id, answer.status, answer.refund_id)
            except PaymentProviderUnavailable:
                log.warning("refund %s of order %s: the provider is unavailable; the reconciler retries it",
                            refund.id, order.id, extra={"order_id": order.id})
            except PaymentProviderError as refused:
                log.error("the provider refused refund %s of order %s: %s", refund.id, order.id, refused,
                          extra={"order_id": order.id})
                order = settle_refund(self._orders, order, refund.id, "failed")
        index = find_refund(order, refund_id)
        assert index is not None
        refund = order.refunds[index]
        if refund.restock and refund.lines and not refund.restocked:
            self._stock.return_units(refund.id, order.id, refund.lines)
            order = self._orders.update_refund(order.id, index, refund.id, restocked=True)
        return order

    # ---------------------------------------------------------------- helpers

    def _captured(self, order: StoredOrder) -> int:
        paid = order.payment is not None and order.payment.status == PaymentStatus.SUCCEEDED
        if order.status not in REFUNDABLE or not paid or order.captured_amount is None:
            raise OrderNotRefundable(f"Order {order.id} is {order.status.value} and was never paid: nothing to refund.")
        return order.captured_amount

    @staticmethod
    def _amount(order: StoredOrder, amount: Money | None, lines: list[RefundLine]) -> Money:
        currency = order.currency
        if amount is not None:
            if amount.currency != currency or amount.amount < 1:
                raise ValidationFailed("validation_error", f"A refund is a positive amount in {currency}.",
                                       [{"field": "amount", "code": "invalid_amount",
                                         "message": f"must be at least 1 minor unit of {currency}"}])
            return amount
        if lines:
            prices = {line.sku: line.unit_price for line in order.lines}
            return Money(amount=sum(prices[line.sku].amount * line.quantity for line in lines if line.sku in prices),
                         currency=currency)
        remaining = (order.captured_amount or 0) - order.refunded_amount
        if remaining < 1:
            raise RefundExceedsPayment(f"Order {order.id} is refunded in full already.")
        return Money(amount=remaining, currency=currency)

    @staticmethod
    def _check_units(order: StoredOrder, lines: list[RefundLine]) -> None:
        ordered: Counter[str] = Counter()
        for line in order.lines:
            ordered[line.sku] += line.quantity
        refunded: Counter[str] = Counter()
        for refund in order.refunds:
            if refund.status != "failed":
                for line in refund.lines:
                    refunded[line.sku] += line.quantity
        problems = [{"field": "lines", "sku": line.sku, "code": "not_in_order" if line.sku not in ordered
                     else "quantity_exceeds_order",
                     "message": f"{ordered[line.sku] - refunded[line.sku]} unit(s) left to refund"}
                    for line in lines if line.quantity > ordered[line.sku] - refunded[line.sku]]
        if problems:
            raise ValidationFailed("validation_error", "A refund line names more units than the order has left.",
                                   problems)

    def _accept(self, order: StoredOrder, payment: ProviderPayment) -> bool:
        """The provider says the payment succeeded: record it, unless it does not match the order (then nobody should
        treat the order as paid; a person looks). An order that ended meanwhile gets the late-payment refund."""
        if order.status in ENDED_UNPAID:
            self.finish(record_late_payment(self._orders, order, payment, self._clock()).id)
            return False
        expected = order.totals.total
        if payment.amount != expected.amount or payment.currency != expected.currency:
            log.error("payment %s for order %s is %s %s, the order totals %s: not marking it paid",
                      payment.payment_id, order.id, payment.amount, payment.currency, expected,
                      extra={"order_id": order.id})
            return False
        try:
            self._orders.record_payment(order.id, PaymentStatus.SUCCEEDED, statuses={OrderStatus.AWAITING_PAYMENT},
                                        captured_amount=payment.amount)
        except TransitionRefused as refused:
            current = refused.order
            return bool(current and current.payment and current.payment.status == PaymentStatus.SUCCEEDED)
        return True

    def _record(self, order: StoredOrder, status: PaymentStatus) -> None:
        try:
            self._orders.record_payment(order.id, status, statuses=set(OrderStatus))
        except TransitionRefused:
            pass  # it moved on (succeeded, say): what it says now wins

    def _order(self, order_id: str, not_found: Exception | None = None) -> StoredOrder:
        order = self._orders.get(order_id)
        if order is None:
            raise not_found or OrderNotFound(order_id)
        return order


def record_late_payment(orders: OrderRepository, order: StoredOrder, payment: ProviderPayment,
                        now: datetime) -> StoredOrder:
    """A payment succeeded for an order that had ended unpaid: reserve its full refund (reason late_payment) in the
    same conditional write that records the success, exactly once (the webhook and CancelPayment both use it)."""
    refund = StoredRefund(id=f"late-{payment.payment_id}", amount=Money(amount=payment.amount, currency=payment.currency),
                          status="pending", reason=LATE_PAYMENT, created_at=now)
    try:
        order = orders.add_refund(order.id, refund, captured_amount=payment.amount, statuses=set(ENDED_UNPAID),
                                  refunds_read=None, due=due(now), late_payment=True)
    except TransitionRefused as refused:
        current = refused.order or order
        if find_refund(current, refund.id) is None:
            log.error("payment %s of order %s succeeded, but the order is %s: not refunding it automatically",
                      payment.payment_id, order.id, current.status, extra={"order_id": order.id})
        return current
    log.error("payment %s succeeded after order %s ended (%s): refunding it in full", payment.payment_id, order.id,
              order.status, extra={"order_id": order.id})
    return order


def _merged(lines: list[RefundLine]) -> list[RefundLine]:
    quantities: Counter[str] = Counter()
    for line in lines:
        quantities[line.sku] += line.quantity
    return [RefundLine(sku=sku, quantity=q) for sku, q in sorted(quantities.items())]
