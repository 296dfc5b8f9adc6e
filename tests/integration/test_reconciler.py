"""The reconciler on the local cloud, run as its schedule runs it (POST /dev/schedules/Reconcile/run, the local
cloud's stand-in for EventBridge Scheduler): it is handed a leaked reservation, a saga whose commit failed for good,
and an order whose workflow died; it fixes each exactly once, counts it, and the inventory invariant holds."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from storefront.inventory.invariant import check_inventory
from storefront.orders.repository import OrderRepository

from local_cloud.cloud import LocalCloud
from tests.saga_shop import PAID_OR_LATER, Shop, paid_order


@pytest.fixture
def shop(cloud: LocalCloud, api: httpx.Client) -> Iterator[Shop]:
    yield Shop(cloud, api)
    assert check_inventory(cloud.client("dynamodb"), cloud.physical_id("InventoryTable")) == []


def reconcile(shop: Shop) -> dict[str, int]:
    answer = shop.api.post("/dev/schedules/Reconcile/run")
    assert answer.status_code == 200, answer.text
    return answer.json()["result"]


def metrics(output: str, name: str) -> list[float]:
    """The values of a business metric in the EMF blobs the functions printed."""
    values: list[float] = []
    for line in output.splitlines():
        if line.startswith('{"_aws"') and name in line:
            value = json.loads(line)[name]
            values += value if isinstance(value, list) else [value]
    return values


def test_a_leaked_reservation_is_released_once_and_counted(shop: Shop, capsys: pytest.CaptureFixture[str]) -> None:
    sku = shop.product(5)
    never_ordered = secrets.token_urlsafe(24)  # a reservation for an order that does not exist (a lost checkout)
    shop.inventory.reserve(never_ordered, {sku: 2}, datetime.now(UTC) - timedelta(days=1))
    assert shop.level(sku) == {"on_hand": 5, "reserved": 2, "available": 3}
    capsys.readouterr()
    assert reconcile(shop)["ReconcilerReservationsReleased"] == 1
    assert shop.level(sku) == {"on_hand": 5, "reserved": 0, "available": 5}
    assert metrics(capsys.readouterr().out, "ReconcilerReservationsReleased") == [1.0]
    assert reconcile(shop)["ReconcilerReservationsReleased"] == 0  # once
    assert shop.level(sku) == {"on_hand": 5, "reserved": 0, "available": 5}


def test_a_fresh_reservation_is_left_to_its_workflow(shop: Shop) -> None:
    sku, order_id, _ = paid_order(shop, units=3, quantity=1)
    reconcile(shop)
    assert shop.level(sku) == {"on_hand": 3, "reserved": 1, "available": 2}
    assert shop.order(order_id)["status"] == "awaiting_payment"


class ReservationNotHeld(Exception):
    """Named like the stock function's error the workflow does not retry: CommitStock fails at once, for good."""


