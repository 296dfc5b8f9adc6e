"""Checkout and order rules: one order per cart, priced from the current catalog, handed to the workflow;
and the workflow's status steps (forward-only, safe to retry)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from storefront.cart.service import CartService
from storefront.errors import InsufficientStock, NotFound, ValidationFailed
from storefront.inventory.repository import InventoryRepository
from storefront.limits.models import ClientHold
from storefront.limits.repository import ClientHoldRepository
from storefront.limits.service import ClientLimits
from storefront.observability import count
from storefront.orders.models import (
    ENDED_UNPAID,
    PAID_ON,
    CheckoutRequest,
    HistoryEntry,
    Order,
    OrderStatus,
    PaymentStatus,
    Reason,
    StoredOrder,
    email_key,
)
from storefront.orders.repository import (
    CartAlreadyOrdered,
    GuardRefused,
    OrderRepository,
    TransitionRefused,
    reconcile_shard,
)
from storefront.orders.workflow import OrderWorkflow

# The workflow's status moves, as business metrics (orders placed are counted at checkout).
ORDER_ENDED_METRICS = {
    OrderStatus.PAID: "OrdersPaid",
    OrderStatus.REJECTED: "OrdersRejected",
    OrderStatus.PAYMENT_FAILED: "OrdersPaymentFailed",
    OrderStatus.EXPIRED: "OrdersExpired",
    OrderStatus.CANCELLED: "OrdersCancelled",
}
ORDER_ID_BYTES = 24  # 192 random bits: order ids are capabilities (and valid execution names)
# An order holds stock (and its places in its clients' limits) while in these statuses.
HOLDING_STOCK = frozenset({OrderStatus.PENDING, OrderStatus.AWAITING_PAYMENT})
# How long after its workflow should have ended (payment window + processing grace) the reconciler looks at an
# order: by then a healthy workflow has settled it, so what the reconciler finds unsettled is stuck.
RECONCILE_MARGIN = timedelta(minutes=15)


class CheckoutService:
    def __init__(
        self,
        pricing: CartService,
        orders: OrderRepository,
        workflow: OrderWorkflow,
        inventory: InventoryRepository,
        limits: ClientLimits,
        now: Callable[[], datetime],
    ) -> None:
        self._pricing = pricing
        self._orders = orders
        self._workflow = workflow
        self._inventory = inventory
        self._limits = limits
        self._now = now

    def checkout(self, request: CheckoutRequest, source_ip: str) -> tuple[Order, bool]:
        """The cart's order, and whether this call created it (False: the cart was already checked out).
        `source_ip` is the client's address, for the per-client limits."""
        existing = self._orders.order_for_cart(request.cart_id)
        if existing:
            return self._existing(existing), False
        cart = self._pricing.get(request.cart_id)  # 404 when unknown or expired
        # An item taken off sale is the reason to give first (its line is no longer priced, so the cart looks empty).
        problems = [
            {"sku": w.sku, "code": w.code, "message": w.message}
            for w in cart.warnings
            if w.code == "product_unavailable"
        ]
        if not cart.lines and not problems:
            problems.append({"field": "cart_id", "code": "empty_cart", "message": "the cart has no items"})
        if cart.shipping is None:
            problems.append({"field": "cart_id", "code": "shipping_required", "message": "choose a shipping method"})
        elif cart.shipping.country != request.shipping_address.country:
            problems.append(
                {
                    "field": "shipping_address.country",
                    "code": "shipping_country_mismatch",
                    "message": f"the shipping method chosen is for {cart.shipping.country}",
                }
            )
        if problems:
            raise ValidationFailed(problems[0]["code"], "The cart cannot be checked out yet; see `errors`.", problems)
        self._limits.check_units(cart.lines)
        if short := [w.sku for w in cart.warnings if w.code == "insufficient_stock"]:
            self._refuse_sold_out(short)
        assert cart.shipping is not None
        now = self._now()
        order_id = secrets.token_urlsafe(ORDER_ID_BYTES)
        hold = self._limits.hold_for(order_id, request.email, source_ip, now)
        order = StoredOrder(
            id=order_id,
            status=OrderStatus.PENDING,
            cart_id=cart.id,
            email=request.email,
            email_key=email_key(request.email),
            lines=cart.lines,
            totals=cart.totals,
            shipping_address=request.shipping_address,
            shipping=cart.shipping,
            history=[HistoryEntry(status=OrderStatus.PENDING, at=now)],
            created_at=now,
            updated_at=now,
            client_hold=hold,
            # On the reconciler's list from the start: an order whose workflow died is found without a Scan.
            reconcile_shard=reconcile_shard(order_id),
            reconcile_at=(now + self._workflow.longest_wait + RECONCILE_MARGIN).isoformat(),
        )
        try:
            self._store(order, hold)
        except CartAlreadyOrdered as race:  # a concurrent checkout of the same cart won
            return self._existing(race.order_id), False
        self._workflow.start(order.id, _stock_lines(order))
        count("OrdersPlaced")
        return order.public(), True

    def _store(self, order: StoredOrder, hold: ClientHold) -> None:
        """The order, its cart claim and its places in its clients' limits, in one transaction. A client at its limit
        is refused (429), unless some of its places had lapsed: those are given back and the order stored again."""
        for attempt in range(2):
            try:
                self._orders.create(order, guards=self._limits.writes(hold))
                return
            except GuardRefused as refused:
                self._limits.refused(hold, refused.index, refused.item, self._now(), may_clear=attempt == 0)

    def _refuse_sold_out(self, skus: list[str]) -> None:
        """The sold-out fast path: current availability cannot fill the cart, so no order and no workflow (a flash
        sale's losing checkouts cost the cart's reads, nothing more). Availability may still change before the
        reservation, which alone is exact: an order that passes here can still end `rejected`."""
        available = self._inventory.available(skus)
        count("CheckoutsRefusedSoldOut")
        raise InsufficientStock(
            "Not enough stock for this cart any more: "
            + ", ".join(f"{sku} ({available[sku]} available)" for sku in skus)
            + ".",
            [
                {
                    "sku": sku,
                    "code": "insufficient_stock",
                    "available": available[sku],
                    "message": f"{available[sku]} available",
                }
                for sku in skus
            ],
        )

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

    def __init__(self, orders: OrderRepository, holds: ClientHoldRepository, now: Callable[[], datetime]) -> None:
        self._orders = orders
        self._holds = holds
        self._now = now

    def move(self, order_id: str, to: OrderStatus, reason: Reason | None = None) -> dict[str, Any]:
        """Move the order to `to`. An order ends unpaid only if its payment did not succeed meanwhile: then the
        answer says `paid`, and the workflow goes on as for a paid order. So it does for an order already past
        payment (a recovery run the reconciler started a moment after the order was paid): its stock is committed,
        and committing it again is a no-op where releasing it would fail."""
        fields = {"reason": reason.model_dump(exclude_none=True)} if reason else {}
        try:
            order = self._orders.transition(order_id, to, self._now(), unless_paid=to in ENDED_UNPAID, **fields)
        except TransitionRefused as refused:
            if refused.order is None:
                raise NotFound(f"order {order_id} does not exist") from refused
            # Already there (a retried step), or moved on by something else: nothing to move. The first attempt
            # may have died before it gave the client's places back, so that is done (again: it is idempotent).
            current = refused.order
            self._give_back_places(current)
            paid = current.status in PAID_ON or (
                current.status == OrderStatus.AWAITING_PAYMENT
                and current.payment is not None
                and current.payment.status == PaymentStatus.SUCCEEDED
            )
            return {"status": current.status.value, "changed": False, "paid": paid}
        count(ORDER_ENDED_METRICS[to])
        self._give_back_places(order)
        return {"status": order.status.value, "changed": True, "paid": False}

    def _give_back_places(self, order: StoredOrder) -> None:
        """An order that no longer holds stock no longer counts against its clients' limits."""
        if order.client_hold is not None and order.status not in HOLDING_STOCK:
            self._holds.release(order.client_hold)

    def needs_repair(self, order_id: str, step: str, error: str) -> dict[str, Any]:
        """A workflow step failed for good: hand the order to the reconciler, due now, and raise the alarm."""
        now = self._now()
        self._orders.mark_due(
            order_id, now.isoformat(), repair={"step": step, "error": error[:1000], "at": now.isoformat()}
        )
        count("SagaRepairsNeeded")
        return {"repair": step}
