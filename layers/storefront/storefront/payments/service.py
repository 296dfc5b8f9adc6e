"""The order workflow's payment tasks, and refunds: everything that talks to the payment provider (the public
webhook receiver, storefront.payments.webhooks, never does, and holds no API key).

    CreatePayment        one PaymentIntent per order (the provider's idempotency key names the order)
    WaitForPayment       keeps the task token where the webhook finds it (either may come first: each acts on
                         what its own write returned, so the workflow is always told exactly once what happened)
    CancelPayment        so an order that ends unpaid can never be paid (at the timeout: asking before giving up);
                         refused because it succeeded -> paid (or, money the order cannot keep, refunded)
    finish               settle an order's money and units: open refunds created at the provider, pending ones
                         followed, restocked units put back on hand, a paid cancellation's refund and return
                         made; the webhook receiver and the reconciler hand work here
    refund               an operator's refund (full, partial by amount, or by lines with restock), one per id

Money an order cannot keep is refunded in full automatically, recorded with the payment in one conditional write:
a payment that succeeded after its order ended unpaid (late_payment), or for another amount or currency than the
order's (amount_mismatch: the order is not paid, its workflow is told the payment failed).

Order statuses are the workflow's to set (storefront.orders.service.OrderSteps); this context records the
payment's and the refunds' own states on the order, each write conditional (storefront.payments.records).
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from storefront.errors import NotFound, StorefrontError, ValidationFailed
from storefront.money import Money
from storefront.observability import count
from storefront.orders.models import (
    ENDED_UNPAID,
    PAID_ON,
    OrderStatus,
    Payment,
    PaymentError,
    PaymentStatus,
    RefundLine,
    StoredOrder,
    StoredRefund,
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
AMOUNT_MISMATCH = "amount_mismatch"
# Refunds the shop makes by itself, each counted (an alarm watches each metric): the reason -> its metric.
AUTOMATIC_REFUND_METRICS = {LATE_PAYMENT: "LatePaymentsRefunded", AMOUNT_MISMATCH: "MismatchedPaymentsRefunded"}


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
    def __init__(
        self,
        orders: OrderRepository,
        provider: PaymentProvider,
        workflow: Workflow,
        stock: StockReturns,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
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
        payment = Payment(
            provider=self._provider.name,
            status=PaymentStatus.PENDING,
            payment_id=created.payment_id,
            client_secret=created.client_secret,
            redirect_url=created.redirect_url,
        )
        try:
            self._orders.transition(
                order_id,
                OrderStatus.AWAITING_PAYMENT,
                self._clock(),
                payment=payment.model_dump(mode="json", exclude_none=True),
            )
        except TransitionRefused as refused:
            current = refused.order
            if current is not None and current.status == OrderStatus.CANCELLED:
                # Cancelled while we asked: nobody may pay this intent now.
                self._provider.cancel_payment(created.payment_id)
                canceled = payment.model_copy(update={"status": PaymentStatus.CANCELED})
                self._orders.update_fields(order_id, payment=canceled.model_dump(mode="json", exclude_none=True))
                raise OrderCancelled(f"order {order_id} was cancelled while its payment was created") from refused
            already_done = (
                current is not None
                and current.status == OrderStatus.AWAITING_PAYMENT
                and current.payment is not None
                and current.payment.payment_id == created.payment_id
            )
            if not already_done:
                raise
        return payment

    def await_payment(self, order_id: str, task_token: str) -> None:
        """WaitForPayment: keep the token where the webhook finds it; answer at once if the webhook came first."""
        try:
            order = self._orders.update_fields(
                order_id, condition_status={OrderStatus.AWAITING_PAYMENT}, task_token=task_token
            )
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

    def cancel_payment(self, order_id: str) -> str:
        """CancelPayment: canceled (it can never be paid now), succeeded (it was paid meanwhile: the order is paid),
        refunded (it was paid, but not for this order as it is: refunded in full, see _accept), or not_canceled
        (the provider would not: processing). An order without a payment has nothing to cancel."""
        order = self._order(order_id)
        if order.payment is None:
            return "canceled"
        if order.payment.status == PaymentStatus.SUCCEEDED:
            return "succeeded"
        if order.payment.status == PaymentStatus.CANCELED:
            return "canceled"
        current = self._provider.cancel_payment(order.payment.payment_id)
        if current.status == "succeeded":
            return "succeeded" if self._accept(order, current) else "refunded"
        if current.status == "canceled":
            self._record(order, PaymentStatus.CANCELED)
            return "canceled"
        log.warning(
            "payment %s of order %s is %s and could not be canceled",
            current.payment_id,
            order_id,
            current.status,
            extra={"order_id": order_id},
        )
        return "not_canceled"

    # ---------------------------------------------------------------- refunds

    def refund(
        self,
        order_id: str,
        *,
        amount: Money | None,
        lines: list[RefundLine],
        restock: bool,
        reason: str,
        refund_id: str,
    ) -> StoredRefund:
        """Refund the order (the whole remaining amount when neither amount nor lines are given), then ask the
        provider and put restocked units back on hand. `refund_id` names the refund: it is the provider's
        idempotency key and the stock return's id, so a repeated call (a retried request, a crash half way) finds
        the refund recorded and finishes it instead of making another. The amount is reserved on the order first, by
        a conditional write, so concurrent refunds never add up to more than was captured (409
        refund_exceeds_payment)."""
        order = self._order(order_id, not_found=NotFound("There is no such order."))
        lines = _merged(lines)
        for _ in range(REFUND_WRITE_ATTEMPTS):
            if find_refund(order, refund_id) is not None:
                break  # recorded by an earlier call with this id: finish it
            captured = self._captured(order)
            refund = StoredRefund(
                id=refund_id,
                amount=self._amount(order, amount, lines),
                status="pending",
                lines=lines,
                restock=restock and bool(lines),
                reason=reason,
                created_at=self._clock(),
            )
            self._check_lines(order, refund.lines, refund.restock)
            if refund.amount.amount > captured - order.refunded_amount:
                raise RefundExceedsPayment(
                    f"Only {Money(amount=captured - order.refunded_amount, currency=order.currency)}"
                    f" of this order's payment is left to refund."
                )
            try:
                order = self._orders.add_refund(
                    order.id,
                    refund,
                    captured_amount=captured,
                    statuses=set(PAID_ON) if refund.restock else None,
                    refunds_read=len(order.refunds) if refund.lines else None,
                    due=due(self._clock()),
                )
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

    def has_refund(self, order_id: str, refund_id: str) -> bool:
        order = self._orders.get(order_id)
        return order is not None and find_refund(order, refund_id) is not None

    def finish(self, order_id: str) -> int:
        """Settle the order's money and units: every open refund (late payments' included) is settled at the provider
        and its units put back on hand; a cancellation after payment gets its refund of what is left (if a crash
        left it without one) and then, once no refund has units on their way back, returns every unit nothing
        returned. Returns the number of refunds still open (the reconciler looks again later)."""
        order = self._order(order_id)
        cancellation = order.cancellation
        if cancellation is not None and cancellation.refund_id and find_refund(order, cancellation.refund_id) is None:
            order = self._refund_cancellation(order, cancellation.refund_id)
        for refund in list(order.refunds):
            if refund.open:
                order = self._settle_open_refund(order, refund.id)
        if order.cancellation is not None and order.cancellation.refund_id and order.cancellation.returned is None:
            order = self._return_cancelled_units(order, order.cancellation.refund_id)
        return sum(refund.open for refund in order.refunds)

    def _refund_cancellation(self, order: StoredOrder, refund_id: str) -> StoredOrder:
        """All that is left of the payment back: an amount, with no lines (the units are the cancellation's to
        return, not the refund's), so no check meant for an operator's refund by lines can refuse it."""
        remaining = (order.captured_amount or 0) - order.refunded_amount
        if remaining > 0:
            self.refund(
                order.id,
                amount=Money(amount=remaining, currency=order.currency),
                lines=[],
                restock=False,
                reason="cancelled",
                refund_id=refund_id,
            )
        return self._order(order.id)

    def _return_cancelled_units(self, order: StoredOrder, return_id: str) -> StoredOrder:
        """Every unit ordered that no refund returned (or is returning) back on hand, once (the return id is the
        cancellation's), then noted on the cancellation. Called once no refund has units on their way back, so a
        repeat computes the same units."""
        left = order.units_ordered() - order.units_returned()
        lines = [RefundLine(sku=sku, quantity=quantity) for sku, quantity in sorted(left.items())]
        if lines:
            self._stock.return_units(return_id, order.id, lines)
        try:
            return self._orders.record_cancellation_return(order.id, [line.model_dump() for line in lines])
        except TransitionRefused as refused:  # a concurrent finish noted the same return first
            return refused.order or self._order(order.id)

    def _settle_open_refund(self, order: StoredOrder, refund_id: str) -> StoredOrder:
        index = find_refund(order, refund_id)
        assert index is not None
        refund = order.refunds[index]
        if refund.status == "pending":
            assert order.payment is not None
            try:
                if refund.provider_refund_id is None:
                    answer = self._provider.refund(
                        order.payment.payment_id,
                        refund.amount,
                        idempotency_key=refund.id,
                        metadata={"order_id": order.id, "refund_id": refund.id},
                    )
                    if refund.reason in AUTOMATIC_REFUND_METRICS:
                        count(AUTOMATIC_REFUND_METRICS[refund.reason])
                else:
                    answer = self._provider.refund_status(refund.provider_refund_id)
                order = settle_refund(self._orders, order, refund.id, answer.status, answer.refund_id)
            except PaymentProviderUnavailable:
                log.warning(
                    "refund %s of order %s: the provider is unavailable; the reconciler retries it",
                    refund.id,
                    order.id,
                    extra={"order_id": order.id},
                )
            except PaymentProviderError as refused:
                log.error(
                    "the provider refused refund %s of order %s: %s",
                    refund.id,
                    order.id,
                    refused,
                    extra={"order_id": order.id},
                )
                order = settle_refund(self._orders, order, refund.id, "failed")
        index = find_refund(order, refund_id)
        assert index is not None
        refund = order.refunds[index]
        if refund.to_restock:  # not once it failed: the goods were not taken back
            self._stock.return_units(refund.id, order.id, refund.lines)
            order = self._orders.update_refund(order.id, index, refund.id, restocked=True)
        return order

    # ---------------------------------------------------------------- helpers

    @staticmethod
    def _captured(order: StoredOrder) -> int:
        """What the order's payment captured: any order with captured money may be refunded, whatever its status (a
        late payment's failed refund, say, is retried by an operator)."""
        if order.captured_amount is None:
            raise OrderNotRefundable(f"Order {order.id} is {order.status.value} and was never paid: nothing to refund.")
        return order.captured_amount

    @staticmethod
    def _amount(order: StoredOrder, amount: Money | None, lines: list[RefundLine]) -> Money:
        currency = order.currency
        if amount is not None:
            if amount.currency != currency or amount.amount < 1:
                raise ValidationFailed(
                    "validation_error",
                    f"A refund is a positive amount in {currency}.",
                    [
                        {
                            "field": "amount",
                            "code": "invalid_amount",
                            "message": f"must be at least 1 minor unit of {currency}",
                        }
                    ],
                )
            return amount
        if lines:
            prices = {line.sku: line.unit_price for line in order.lines}
            return Money(
                amount=sum(prices[line.sku].amount * line.quantity for line in lines if line.sku in prices),
                currency=currency,
            )
        remaining = (order.captured_amount or 0) - order.refunded_amount
        if remaining < 1:
            raise RefundExceedsPayment(f"Order {order.id} is refunded in full already.")
        return Money(amount=remaining, currency=currency)

    @staticmethod
    def _check_lines(order: StoredOrder, lines: list[RefundLine], restock: bool) -> None:
        """An operator's refund by lines names units whose money is not refunded yet and, to restock them, units that
        left with the order and have not come back (StoredOrder.units_refunded, units_returned): checked before any
        money moves, because a return the stock function refuses after the provider refunded leaves the refund open
        for good. 422 otherwise."""
        ordered, refunded, returned = order.units_ordered(), order.units_refunded(), order.units_returned()
        problems: list[dict[str, object]] = []
        for line in lines:
            if line.sku not in ordered:
                problems.append(
                    {"field": "lines", "sku": line.sku, "code": "not_in_order", "message": "the order has no such SKU"}
                )
            elif line.quantity > ordered[line.sku] - refunded[line.sku]:
                problems.append(
                    {
                        "field": "lines",
                        "sku": line.sku,
                        "code": "quantity_exceeds_order",
                        "message": f"{ordered[line.sku] - refunded[line.sku]} unit(s) left to refund",
                    }
                )
            elif restock and line.quantity > ordered[line.sku] - returned[line.sku]:
                problems.append(
                    {
                        "field": "lines",
                        "sku": line.sku,
                        "code": "already_returned",
                        "message": f"{ordered[line.sku] - returned[line.sku]} unit(s) left to return; "
                        "refund the others without restock",
                    }
                )
        if restock and order.status not in PAID_ON:
            problems.append(
                {
                    "field": "restock",
                    "code": "not_restockable",
                    "message": "the cancellation returns every unit"
                    if order.status == OrderStatus.CANCELLED
                    else f"the order is {order.status.value}: its units never left",
                }
            )
        if problems:
            raise ValidationFailed(
                "validation_error", "These lines cannot be refunded as asked; see `errors`.", problems
            )

    def _accept(self, order: StoredOrder, payment: ProviderPayment) -> bool:
        """The provider says the payment succeeded: record it (True: the order is paid). Money the order cannot keep
        is refunded in full instead (False): a payment for an order that ended unpaid (late_payment), or one whose
        amount or currency is not the order's (amount_mismatch)."""
        if order.status in ENDED_UNPAID:
            self.finish(record_late_payment(self._orders, order, payment, self._clock()).id)
            return False
        if not matches_order(order, payment):
            self.finish(record_mismatched_payment(self._orders, order, payment, self._clock()).id)
            return False
        try:
            self._orders.record_payment(
                order.id,
                PaymentStatus.SUCCEEDED,
                statuses={OrderStatus.AWAITING_PAYMENT},
                captured_amount=payment.amount,
            )
        except TransitionRefused as refused:
            current = refused.order
            return bool(current and current.payment and current.payment.status == PaymentStatus.SUCCEEDED)
        return True

    def _record(self, order: StoredOrder, status: PaymentStatus) -> None:
        with contextlib.suppress(TransitionRefused):  # it moved on (succeeded, say): what it says now wins
            self._orders.record_payment(order.id, status, statuses=set(OrderStatus))

    def _order(self, order_id: str, not_found: Exception | None = None) -> StoredOrder:
        order = self._orders.get(order_id)
        if order is None:
            raise not_found or OrderNotFound(order_id)
        return order


def matches_order(order: StoredOrder, payment: ProviderPayment) -> bool:
    expected = order.totals.total
    return payment.amount == expected.amount and payment.currency == expected.currency


def record_late_payment(
    orders: OrderRepository, order: StoredOrder, payment: ProviderPayment, now: datetime
) -> StoredOrder:
    """A payment succeeded for an order that had ended unpaid: reserve its full refund (reason late_payment) in the
    same conditional write that records the success, exactly once (the webhook and CancelPayment both use it)."""
    return _refund_captured(
        orders,
        order,
        payment,
        now,
        f"late-{payment.payment_id}",
        LATE_PAYMENT,
        set(ENDED_UNPAID),
        PaymentStatus.SUCCEEDED,
    )


def record_mismatched_payment(
    orders: OrderRepository, order: StoredOrder, payment: ProviderPayment, now: datetime
) -> StoredOrder:
    """A payment succeeded for another amount or currency than the order's: the order is not paid (its payment is
    recorded failed, last_error amount_mismatch) and what was captured is refunded in full (reason
    amount_mismatch), in one conditional write, exactly once."""
    error = PaymentError(
        code=AMOUNT_MISMATCH,
        message=f"The payment was {payment.amount} {payment.currency} (minor "
        f"units), not the order's {order.totals.total}: refunded.",
    )
    return _refund_captured(
        orders,
        order,
        payment,
        now,
        f"mismatch-{payment.payment_id}",
        AMOUNT_MISMATCH,
        {OrderStatus.AWAITING_PAYMENT},
        PaymentStatus.FAILED,
        error,
    )


def _refund_captured(
    orders: OrderRepository,
    order: StoredOrder,
    payment: ProviderPayment,
    now: datetime,
    refund_id: str,
    reason: str,
    statuses: set[OrderStatus],
    captures: PaymentStatus,
    last_error: PaymentError | None = None,
) -> StoredOrder:
    refund = StoredRefund(
        id=refund_id,
        amount=Money(amount=payment.amount, currency=payment.currency),
        status="pending",
        reason=reason,
        created_at=now,
    )
    try:
        order = orders.add_refund(
            order.id,
            refund,
            captured_amount=payment.amount,
            statuses=statuses,
            refunds_read=None,
            due=due(now),
            captures=captures,
            last_error=last_error,
        )
    except TransitionRefused as refused:
        current = refused.order or order
        if current.captured_amount is None:
            log.error(
                "payment %s of order %s succeeded, but the order is %s: not refunding it automatically",
                payment.payment_id,
                order.id,
                current.status,
                extra={"order_id": order.id},
            )
        return current  # recorded already (a duplicate), or the order moved on
    log.error(
        "payment %s of order %s (%s) succeeded but cannot be kept (%s): refunding it in full",
        payment.payment_id,
        order.id,
        order.status,
        reason,
        extra={"order_id": order.id},
    )
    return order


def _merged(lines: list[RefundLine]) -> list[RefundLine]:
    quantities: Counter[str] = Counter()
    for line in lines:
        quantities[line.sku] += line.quantity
    return [RefundLine(sku=sku, quantity=q) for sku, q in sorted(quantities.items())]
