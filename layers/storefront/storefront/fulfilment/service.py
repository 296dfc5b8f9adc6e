"""Fulfilment rules: one shipment per paid order, and the carrier's tracking updates moving the order on.

    paid --(shipment created)--> fulfilling --(in_transit)--> shipped --(delivered)--> delivered

Both halves are safe to repeat. The shipment is created with the order's idempotency key, so a message
delivered twice (or a crash after the carrier answered) gets the same shipment back. Tracking updates are
ordered by the carrier's `occurred_at`: the newest one is what the order shows, an older one can only move
the order's status on (which only ever moves forward), duplicates change nothing, and a delivered parcel's
record is final.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from storefront.errors import StorefrontError
from storefront.fulfilment.carriers import Carrier
from storefront.fulfilment.models import (
    ORDER_STATUS_FOR,
    ShipmentRequest,
    TrackingEvent,
    TrackingStatus,
    TrackingUpdate,
)
from storefront.observability import count
from storefront.orders.models import Fulfilment, OrderStatus, StoredOrder
from storefront.orders.repository import Orders, TransitionRefused
from storefront.webhooks import UnknownWebhookSender, parse_event, verify_signature

log = logging.getLogger("storefront.fulfilment")

S = OrderStatus
# The fulfilment part of an order's life, in order: tracking updates walk it forward, one step at a time.
FULFILMENT_PATH = [S.PAID, S.FULFILLING, S.SHIPPED, S.DELIVERED]
# A parcel's tracking statuses, in order (an exception can happen at any point, so it is first: never "further").
TRACKING_SEQUENCE = [
    TrackingStatus.EXCEPTION,
    TrackingStatus.LABEL_CREATED,
    TrackingStatus.IN_TRANSIT,
    TrackingStatus.OUT_FOR_DELIVERY,
    TrackingStatus.DELIVERED,
]
TRACKING_WRITE_ATTEMPTS = 5
# Business metrics for the fulfilment moves (the workflow counts paid and the other ends).
STATUS_METRICS = {S.FULFILLING: "OrdersFulfilling", S.SHIPPED: "OrdersShipped", S.DELIVERED: "OrdersDelivered"}


class UnknownOrder(Exception):
    """A message names an order we do not have: a poison message (retried, then dead-lettered)."""


class OrderNotReady(Exception):
    """The order is not paid yet. The workflow only queues paid orders, so retry; if it persists, the DLQ."""


class NotYetFulfilling(StorefrontError):
    """A tracking update overtook our own record of the shipment: the carrier retries it a little later."""

    status, code, title = 409, "not_yet_fulfilling", "Order not yet fulfilling"


class TrackingConflict(StorefrontError):
    """Concurrent tracking updates kept overtaking this one: the carrier retries it a little later."""

    status, code, title = 409, "tracking_conflict", "Tracking update conflict"


class FulfilmentService:
    def __init__(
        self,
        orders: Orders,
        carrier: Carrier,
        webhook_secrets: Callable[[], list[str]],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._orders = orders
        self._carrier = carrier
        self._webhook_secrets = webhook_secrets  # read per webhook (storefront.secrets caches it)
        self._clock = clock

    # ---------------------------------------------------------------- the fulfilment queue

    def fulfil(self, order_id: str) -> str:
        """Create the order's shipment and move it to fulfilling; returns what happened. Raising leaves the
        message on the queue: it comes back after the visibility timeout, and ends in the DLQ if it keeps failing."""
        order = self._orders.get(order_id)
        if order is None:
            raise UnknownOrder(f"no order {order_id}")
        if order.status in (S.FULFILLING, S.SHIPPED, S.DELIVERED):
            return "already_fulfilling"  # a redelivered message: the first delivery did it
        if order.status == S.CANCELLED:
            return "cancelled"  # cancelled after payment and before fulfilment: nothing to ship (the
            # cancellation cancelled any shipment it knew of; one created by a racing delivery is cancelled below)
        if order.status != S.PAID:
            raise OrderNotReady(f"order {order_id} is {order.status}, not paid")
        # The key names the order: a repeated request returns the first shipment instead of a second parcel.
        shipment = self._carrier.create_shipment(ShipmentRequest.for_order(order), idempotency_key=f"order-{order.id}")
        fulfilment = Fulfilment(
            status=shipment.status,
            carrier=self._carrier.name,
            tracking_number=shipment.tracking_number,
            tracking_url=shipment.tracking_url,
        )
        try:
            self._orders.transition(
                order.id,
                S.FULFILLING,
                self._clock(),
                shipment_id=shipment.id,
                fulfilment=fulfilment.model_dump(exclude_none=True),
            )
        except TransitionRefused as refused:
            if refused.order is not None and refused.order.status in (S.FULFILLING, S.SHIPPED, S.DELIVERED):
                return "already_fulfilling"  # a concurrent delivery of the same message got there first
            if refused.order is not None and refused.order.status == S.CANCELLED:
                # Cancelled while we asked the carrier: the parcel we just created must not go out. Raising (the
                # carrier down, say) retries the message, which comes back here and cancels it again.
                self._carrier.cancel_shipment(shipment.id)
                log.warning(
                    "order %s was cancelled while its shipment %s was created: shipment cancelled",
                    order.id,
                    shipment.id,
                    extra={"order_id": order.id},
                )
                return "cancelled"
            raise
        count(STATUS_METRICS[S.FULFILLING])
        return "shipment_created"

    # ---------------------------------------------------------------- tracking webhooks

    def receive_tracking_webhook(self, carrier: str, payload: bytes, signature_header: str | None) -> None:
        """Verify and apply one tracking update. Raising means "not processed": the carrier retries."""
        if carrier != self._carrier.name:
            raise UnknownWebhookSender(f"No carrier named {carrier!r}.")
        verify_signature(
            payload, signature_header, self._webhook_secrets(), header_name="Carrier-Signature", sender="carrier"
        )
        event: TrackingEvent = parse_event(payload, TrackingEvent, "a tracking event")
        self._apply(event.id, event.data)

    def _apply(self, event_id: str, update: TrackingUpdate) -> None:
        # Each write expects the tracking time it read: of two concurrent updates, the one that writes second
        # reads again and decides again, instead of overwriting a newer one.
        for _ in range(TRACKING_WRITE_ATTEMPTS):
            order = self._orders.get(update.reference)
            if order is None or (order.shipment_id is not None and order.shipment_id != update.shipment_id):
                # Redelivering cannot make it ours: acknowledge it, and leave a trace for a person.
                log.error(
                    "tracking event %s names shipment %s of order %s, which has no such shipment",
                    event_id,
                    update.shipment_id,
                    update.reference,
                    extra={"order_id": update.reference},
                )
                return
            if order.status not in FULFILMENT_PATH:
                log.error(
                    "tracking event %s for order %s, which is %s",
                    event_id,
                    order.id,
                    order.status,
                    extra={"order_id": order.id},
                )
                return
            if order.status == S.PAID or order.fulfilment is None:
                raise NotYetFulfilling("The shipment is not recorded on the order yet; retry shortly.")
            newer, target = _is_newer(update, order), _order_status(update, order)
            if order.status == S.DELIVERED or (not newer and target == order.status):
                log.info(
                    "tracking event %s (%s) is old news for order %s (%s)",
                    event_id,
                    update.status,
                    order.id,
                    order.status,
                    extra={"order_id": order.id},
                )
                return
            try:
                self._record(order, update, newer, target)
                return
            except TransitionRefused:
                continue  # another update wrote first: read again and decide again
        raise TrackingConflict("Other tracking updates of this shipment are being applied; retry shortly.")

    def _record(self, order: StoredOrder, update: TrackingUpdate, newer: bool, target: OrderStatus) -> None:
        """The order walked forward to `target`, and, if the update is the newest news, its tracking status and
        time recorded. An older update can still move the order on (in_transit after a newer exception means
        shipped) without hiding the newer status. delivered may overtake in_transit, so the walk passes through
        shipped and history and events stay complete; a crash part-way is finished by the carrier's retry."""
        if update.status == TrackingStatus.EXCEPTION:
            log.warning(
                "carrier reports a problem with shipment %s of order %s",
                update.shipment_id,
                order.id,
                extra={"order_id": order.id},
            )
        fields: dict[str, Any] = {}
        if newer:
            assert order.fulfilment is not None  # _apply waits (NotYetFulfilling) until the shipment is recorded
            tracking = order.fulfilment.model_copy(update={"status": update.status})
            fields = {"fulfilment": tracking.model_dump(exclude_none=True), "tracking_at": _stamp(update.occurred_at)}
        expect = {"tracking_at": order.tracking_at and _stamp(order.tracking_at)}
        current, goal = FULFILMENT_PATH.index(order.status), FULFILMENT_PATH.index(target)
        if goal == current:  # news within the same order status: out_for_delivery while shipped, an exception
            self._orders.update_fields(order.id, condition_status={order.status}, expect=expect, **fields)
            return
        for step in FULFILMENT_PATH[current + 1 : goal + 1]:
            self._orders.transition(order.id, step, self._clock(), expect=expect, **fields)
            count(STATUS_METRICS[step])  # each move is written once (the next attempt finds it made), so counted once
            expect = {"tracking_at": fields.get("tracking_at", expect["tracking_at"])}


def _order_status(update: TrackingUpdate, order: StoredOrder) -> OrderStatus:
    """The order status an update means; never backwards (a parcel back at the depot is still shipped)."""
    meant = ORDER_STATUS_FOR.get(update.status, order.status)  # an exception says nothing about where it is
    return max(meant, order.status, key=FULFILMENT_PATH.index)


def _is_newer(update: TrackingUpdate, order: StoredOrder) -> bool:
    """Whether the update is the parcel's newest news: after the newest one recorded, or at the same time (carriers'
    clocks often tick in seconds) and a step further along. A duplicate is not."""
    if order.tracking_at is None or update.occurred_at > order.tracking_at:
        return True
    if update.occurred_at < order.tracking_at:
        return False
    recorded = TrackingStatus(order.fulfilment.status) if order.fulfilment else TrackingStatus.LABEL_CREATED
    return TRACKING_SEQUENCE.index(update.status) > TRACKING_SEQUENCE.index(recorded)


def _stamp(moment: datetime) -> str:
    """How a tracking time is stored, and compared in conditions: ISO 8601 in UTC."""
    return moment.astimezone(UTC).isoformat()
