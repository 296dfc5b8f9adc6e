"""Fulfilment shapes: the queue message, the carrier's shipment, and the carrier's signed tracking updates.

The carrier contract (docs/architecture.md, "Fulfilment") is a small, common 3PL shape:
    POST /v1/shipments  (Authorization: Bearer <key>, Idempotency-Key)  -> {"id", "status", "tracking_number", ...}
    webhooks to /webhooks/carriers/{carrier}, signed with Carrier-Signature (Stripe's HMAC scheme):
    {"id": "evt_...", "type": "shipment.updated", "data": {"shipment_id", "tracking_number", "reference",
                                                           "status", "occurred_at"}}
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from storefront.orders.models import Order, OrderStatus

Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_\-]+$")]


class FulfilmentRequest(BaseModel):
    """The order workflow's message on the fulfilment queue, once an order is paid and its stock committed."""

    model_config = ConfigDict(extra="forbid")
    order_id: Identifier


class TrackingStatus(StrEnum):
    LABEL_CREATED = "label_created"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    EXCEPTION = "exception"  # delayed, damaged, address problem: the carrier keeps trying; people look


# The order status each tracking status means. An exception says nothing new about where the parcel is.
ORDER_STATUS_FOR: dict[TrackingStatus, OrderStatus] = {
    TrackingStatus.LABEL_CREATED: OrderStatus.FULFILLING,
    TrackingStatus.IN_TRANSIT: OrderStatus.SHIPPED,
    TrackingStatus.OUT_FOR_DELIVERY: OrderStatus.SHIPPED,
    TrackingStatus.DELIVERED: OrderStatus.DELIVERED,
}


class Shipment(BaseModel):
    """What the carrier answers when a shipment is created (and again, unchanged, for a repeated request)."""

    model_config = ConfigDict(extra="ignore")
    id: Identifier
    status: TrackingStatus
    tracking_number: Annotated[str, Field(min_length=1, max_length=64)]
    tracking_url: Annotated[str, Field(max_length=2048, pattern=r"^https?://")]
    reference: Identifier


class TrackingUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    shipment_id: Identifier
    tracking_number: Annotated[str, Field(min_length=1, max_length=64)]
    reference: Identifier  # our order id, as we gave it when creating the shipment
    status: TrackingStatus
    occurred_at: AwareDatetime  # the carrier's time of the event: updates are ordered by it


class TrackingEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: Annotated[str, Field(min_length=1, max_length=255)]
    type: Literal["shipment.updated"]
    data: TrackingUpdate


class Recipient(BaseModel):
    name: str
    line1: str
    line2: str | None = None
    city: str
    postal_code: str
    country: str
    email: str


class ShipmentItem(BaseModel):
    sku: str
    title: str
    quantity: int


class ShipmentRequest(BaseModel):
    """POST /v1/shipments: the parcel for one order. `reference` (the order id) comes back in every update."""

    reference: str
    service: str  # the shipping method the customer chose (standard, express, ...)
    recipient: Recipient
    items: list[ShipmentItem]

    @classmethod
    def for_order(cls, order: Order) -> ShipmentRequest:
        return cls(
            reference=order.id,
            service=order.shipping.method,
            recipient=Recipient(**order.shipping_address.model_dump(), email=order.email),
            items=[ShipmentItem(sku=line.sku, title=line.title, quantity=line.quantity) for line in order.lines],
        )
