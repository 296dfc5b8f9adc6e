"""The reconciler's sweeps. Each is idempotent (every fix is a movement or a task that is itself idempotent), reads
sparse indexes rather than scanning, and counts what it fixed (one metric per kind of fix, zeros included, so a
dashboard shows it ran).

  orders due        every order is on the orders table's ByReconcileDue index from checkout until it is settled,
                    and work that must not be lost puts it back, due soon (a refund, a cancellation, a workflow
                    step that failed for good). For each order due:
                      still in flight (pending, awaiting_payment) and its workflow not running any more (it timed
                        out, was stopped, or never started) -> a recovery execution, which asks the provider at
                        once; every step of the saga is idempotent, so it finishes the order where it was left
                      a failed workflow step (repair) -> done now: commit or release through the stock function
                        (as the order's end says: release only an order that ended unpaid), the fulfilment message
                        sent
                      refunds not settled, a cancellation's refund missing -> the payment tasks function settles them
                      nothing left -> off the list (a conditional write: new work put on it meanwhile wins)
  held reservations reservation lines still reserved longer than the payment window and its grace allow
                    (ByHeldSince): an order that ended unpaid, or never existed -> released; an order that was
                    paid -> committed (its commit failed); an order still in flight is the sweep above's
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from storefront.inventory.repository import HELD_SHARDS, InventoryRepository
from storefront.observability import count
from storefront.orders.models import ENDED_UNPAID, PAID_ON, OrderStatus, StoredOrder
from storefront.orders.repository import RECONCILE_SHARDS, OrderRepository
from storefront.orders.workflow import OrderWorkflow

log = logging.getLogger("storefront.reconciler")

S = OrderStatus
IN_FLIGHT = frozenset({S.PENDING, S.AWAITING_PAYMENT})
LOOK_AGAIN = timedelta(minutes=15)  # how long before an order whose work is still under way is looked at again
RECOVERY_PAYMENT_TIMEOUT_SECONDS = 1  # a recovery execution asks the provider at once
FIXES = (
    "ReconcilerWorkflowsRestarted",
    "ReconcilerRepairsDone",
    "ReconcilerRefundsSettled",
    "ReconcilerReservationsReleased",
    "ReconcilerReservationsCommitted",
)


class Stock(Protocol):
    def move(self, event: dict[str, Any]) -> dict[str, Any]: ...


class Payments(Protocol):
    def finish(self, order_id: str) -> int: ...


class FulfilmentQueue(Protocol):
    def send(self, order_id: str) -> None: ...


class Reconciler:
    def __init__(
        self,
        orders: OrderRepository,
        inventory: InventoryRepository,
        stock: Stock,
        payments: Payments,
        workflow: OrderWorkflow,
        fulfilment: FulfilmentQueue,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._orders = orders
        self._inventory = inventory
        self._stock = stock
        self._payments = payments
        self._workflow = workflow
        self._fulfilment = fulfilment
        self._clock = clock
        # A reservation held longer than an order can wait for its payment (and a margin) is one nobody will end.
        self._held_too_long = workflow.longest_wait + LOOK_AGAIN

    def run(self) -> dict[str, int]:
        fixes: Counter[str] = Counter(dict.fromkeys(FIXES, 0))
        self.sweep_orders(fixes)
        self.sweep_reservations(fixes)
        for name, number in fixes.items():
            count(name, number)
        return dict(fixes)

    # ---------------------------------------------------------------- orders due

    def sweep_orders(self, fixes: Counter[str]) -> None:
        now = self._clock()
        for shard in range(RECONCILE_SHARDS):
            for order_id in list(self._orders.due(str(shard), now.isoformat())):
                order = self._orders.get(order_id)
                if order is None or order.reconcile_at is None or order.reconcile_at > now.isoformat():
                    continue  # settled (or put back for later) since the index was read
                try:
                    self._reconcile(order, now, fixes)
                except Exception:  # one order's trouble must not stop the sweep: it stays due, and is logged
                    log.exception(
                        "reconciling order %s failed; it is looked at again later",
                        order.id,
                        extra={"order_id": order.id},
                    )
                    self._orders.mark_due(order.id, (now + LOOK_AGAIN).isoformat())

    def _reconcile(self, order: StoredOrder, now: datetime, fixes: Counter[str]) -> None:
        due_read = order.reconcile_at
        assert due_read is not None
        if order.status in IN_FLIGHT:
            execution = order.execution_name or order.id
            if self._workflow.status(execution) != "RUNNING":
                recovery = f"{order.id}-recovery-{int(now.timestamp())}"
                self._workflow.start(
                    order.id,
                    [line.model_dump(include={"sku", "quantity"}) for line in order.lines],
                    name=recovery,
                    payment_timeout_seconds=RECOVERY_PAYMENT_TIMEOUT_SECONDS,
                )
                log.error(
                    "order %s was %s with no workflow running (%s): started %s",
                    order.id,
                    order.status,
                    execution,
                    recovery,
                    extra={"order_id": order.id},
                )
                fixes["ReconcilerWorkflowsRestarted"] += 1
                self._orders.mark_due(order.id, (now + LOOK_AGAIN).isoformat(), execution_name=recovery)
            else:
                self._orders.mark_due(order.id, (now + LOOK_AGAIN).isoformat())
            return
        if order.repair is not None:
            self._repair(order, order.repair["step"])
            fixes["ReconcilerRepairsDone"] += 1
        if order.money_work_left:
            still_open = self._payments.finish(order.id)
            fixes["ReconcilerRefundsSettled"] += 1
            if still_open:
                self._orders.mark_due(order.id, (now + LOOK_AGAIN).isoformat(), repair=None)
                return
        if not self._orders.settle(order.id, due_read, repair=None):
            log.info("order %s got new work while it was reconciled: it stays on the list", order.id)

    def _repair(self, order: StoredOrder, step: str) -> None:
        """Redo the step as the order's end decides (_settlement): a step that no longer fits it (a release for an
        order that was paid meanwhile, say) is dropped, not repeated for ever."""
        lines = [{"sku": line.sku, "quantity": line.quantity} for line in order.lines]
        settlement = self._settlement(order)
        if step in ("commit", "release") and step == settlement:
            self._stock.move({"action": step, "order_id": order.id, "lines": lines})
        elif step == "enqueue" and order.status == S.PAID:
            self._fulfilment.send(order.id)
        log.warning("order %s: repaired the workflow's %s step", order.id, step, extra={"order_id": order.id})

    # ---------------------------------------------------------------- held reservations

    def sweep_reservations(self, fixes: Counter[str]) -> None:
        held_before = (self._clock() - self._held_too_long).isoformat()
        for shard in range(HELD_SHARDS):
            held: dict[str, dict[str, int]] = defaultdict(dict)
            for order_id, sku, quantity in self._inventory.held_reservations(str(shard), held_before):
                held[order_id][sku] = quantity
            for order_id, quantities in held.items():
                action = self._settlement(self._orders.get(order_id))
                if action is None:
                    continue
                try:
                    self._stock.move(
                        {
                            "action": action,
                            "order_id": order_id,
                            "lines": [{"sku": sku, "quantity": q} for sku, q in sorted(quantities.items())],
                        }
                    )
                except Exception:
                    log.exception(
                        "could not %s the held reservation of order %s", action, order_id, extra={"order_id": order_id}
                    )
                    continue
                log.error(
                    "order %s held stock it no longer should: %sd", order_id, action, extra={"order_id": order_id}
                )
                fixes[
                    "ReconcilerReservationsReleased" if action == "release" else "ReconcilerReservationsCommitted"
                ] += 1

    @staticmethod
    def _settlement(order: StoredOrder | None) -> str | None:
        """What to do with an old reservation of `order`: release, commit, or nothing (its workflow is on it)."""
        if order is None:
            return "release"  # no order at all: nobody will ever pay for these units
        if order.status in PAID_ON or (order.cancellation is not None and order.cancellation.after_payment):
            return "commit"  # the units left with a paid order (a cancellation returns them afterwards)
        if order.status in ENDED_UNPAID:
            return "release"
        return None
