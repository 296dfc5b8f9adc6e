"""Checkout and order rules: one order per cart, priced from the current catalog, handed to the workflow;
and the workflow's status steps (forward-only, safe to retry)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

from storefront.cart.service import CartService
from storefront.errors import InsufficientStock, NotFound, ValidationFailed
from storefront.inventory.repository import InventoryRepository
from storefront.observability import count
from storefront.orders.models import CheckoutRequest, Order, OrderStatus, Reason, StoredOrder, email_key
from storefront.orders.repository import CartAlreadyOrdered, OrderRepository, TransitionRefused
from storefront.orders.workflow import OrderWorkflow

# The workflow's status moves, as business metrics (orders placed are counted at checkout).
ORDER_ENDED_METRICS = {OrderStatus.PAID: "OrdersPaid", OrderStatus.REJECTED: "OrdersRejected",
                       OrderStatus.PAYMENT_FAILED: "OrdersPaymentFailed", OrderStatus.EXPIRED: "OrdersExpired",
                       OrderStatus.CANCELLED: "OrdersCancelled"}
ORDER_ID_BYTES = 24  # 192 random bits: order ids are capabilities (and valid execution names)


class CheckoutService:
    def __init__(self, pricing: CartService, orders: OrderRepository, workflow: OrderWorkflow,
                 inventory: InventoryRepository, now: Callable[[], datetime]) -> None:
        self._pricing = pricing
        self._orders = orders
        self._workflow = workflow
        self._inventory = inventory
        self._now = now

    def checkout(self, request: CheckoutRequest) -> tuple[Order, bool]:
        """The cart's order, and whether this call created it (False: the cart was already checked out)."""
        existing = self._orders.order_for_cart(request.cart_id)
        if existing:
            return self._existing(existing), False
        cart = self._pricing.get(request.cart_id)  # 404 when unknown or expired
        # An item taken off sale is the reason to give first (its line is no longer priced, so the cart looks empty).
        problems = [{"sku": w.sku, "code": w.code, "message": w.message}
                    for w in cart.warnings if w.code == "product_unavailable"]
        if not cart.lines and not problems:
            problems.append({"field": "cart_id", "code": "empty_cart", "message": "the cart has no items"})
        if cart.shipping is None:
            problems.append({"field": "cart_id", "code": "shipping_required", "message": "choose a shipping method"})
        elif cart.shipping.country != request.shipping_address.country:
            problems.append({"field": "shipping_address.country", "code": "shipping_country_mismatch",
                             "message": f"the shipping method chosen is for {cart.shipping.country}"})
        if problems:
            raise ValidationFailed(problems[0]["code"], "The cart cannot be checked out yet; see `errors`.", problems)
        if short := [w.sku for w in cart.warnings if w.code == "insufficient_stock"]:
            self._refuse_sold_out(short)
        assert cart.shipping is not None
        now = self._now()
        order = StoredOrder(
            id=secrets.token_urlsafe(ORDER_ID_BYTES), status=OrderStatus.PENDING, cart_id=cart.id,
            email=request.email, email_key=email_key(request.email), lines=cart.lines, totals=cart.totals,
            shipping_address=request.shipping_address,
            shipping=cart.shipping, history=[{"status": OrderStatus.PENDING, "at": now}], created_at=now, updated_at=now,
        )
        try:
            self._orders.create(order)
        except CartAlreadyOrdered as race:  # a concurrent checkout of the same cart won
            return self._existing(race.order_id), False
        self._workflow.start(order.id, _stock_lines(order))
        count("OrdersPlaced")
        return order.public(), True

    def _refuse_sold_out(self, skus: list[str]) -> None:
        """The sold-out fast path: current availability cannot fill the cart, so no order and no workflow (a flash
        sale's losing checkouts cost the cart's reads, nothing more). Availability may still change before the
        reservation, which alone is exact: an order that passes here can still end `rejected`."""
        available = self._inventory.available(skus)
        count("CheckoutsRefusedSoldOut")
        raise InsufficientStock(
            "Not enough stock for this cart any more: " + ", ".join(f"{sku} ({available[sku]} available)"
                                                                    for sku in skus) + ".",
            [{"sku": sku, "code": "insufficient_stock", "available": available[sku],
              "message": f"{available[sku]} available"} for sku in skus])

    def get(self, order_id: str) -> Order:
        order = self._orders.get(order_id) if len(order_id) <= 64 else None
        if order is None:
            raise NotFound("There is no such order.")
        return order.public()

    def _existing(self, order_id: str) -> Order:
        order = self._orders.get(order_id)
        if order is None:
            raise NotFound("There is no such order.")
        if order.status == OrderStatus.PENDING:
            # The first checkout may have stored the order and died before starting its workflow.
            self._workflow.start(order.id, _stock_lines(order))
        return order.public()


def _stock_lines(order: StoredOrder) -> list[dict[str, Any]]:
    return [{"sku": line.sku, "quantity": line.quantity} for line in order.lines]


class OrderSteps:
    """The status moves the workflow makes. Each is idempotent: a retried step finds the order already moved."""

    def __init__(self, orders: OrderRepository, now: Callable[[], datetime]) -> None:
        self._orders = orders
        self._now = now

    def move(self, order_id: str, to: OrderStatus, reason: Reason | None = None) -> dict[str, Any]:
        fields = {"reason": reason.model_dump(exclude_none=True)} if reason else {}
        try:
            order = self._orders.transition(order_id, to, self._now(), **fields)
        except TransitionRefused as refused:
            if refused.order is None:
                raise NotFound(f"order {order_id} does not exist") from refused
            # Already there (a retried step), or moved on by something else: either way, nothing to do.
            return {"status": refused.order.status.value, "changed": False}
        count(ORDER_ENDED_METRICS[to])
        return {"status": order.status.value, "changed": True}
