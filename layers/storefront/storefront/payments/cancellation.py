"""Cancelling an order (an operator's request), exactly once under retries, crashes and races.

    pending, awaiting_payment   cancelled by a conditional write (refused if the payment just succeeded); the
                                running workflow is told (its task token failed with OrderCancelled), or finds out
                                when it registers its token or creates the payment. The workflow then cancels the
                                payment at the provider and releases the stock, exactly once, as for any unpaid end.
    paid, fulfilling            the carrier is asked to cancel the shipment first (it may refuse: 409
                                shipment_not_cancellable, nothing changed); then the move to cancelled records the
                                intent (its id fixed: cancel-<order id>) in the same conditional write; then the
                                payment tasks refund what is left of the payment and return every unit no refund
                                returned to on_hand (PaymentTasks.finish). A crash after the write is finished by a
                                retry of the request or by the reconciler (the order is on its list, due soon), each
                                step idempotent by that id.
    shipped, delivered          409 order_not_cancellable: a refund with restock is the way
    cancelled                   200, nothing repeated; what a failed request left is finished (the refund and
                                the return, or telling the workflow: each step is idempotent)
A cancelled order holds no stock: its places in its clients' limits (storefront.limits) are given back, as the
workflow's own ends give them back (OrderSteps), and again on a retry (giving back is idempotent), since the
workflow of an order cancelled while unpaid ends by releasing its stock without a status move of its own.
A fulfilment worker that created a shipment for an order cancelled meanwhile cancels it (fulfilment.service).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from storefront.errors import NotFound, StorefrontError
from storefront.fulfilment.carriers import Carrier
from storefront.fulfilment.carriers import ShipmentNotCancellable as CarrierWillNotCancel
from storefront.limits.repository import ClientHoldRepository
from storefront.observability import count
from storefront.orders.models import Cancellation, OrderStatus, PaymentStatus, Reason, StoredOrder
from storefront.orders.repository import OrderRepository, TransitionRefused, reconcile_shard
from storefront.payments.records import due
from storefront.payments.service import ORDER_CANCELLED_ERROR, OrderNotRefundable, PaymentTasks, Workflow

S = OrderStatus
CANCEL_ATTEMPTS = 5


class OrderNotCancellable(StorefrontError):
    status, code, title = 409, "order_not_cancellable", "Order not cancellable"


class ShipmentNotCancellable(StorefrontError):
    status, code, title = 409, "shipment_not_cancellable", "Shipment not cancellable"


class CancellationRace(StorefrontError):
    """The order is changing under the request (paid this instant, say): retrying shortly decides it."""

    status, code, title = 409, "request_in_progress", "Request in progress"
    headers = MappingProxyType({"Retry-After": "1"})


class Cancellations:
    def __init__(
        self,
        orders: OrderRepository,
        payments: PaymentTasks,
        workflow: Workflow,
        carrier: Carrier,
        holds: ClientHoldRepository,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._orders = orders
        self._payments = payments
        self._workflow = workflow
        self._carrier = carrier
        self._holds = holds
        self._clock = clock

    def cancel(self, order_id: str, reason: str, actor: str | None = None) -> tuple[StoredOrder, bool]:
        """The cancelled order, and whether this call cancelled it (False: it was cancelled already)."""
        for _ in range(CANCEL_ATTEMPTS):
            order = self._orders.get(order_id)
            if order is None:
                raise NotFound("There is no such order.")
            if order.status == S.CANCELLED:
                self._give_back_places(order)  # the first attempt may have died before it did
                return self._finish(order), False
            if order.status in (S.SHIPPED, S.DELIVERED):
                raise OrderNotCancellable(f"Order {order_id} is {order.status.value}: refund it with restock instead.")
            if order.status in (S.REJECTED, S.PAYMENT_FAILED, S.EXPIRED):
                raise OrderNotCancellable(f"Order {order_id} ended already ({order.status.value}).")
            now = self._clock()
            fields = {"reason": Reason(code="cancelled", detail=reason).model_dump(exclude_none=True)}
            try:
                if order.status in (S.PENDING, S.AWAITING_PAYMENT):
                    cancelled = self._cancel_unpaid(order, reason, actor, now, fields)
                else:
                    cancelled = self._cancel_paid(order, reason, actor, now, fields)
            except TransitionRefused as refused:
                current = refused.order
                if (
                    current is not None
                    and current.status == S.AWAITING_PAYMENT
                    and current.payment is not None
                    and current.payment.status == PaymentStatus.SUCCEEDED
                ):
                    raise CancellationRace(
                        "The order was paid this instant; retry to cancel it as a paid order."
                    ) from refused
                continue  # it moved on between our read and our write: decide again on what it is now
            count("OrdersCancelled")
            self._give_back_places(cancelled)
            return cancelled, True
        raise CancellationRace("The order kept changing; retry.")

    def _cancel_unpaid(
        self, order: StoredOrder, reason: str, actor: str | None, now: datetime, fields: dict[str, Any]
    ) -> StoredOrder:
        cancellation = Cancellation(reason=reason, at=now, actor=actor)
        cancelled = self._orders.transition(
            order.id,
            S.CANCELLED,
            now,
            expect={"status": order.status.value},
            unless_paid=True,
            cancellation=cancellation.model_dump(mode="json", exclude_none=True),
            **fields,
        )
        return self._finish(cancelled)

    def _cancel_paid(
        self, order: StoredOrder, reason: str, actor: str | None, now: datetime, fields: dict[str, Any]
    ) -> StoredOrder:
        if order.payment is None or order.payment.status != PaymentStatus.SUCCEEDED or order.captured_amount is None:
            raise OrderNotRefundable(f"Order {order.id} is {order.status.value} without a payment to refund.")
        if order.status == S.FULFILLING and order.shipment_id:
            try:
                self._carrier.cancel_shipment(order.shipment_id)
            except CarrierWillNotCancel as refused:
                raise ShipmentNotCancellable(
                    f"The carrier will not cancel the shipment of order {order.id}: {refused}"
                ) from refused
        cancellation = Cancellation(reason=reason, at=now, actor=actor, refund_id=f"cancel-{order.id}")
        cancelled = self._orders.transition(
            order.id,
            S.CANCELLED,
            now,
            expect={"status": order.status.value},
            cancellation=cancellation.model_dump(mode="json", exclude_none=True),
            # The refund and the units still to come back: on the reconciler's list until they have.
            reconcile_shard=reconcile_shard(order.id),
            reconcile_at=due(now),
            **fields,
        )
        return self._finish(cancelled)

    def _give_back_places(self, order: StoredOrder) -> None:
        if order.client_hold is not None:
            self._holds.release(order.client_hold)

    def _finish(self, order: StoredOrder) -> StoredOrder:
        """What the cancellation owes, each step idempotent, so a repeated request finishes what a failed one left
        (its write landed, then it died). After payment: the refund of what is left and the units' return. Before:
        the workflow waiting for the payment is told (a spent token is no error); it cancels the payment and releases
        the stock. A workflow that has not registered its token yet finds the order cancelled when it does (or when
        it creates the payment)."""
        cancellation = order.cancellation
        if cancellation is None:
            return order  # ended by its workflow, not by an operator: nothing of ours to finish
        if cancellation.after_payment:
            self._payments.finish(order.id)
            refreshed = self._orders.get(order.id)
            assert refreshed is not None
            return refreshed
        if order.task_token:
            self._workflow.fail(order.task_token, ORDER_CANCELLED_ERROR, f"cancelled: {cancellation.reason}")
        return order
