"""Fulfilment rules: one shipment per paid order, and the carrier's tracking updates moving the order on.

    paid --(shipment created)--> fulfilling --(in_transit)--> shipped --(delivered)--> delivered

Both halves are safe to repeat. The shipment is created with the order's idempotency key, so a message
delivered twice (or a crash after the carrier answered) gets the same shipment back; tracking updates only
ever move an order forward, so duplicates and late, out-of-order updates change nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from storefront.errors import StorefrontError
from storefront.fulfilment.carriers import Carrier
from storefront.fulfilment.models import (
    ORDER_STATUS_FOR,
    ShipmentRequest,
    TrackingEvent,
    TrackingStatus,
    TrackingUpdate,
)
from storefront.orders.models import Fulfilment, OrderStatus
from storefront.orders.repository import Orders, TransitionRefused
from storefront.webhooks import UnknownWebhookSender, parse_event, verify_signature

log = logging.getLogger("storefront.fulfilment")

S = OrderStatus
# The fulfilment part of an order's life, in order: tracking updates walk it forward, one step at a time.
FULFILMENT_PATH = [S.PAID, S.FULFILLING, S.SHIPPED, S.DELIVERED]
TRACKING_RANK = {TrackingStatus.EXCEPTION: -1, TrackingStatus.LABEL_CREATED: 0, TrackingStatus.IN_TRANSIT: 1,
                 TrackingStatus.OUT_FOR_DELIVERY: 2, TrackingStatus.DELIVERED: 3}


class UnknownOrder(Exception):
    """A message names an order we do not have: a poison message (retried, then dead-lettered)."""


class OrderNotReady(Exception):
    """The order is not paid yet. The workflow only queues paid orders, so retry; if it persists, the DLQ."""


class NotYetFulfilling(StorefrontError):
    """A tracking update overtook our own record of the shipment: the carrier retries it a little later."""

    status, code, title = 409, "not_yet_fulfilling", "Order not yet fulfilling"


class FulfilmentService:
    def __init__(self, orders: Orders, carrier: Carrier, webhook_secrets: Callable[[], list[str]],
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
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
            return "cancelled"  # cancelled after payment and before fulfilment: nothing to ship
        if order.status != S.PAID:
            raise OrderNotReady(f"order {order_id} is {order.status}, not paid")
        # The key names the order: a repeated request returns the first shipment instead of a second parcel.
        shipment = self._carrier.create_shipment(ShipmentRequest.for_order(order), idempotency_key=f"order-{order.id}")
        fulfilment = Fulfilment(status=shipment.status, carrier=self._carrier.name,
                                tracking_number=shipment.tracking_number, tracking_url=shipment.tracking_url)
        try:
            self._orders.transition(order.id, S.FULFILLING, self._clock(), shipment_id=shipment.id,
                                    fulfilment=fulfilment.model_dump(exclude_none=True))
        except TransitionRefused as refused:
            if refused.order is not None and refused.order.status in (S.FULFILLING, S.SHIPPED, S.DELIVERED):
                return "already_fulfilling"  # a concurrent delivery of the same message got there first
            raise
        return "shipment_created"

    # ---------------------------------------------------------------- tracking webhooks

    def receive_tracking_webhook(self, carrier: str, payload: bytes, signature_header: str | None) -> None:
        """Verify and apply one tracking update. Raising means "not processed": the carrier retries."""
        if carrier != self._carrier.name:
            raise UnknownWebhookSender(f"No carrier named {carrier!r}.")
        verify_signature(payload, signature_header, self._webhook_secrets(), header_name="Carrier-Signature",
                         sender="carrier")
        event: TrackingEvent = parse_event(payload, TrackingEvent, "a tracking event")
        self._apply(event.id, event.data)

    def _apply(self, event_id: str, update: TrackingUpdate) -> None:
        order = self._orders.get(update.reference)
        if order is None or (order.shipment_id is not None and order.shipment_id != update.shipment_id):
            # Redelivering cannot make it ours: acknowledge it, and leave a trace for a person.
            log.error("tracking event %s names shipment %s of order %s, which has no such shipment",
                      event_id, update.shipment_id, update.reference, extra={"order_id": update.reference})
            return
        if order.status not in FULFILMENT_PATH:
            log.error("tracking event %s for order %s, which is %s", event_id, order.id, order.status,
                      extra={"order_id": order.id})
            return
        if order.status == S.PAID or order.fulfilment is None:
            raise NotYetFulfilling("The shipment is not recorded on the order yet; retry shortly.")
        fulfilment = order.fulfilment.model_copy(update={"status": update.status}).model_dump(exclude_none=True)
        if update.status == TrackingStatus.EXCEPTION:
            log.warning("carrier reports a problem with shipment %s of order %s", update.shipment_id, order.id,
                        extra={"order_id": order.id})
        target = ORDER_STATUS_FOR.get(update.status, order.status)  # an exception leaves the order where it is
        current = FULFILMENT_PATH.index(order.status)
        if FULFILMENT_PATH.index(target) > current:
            # delivered may overtake in_transit: walk through shipped, so history and events stay complete
            for step in FULFILMENT_PATH[current + 1:FULFILMENT_PATH.index(target) + 1]:
                try:
                    self._orders.transition(order.id, step, self._clock(), fulfilment=fulfilment)
                except TransitionRefused:
                    pass  # a concurrent duplicate of this update made the move
        elif target == order.status and _is_news(update.status, order.fulfilment.status):
            try:  # news within the same order status (out_for_delivery while shipped, an exception)
                self._orders.update_fields(order.id, condition_status={order.status}, fulfilment=fulfilment)
            except TransitionRefused:
                pass  # moved on meanwhile: the newer update wins
        else:
            log.info("tracking event %s (%s) is old news for order %s (%s)", event_id, update.status, order.id,
                     order.status, extra={"order_id": order.id})


def _is_news(update: TrackingStatus, recorded: str) -> bool:
    """Whether an update within the same order status says something new: a step further, or a problem."""
    if update == recorded:
        return False
    return update == TrackingStatus.EXCEPTION or TRACKING_RANK[update] > TRACKING_RANK.get(TrackingStatus(recorded), -1)
