"""Payment and refund bookkeeping on the order, shared by the webhook receiver (which holds no provider key) and
the payment tasks (which call the provider): each write is conditional, so whichever of them learns an outcome
first records it, and the other finds it recorded.

    payment  pending -> processing -> declined ... -> failed -> canceled      (PAYMENT_MOVES: never after succeeded)
    refund   pending -> succeeded | failed (a failed refund gives its amount back to what may be refunded)
The provider's refund statuses map onto the refund's (REFUND_OUTCOMES): Stripe's `canceled` (a refund that waited
for the customer's action, or was canceled) is a failed one; `pending` and `requires_action` leave it pending, and
Stripe settles a `requires_action` refund within 45 days (it cancels it when the customer never acts).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from storefront.observability import count
from storefront.orders.models import StoredOrder
from storefront.orders.repository import OrderRepository, TransitionRefused

log = logging.getLogger("storefront.payments")

# How soon the reconciler looks at an order whose refund, cancellation or repair is not finished yet: the
# request that started the work normally finishes it first.
RECONCILE_DELAY = timedelta(minutes=5)
# The provider's final refund statuses, as the refund records them; any other status leaves the refund pending.
REFUND_OUTCOMES = {"succeeded": "succeeded", "failed": "failed", "canceled": "failed"}


def due(now: datetime, delay: timedelta = RECONCILE_DELAY) -> str:
    return (now + delay).isoformat()


def find_refund(order: StoredOrder, refund_id: str) -> int | None:
    return next((i for i, refund in enumerate(order.refunds) if refund.id == refund_id), None)


def settle_refund(
    orders: OrderRepository,
    order: StoredOrder,
    refund_id: str,
    provider_status: str,
    provider_refund_id: str | None = None,
) -> StoredOrder:
    """Record what the provider says of one of the order's refunds: `pending` or `requires_action` (with its id),
    `succeeded`, or `failed`/`canceled` (its amount given back), exactly once however often and in whatever order it
    is told."""
    for _ in range(3):
        index = find_refund(order, refund_id)
        if index is None:
            log.error("order %s has no refund %s", order.id, refund_id, extra={"order_id": order.id})
            return order
        refund = order.refunds[index]
        changes: dict[str, object] = {}
        if provider_refund_id and refund.provider_refund_id != provider_refund_id:
            changes["provider_refund_id"] = provider_refund_id
        outcome = REFUND_OUTCOMES.get(provider_status)
        settled = outcome is not None and refund.status == "pending"
        if settled:
            changes["status"] = outcome
        elif provider_status == "requires_action" and refund.status == "pending":
            log.warning(
                "refund %s of order %s waits for the customer's action at the provider",
                refund_id,
                order.id,
                extra={"order_id": order.id},
            )
        if not changes:
            return order  # nothing new: a duplicate, or news about a refund already settled
        try:
            order = orders.update_refund(
                order.id,
                index,
                refund_id,
                expect_status=refund.status,
                give_back=refund.amount.amount if settled and outcome == "failed" else 0,
                **changes,
            )
        except TransitionRefused as refused:
            if refused.order is None:
                return order
            order = refused.order  # another writer settled or changed it meanwhile: decide again on what it wrote
            continue
        if settled and outcome == "succeeded":
            count("RefundsSucceeded")
        elif settled:
            count("RefundsFailed")
            log.error(
                "refund %s of order %s %s at the provider",
                refund_id,
                order.id,
                provider_status,
                extra={"order_id": order.id},
            )
        return order
    return order