@pytest.mark.slow("waits")
def test_a_commit_that_failed_for_good_is_repaired_by_the_reconciler(
    shop: Shop, cloud: LocalCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    stock = cloud.functions["StockFunction"].module
    handle = stock.service.handle
    sku, order_id, order = paid_order(shop, units=5, quantity=2)

    def commit_fails(request: Any) -> Any:
        if request.action == "commit" and request.order_id == order_id:
            raise ReservationNotHeld("injected: the commit failed")
        return handle(request)

    stock.service.handle = commit_fails
    capsys.readouterr()
    try:
        shop.api.post(f"/dev/payments/{order['payment']['payment_id']}/succeed")
        order = shop.wait_for_status(order_id, *PAID_OR_LATER)
        assert shop.execution(order_id)["status"] == "SUCCEEDED"  # paid and shipped; the commit left for repair
    finally:
        stock.service.handle = handle
    assert metrics(capsys.readouterr().out, "SagaRepairsNeeded") == [1.0]  # the alarm's metric
    assert shop.level(sku) == {"on_hand": 5, "reserved": 2, "available": 3}  # still held for this order: not sold
    assert reconcile(shop)["ReconcilerRepairsDone"] == 1
    assert shop.level(sku) == {"on_hand": 3, "reserved": 0, "available": 3}
    assert reconcile(shop)["ReconcilerRepairsDone"] == 0
    stored = OrderRepository(cloud.client("dynamodb"), cloud.physical_id("OrdersTable")).get(order_id)
    assert stored is not None and stored.repair is None and stored.reconcile_at is None


@pytest.mark.slow("waits")
def test_an_order_whose_workflow_is_gone_is_finished_by_a_recovery_run(shop: Shop, cloud: LocalCloud) -> None:
    """The order awaits payment, the shopper paid but the webhook was lost, and the execution in charge of the order
    is gone (moto cannot stop a running one: the order names one that does not exist). The reconciler starts a
    recovery run, which asks the provider at once and finishes the order as paid, the stock committed once."""
    sku, order_id, order = paid_order(shop, units=4, quantity=1)
    cloud.payments._move(order["payment"]["payment_id"], status="succeeded")
    orders = OrderRepository(cloud.client("dynamodb"), cloud.physical_id("OrdersTable"))
    orders.mark_due(order_id, datetime.now(UTC).isoformat(), execution_name=f"{order_id}-gone")
    assert reconcile(shop)["ReconcilerWorkflowsRestarted"] == 1
    order = shop.wait_for_status(order_id, *PAID_OR_LATER)
    assert order["payment"]["status"] == "succeeded"
    assert shop.level(sku) == {"on_hand": 3, "reserved": 0, "available": 3}
    stored = orders.get(order_id)
    assert stored is not None and stored.execution_name and stored.execution_name.startswith(f"{order_id}-recovery-")
    assert reconcile(shop)["ReconcilerWorkflowsRestarted"] == 0  # not started twice: it is paid now


def test_a_recovery_run_started_as_the_order_was_paid_finishes_it_as_paid(
    shop: Shop, cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reconciler read the order awaiting payment; before it asked Step Functions, the shopper paid and the
    workflow ended (paid, committed, shipped). The recovery run it starts finds the order paid: its steps answer
    `paid` (commit again: a no-op), not `unpaid` (a release of stock that left with the order, refused for good)."""
    sku, order_id, order = paid_order(shop, units=4, quantity=1)
    orders = OrderRepository(cloud.client("dynamodb"), cloud.physical_id("OrdersTable"))
    orders.mark_due(order_id, datetime.now(UTC).isoformat())
    workflow = cloud.functions["ReconcilerFunction"].module.reconciler._workflow
    status = workflow.status

    def paid_meanwhile(name: str) -> str | None:
        shop.api.post(f"/dev/payments/{order['payment']['payment_id']}/succeed")
        shop.wait_for_status(order_id, *PAID_OR_LATER)
        shop.execution(order_id)
        return status(name)

    monkeypatch.setattr(workflow, "status", paid_meanwhile)
    capsys.readouterr()
    assert reconcile(shop)["ReconcilerWorkflowsRestarted"] == 1
    recovery = orders.get(order_id).execution_name  # type: ignore[union-attr]
    assert recovery is not None and shop.execution(recovery)["status"] == "SUCCEEDED"
    stored = orders.get(order_id)
    assert stored is not None and stored.repair is None and stored.status in PAID_OR_LATER
    assert metrics(capsys.readouterr().out, "SagaRepairsNeeded") == []
    assert shop.level(sku) == {"on_hand": 3, "reserved": 0, "available": 3}
    assert shop.shipments_for(order_id) == 1


def test_a_release_left_for_repair_on_an_order_that_was_paid_is_dropped(shop: Shop, cloud: LocalCloud) -> None:
    """A release handed to the reconciler for an order that turned out paid (its units committed): releasing it would
    be refused for ever; the reconciler releases only orders that ended unpaid, so the repair is dropped."""
    sku, order_id, order = paid_order(shop, units=4, quantity=1)
    shop.api.post(f"/dev/payments/{order['payment']['payment_id']}/succeed")
    shop.wait_for_status(order_id, *PAID_OR_LATER)
    shop.execution(order_id)
    orders = OrderRepository(cloud.client("dynamodb"), cloud.physical_id("OrdersTable"))
    now = datetime.now(UTC).isoformat()
    orders.mark_due(order_id, now, repair={"step": "release", "error": "ReservationNotHeld", "at": now})
    assert reconcile(shop)["ReconcilerRepairsDone"] == 1
    stored = orders.get(order_id)
    assert stored is not None and stored.repair is None and stored.reconcile_at is None
    assert shop.level(sku) == {"on_hand": 3, "reserved": 0, "available": 3}


@pytest.mark.slow("waits")
def test_an_order_whose_workflow_never_started_is_ended_and_its_stock_released(shop: Shop, cloud: LocalCloud) -> None:
    """Checkout stored the order and died before starting its workflow, and the shopper never came back."""
    from storefront.orders.models import StoredOrder

    sku, order_id, _order = paid_order(shop, units=4, quantity=1)
    orders = OrderRepository(cloud.client("dynamodb"), cloud.physical_id("OrdersTable"))
    stored = orders.get(order_id)
    assert stored is not None
    lost = secrets.token_urlsafe(24)
    now = datetime.now(UTC)
    orders.create(
        StoredOrder.model_validate(
            {
                **stored.model_dump(exclude={"payment", "task_token", "execution_name"}),
                "id": lost,
                "cart_id": secrets.token_urlsafe(24),
                "status": "pending",
                "history": [{"status": "pending", "at": now}],
                "reconcile_shard": None,
                "reconcile_at": None,
            }
        )
    )
    orders.mark_due(lost, now.isoformat())
    assert reconcile(shop)["ReconcilerWorkflowsRestarted"] == 1
    ended = shop.wait_for_status(lost, "expired")
    assert ended["payment"]["status"] == "canceled" and ended["history"][-1]["status"] == "expired"
    recovery = orders.get(lost).execution_name  # type: ignore[union-attr]
    assert recovery is not None
    shop.execution(recovery)  # its ReleaseStock comes after MarkExpired: wait for the run's end
    assert shop.level(sku) == {"on_hand": 4, "reserved": 1, "available": 3}  # only the first order holds one


def test_an_order_with_nothing_left_to_do_leaves_the_list(shop: Shop, cloud: LocalCloud) -> None:
    _, order_id, order = paid_order(shop, units=2, quantity=1)
    shop.api.post(f"/dev/payments/{order['payment']['payment_id']}/succeed")
    shop.wait_for_status(order_id, *PAID_OR_LATER)
    orders = OrderRepository(cloud.client("dynamodb"), cloud.physical_id("OrdersTable"))
    assert orders.get(order_id).reconcile_at is not None  # type: ignore[union-attr]  # on it since checkout
    orders.mark_due(order_id, datetime.now(UTC).isoformat())
    fixes = reconcile(shop)
    assert orders.get(order_id).reconcile_at is None  # type: ignore[union-attr]
    assert set(fixes) == {
        "ReconcilerWorkflowsRestarted",
        "ReconcilerRepairsDone",
        "ReconcilerRefundsSettled",
        "ReconcilerReservationsReleased",
        "ReconcilerReservationsCommitted",
    }


def test_an_unknown_schedule_is_404(shop: Shop) -> None:
    assert shop.api.post("/dev/schedules/Nothing/run").status_code == 404
