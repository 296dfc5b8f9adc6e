"""Refunds and cancellations on the local cloud: the services the admin routes call (storefront.payments.operations),
wired to the session's real tables, the local provider (through Stripe's SDK), the local carrier, the running order
workflows and the stock function. Each test forces its race or fault and checks that no money is refunded twice or
beyond what was paid, and that stock comes back exactly once; the inventory invariant is checked after every test."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from storefront.audit.log import AuditLog
from storefront.audit.repository import AuditRepository
from storefront.auth import Actor
from storefront.dynamodb import from_item, key
from storefront.errors import StorefrontError
from storefront.fulfilment.carriers import HttpCarrier
from storefront.idempotency import IdempotencyStore
from storefront.inventory.invariant import check_inventory
from storefront.inventory.stock_function import StockFunctionClient, StockFunctionFailed
from storefront.limits.repository import HOLDS_SK, ClientHoldRepository
from storefront.money import Money
from storefront.orders.models import RefundLine
from storefront.orders.repository import OrderRepository
from storefront.payments.cancellation import Cancellations
from storefront.payments.operations import CancelRequest, OrderOperations, RefundRequest, refund_id_for
from storefront.payments.providers import StepFunctionsWorkflow
from storefront.payments.service import PaymentTasks
from storefront.payments.stripe_provider import StripeProvider

from local_cloud.cloud import LOCAL_CARRIER_API_KEY, LOCAL_PAYMENT_API_KEY, LocalCloud
from tests.admin_api import bearer
from tests.saga_shop import PAID_OR_LATER, Shop, paid_order

OPERATOR = Actor(sub="sub-ops", username="ops@example.com", groups=("admin",))


@dataclass
class Desk:
    """The operator's side: what the admin routes call, and what a test looks at."""

    shop: Shop
    orders: OrderRepository
    tasks: PaymentTasks
    cancellations: Cancellations
    operations: OrderOperations

    def paid(self, units: int = 5, quantity: int = 2) -> tuple[str, str, dict[str, Any]]:
        """A paid order (committed, paid, on its way to the carrier): (sku, order id, order)."""
        sku, order_id, order = paid_order(self.shop, units=units, quantity=quantity)
        self.shop.api.post(f"/dev/payments/{order['payment']['payment_id']}/succeed")
        return sku, order_id, self.shop.wait_for_status(order_id, *PAID_OR_LATER)

    def refund(self, order_id: str, key: str | None = None, **body: Any) -> tuple[int, dict[str, Any]]:
        try:
            answer = self.operations.refund(
                order_id,
                RefundRequest.model_validate({"reason": "test", **body}),
                key or uuid.uuid4().hex,
                actor=OPERATOR,
            )
        except StorefrontError as problem:
            return problem.status, {"code": problem.code, "detail": problem.detail}
        return answer.status, httpx.Response(200, content=answer.body).json()

    def cancel(self, order_id: str) -> tuple[int, dict[str, Any]]:
        try:
            order = self.operations.cancel(order_id, CancelRequest(reason="customer asked"), actor=OPERATOR)
        except StorefrontError as problem:
            return problem.status, {"code": problem.code, "detail": problem.detail}
        return 200, order.model_dump(mode="json")

    def provider_refunds(self, order: dict[str, Any]) -> list[tuple[int, str]]:
        payments = self.shop.cloud.payments
        return sorted(
            (r["amount"], r["status"])
            for r in payments._refunds.values()
            if r["payment_intent"] == order["payment"]["payment_id"]
        )


@pytest.fixture
def desk(cloud: LocalCloud, api: httpx.Client) -> Iterator[Desk]:
    dynamodb = cloud.client("dynamodb")
    orders = OrderRepository(dynamodb, cloud.physical_id("OrdersTable"))
    workflow = StepFunctionsWorkflow(cloud.client("stepfunctions"))
    tasks = PaymentTasks(
        orders,
        StripeProvider(cloud.payments.url, LOCAL_PAYMENT_API_KEY, name="fake", timeout=5, max_retries=1),
        workflow,
        StockFunctionClient(cloud.client("lambda"), cloud.physical_id("StockFunction")),
    )
    carrier = HttpCarrier("local", cloud.carrier.url, lambda: LOCAL_CARRIER_API_KEY)
    cancellations = Cancellations(
        orders, tasks, workflow, carrier, ClientHoldRepository(dynamodb, cloud.physical_id("OrdersTable"))
    )
    operations = OrderOperations(
        tasks,
        cancellations,
        IdempotencyStore(dynamodb, cloud.physical_id("OrdersTable"), ttl_seconds=3600),
        AuditLog(AuditRepository(dynamodb, cloud.physical_id("AuditTable"), 400)),
    )
    yield Desk(Shop(cloud, api), orders, tasks, cancellations, operations)
    assert check_inventory(dynamodb, cloud.physical_id("InventoryTable")) == []


# ------------------------------------------------------------------ refunds


def test_eight_concurrent_partial_refunds_never_exceed_the_payment(desk: Desk) -> None:
    _, order_id, order = desk.paid(quantity=3)
    total = order["totals"]["total"]  # 3 x 10.00 + 4.95 shipping = 34.95 EUR
    part = {"amount": 1000, "currency": "EUR"}
    fits = total["amount"] // part["amount"]
    answers: list[tuple[int, dict[str, Any]]] = []
    start = threading.Barrier(8)

    def refund() -> None:
        start.wait()
        answers.append(desk.refund(order_id, amount=part))

    threads = [threading.Thread(target=refund) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    succeeded = [body for status, body in answers if status == 201]
    refused = [body for status, body in answers if status != 201]
    assert len(succeeded) == fits == 3
    assert {body["code"] for body in refused} == {"refund_exceeds_payment"} and len(refused) == 8 - fits
    assert all(body["status"] == "succeeded" for body in succeeded)
    order = desk.shop.order(order_id)
    assert order["refunded"] == {"amount": fits * part["amount"], "currency": "EUR"}
    assert len(order["refunds"]) == fits
    assert desk.provider_refunds(order) == [(part["amount"], "succeeded")] * fits
    # What is left can still be refunded, and not a cent more.
    assert desk.refund(order_id, amount={"amount": total["amount"] - fits * 1000 + 1, "currency": "EUR"})[0] == 409
    status, rest = desk.refund(order_id)
    assert (status, rest["amount"]["amount"]) == (201, total["amount"] - fits * 1000)
    assert desk.refund(order_id)[1]["code"] == "refund_exceeds_payment"


def test_a_refund_replayed_with_its_key_refunds_once(desk: Desk) -> None:
    _, order_id, order = desk.paid()
    key = uuid.uuid4().hex
    first = desk.refund(order_id, key, amount={"amount": 500, "currency": "EUR"})
    again = desk.refund(order_id, key, amount={"amount": 500, "currency": "EUR"})
    assert first == again and first[0] == 201
    answers: list[tuple[int, dict[str, Any]]] = []
    threads = [
        threading.Thread(
            target=lambda: answers.append(desk.refund(order_id, key, amount={"amount": 500, "currency": "EUR"}))
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(answer == first or answer[1].get("code") == "request_in_progress" for answer in answers)
    assert desk.refund(order_id, key, amount={"amount": 600, "currency": "EUR"})[1]["code"] == "idempotency_key_reused"
    order = desk.shop.order(order_id)
    assert [r["id"] for r in order["refunds"]] == [first[1]["id"]]
    assert desk.provider_refunds(order) == [(500, "succeeded")]


def test_a_refund_by_lines_with_restock_returns_the_units_once(desk: Desk, api: httpx.Client) -> None:
    sku, order_id, _order = desk.paid(units=5, quantity=2)
    assert desk.shop.level(sku) == {"on_hand": 3, "reserved": 0, "available": 3}
    status, refund = desk.refund(order_id, lines=[{"sku": sku, "quantity": 1}], restock=True)
    assert status == 201 and refund["amount"] == {"amount": 1000, "currency": "EUR"}
    assert (refund["lines"], refund["restock"], refund["status"]) == ([{"sku": sku, "quantity": 1}], True, "succeeded")
    assert desk.shop.level(sku) == {"on_hand": 4, "reserved": 0, "available": 4}
    desk.tasks.finish(order_id)  # the reconciler's pass: nothing left to do, nothing done twice
    assert desk.shop.level(sku) == {"on_hand": 4, "reserved": 0, "available": 4}
    # The merchant's ledger shows the return, newest first, after the sale.
    ledger = api.get(f"/admin/inventory/{sku}", headers=bearer(api, "staff")).json()["ledger"]["items"]
    assert [(e["delta"], e["reason"], e.get("order_id")) for e in ledger[:2]] == [
        (1, "returned", order_id),
        (-2, "sold", order_id),
    ]
    status, problem = desk.refund(order_id, lines=[{"sku": sku, "quantity": 2}], restock=True)
    assert (status, problem["code"]) == (422, "validation_error")  # only one unit is left to refund
    assert desk.refund(order_id, lines=[{"sku": "NOT-IN-ORDER", "quantity": 1}])[0] == 422


def _throttled(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, operation)


@pytest.mark.parametrize("fault", ["the stock return", "the restocked write", "the audit write"])
def test_a_refund_retried_with_its_key_after_a_failure_half_way_refunds_once(
    desk: Desk, fault: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider refunded, then a later step failed (500): the operator's retry with the same key finishes that
    refund (the same id: the provider's idempotency key and the return's id) instead of refunding again."""
    sku, order_id, order = desk.paid(units=5, quantity=2)
    injected: list[str] = []

    def once(real: Any, error: Exception, applies: Any = lambda *_, **__: True) -> Any:
        def failing(*args: Any, **kwargs: Any) -> Any:
            if not injected and applies(*args, **kwargs):
                injected.append(fault)
                raise error
            return real(*args, **kwargs)

        return failing

    if fault == "the stock return":
        stock = desk.tasks._stock
        monkeypatch.setattr(stock, "return_units", once(stock.return_units, StockFunctionFailed("StockContention: x")))
    elif fault == "the restocked write":
        monkeypatch.setattr(
            desk.orders,
            "update_refund",
            once(desk.orders.update_refund, _throttled("UpdateItem"), lambda *_, **changes: "restocked" in changes),
        )
    else:
        audit = desk.operations._audit
        monkeypatch.setattr(audit, "record", once(audit.record, _throttled("PutItem")))
    key = uuid.uuid4().hex
    with pytest.raises((StockFunctionFailed, ClientError)):
        desk.refund(order_id, key, lines=[{"sku": sku, "quantity": 1}], restock=True)
    assert injected == [fault]
    assert (
        desk.refund(order_id, key, lines=[{"sku": sku, "quantity": 2}], restock=True)[1]["code"]
        == "idempotency_key_reused"
    )  # the key stays bound to the body whose refund is on the order
    status, refund = desk.refund(order_id, key, lines=[{"sku": sku, "quantity": 1}], restock=True)
    assert (status, refund["id"], refund["status"]) == (201, refund_id_for(order_id, key), "succeeded")
    assert desk.refund(order_id, key, lines=[{"sku": sku, "quantity": 1}], restock=True) == (status, refund)
    after = desk.shop.order(order_id)
    assert [r["id"] for r in after["refunds"]] == [refund["id"]] and after["refunded"]["amount"] == 1000
    assert desk.provider_refunds(order) == [(1000, "succeeded")]
    assert desk.shop.level(sku) == {"on_hand": 4, "reserved": 0, "available": 4}  # returned once


@pytest.mark.parametrize("restock", [False, True], ids=["without restock", "with restock"])
def test_a_cancel_after_a_refund_by_lines_refunds_the_rest_and_returns_every_unit_once(
    desk: Desk, restock: bool
) -> None:
    """The cancellation refunds the remaining amount and returns the units no refund returned: a line refunded
    without restock does not make it ask for more units than the order has left (it used to be refused, for ever)."""
    sku, order_id, order = desk.paid(units=5, quantity=2)
    total = order["totals"]["total"]["amount"]
    assert desk.refund(order_id, lines=[{"sku": sku, "quantity": 1}], restock=restock)[0] == 201
    assert desk.shop.level(sku)["on_hand"] == (4 if restock else 3)
    status, cancelled = desk.cancel(order_id)
    assert (status, cancelled["status"]) == (200, "cancelled")
    assert [(r["amount"]["amount"], r["status"], r["reason"]) for r in cancelled["refunds"]] == [
        (1000, "succeeded", "test"),
        (total - 1000, "succeeded", "cancelled"),
    ]
    assert cancelled["refunded"] == order["totals"]["total"]
    assert desk.provider_refunds(order) == sorted([(1000, "succeeded"), (total - 1000, "succeeded")])
    assert desk.shop.level(sku) == {"on_hand": 5, "reserved": 0, "available": 5}
    stored = desk.orders.get(order_id)
    assert stored is not None and stored.cancellation is not None
    assert stored.cancellation.returned == (
        [RefundLine(sku=sku, quantity=1)] if restock else [RefundLine(sku=sku, quantity=2)]
    )
    assert not stored.money_work_left  # the reconciler takes it off its list
    assert desk.tasks.finish(order_id) == 0 and desk.cancel(order_id)[0] == 200  # nothing repeated
    assert desk.shop.level(sku) == {"on_hand": 5, "reserved": 0, "available": 5}
    status, problem = desk.refund(order_id, lines=[{"sku": sku, "quantity": 1}], restock=True)
    assert (status, problem["code"]) == (422, "validation_error")  # the cancellation returned every unit


def test_a_refund_that_failed_returns_no_units_and_its_retry_refunds_and_returns_them_once(
    desk: Desk, cloud: LocalCloud
) -> None:
    sku, order_id, order = desk.paid(units=5, quantity=2)
    cloud.payments.refund_outcome = "failed"
    try:
        status, failed = desk.refund(order_id, lines=[{"sku": sku, "quantity": 1}], restock=True)
    finally:
        cloud.payments.refund_outcome = "succeeded"
    assert (status, failed["status"]) == (201, "failed")
    assert desk.shop.level(sku) == {"on_hand": 3, "reserved": 0, "available": 3}  # not taken back: nothing returned
    status, retried = desk.refund(order_id, lines=[{"sku": sku, "quantity": 2}], restock=True)
    assert (status, retried["status"]) == (201, "succeeded")
    assert desk.shop.level(sku) == {"on_hand": 5, "reserved": 0, "available": 5}
    assert desk.tasks.finish(order_id) == 0  # the reconciler's pass: the failed refund has nothing left to do
    assert desk.shop.level(sku) == {"on_hand": 5, "reserved": 0, "available": 5}
    assert desk.provider_refunds(order) == sorted([(1000, "failed"), (2000, "succeeded")])


def test_units_returned_before_their_refund_failed_are_not_returned_twice(desk: Desk, cloud: LocalCloud) -> None:
    """A pending refund's units come back at once; when the provider then fails it, they stay back (the goods were
    taken back): a retry may refund the money but not return them again, and is refused before any money moves."""
    sku, order_id, order = desk.paid(units=5, quantity=2)
    cloud.payments.refund_outcome = "pending"
    try:
        pending = desk.refund(order_id, lines=[{"sku": sku, "quantity": 1}], restock=True)[1]
    finally:
        cloud.payments.refund_outcome = "succeeded"
    assert desk.shop.level(sku)["on_hand"] == 4
    by_refund = {r["metadata"]["refund_id"]: r["id"] for r in cloud.payments._refunds.values()}
    assert cloud.payments.settle_refund(by_refund[pending["id"]], "failed") == 200
    assert desk.shop.order(order_id)["refunds"][0]["status"] == "failed"
    status, problem = desk.refund(order_id, lines=[{"sku": sku, "quantity": 2}], restock=True)
    assert (status, problem["code"]) == (422, "validation_error")  # one of the two is back already
    assert desk.provider_refunds(order) == [(1000, "failed")]  # refused before the provider was asked
    assert desk.refund(order_id, lines=[{"sku": sku, "quantity": 1}], restock=False)[1]["status"] == "succeeded"
    assert desk.shop.level(sku)["on_hand"] == 4
    status, cancelled = desk.cancel(order_id)  # the other unit comes back with the cancellation, the rest is refunded
    assert (status, cancelled["refunded"]) == (200, order["totals"]["total"])
    assert desk.shop.level(sku) == {"on_hand": 5, "reserved": 0, "available": 5}


@pytest.mark.parametrize("provider_status", ["canceled", "requires_action"])
def test_a_refund_canceled_at_the_provider_fails_and_one_waiting_for_the_customer_stays_open(
    desk: Desk, cloud: LocalCloud, provider_status: str
) -> None:
    _, order_id, _order = desk.paid()
    cloud.payments.refund_outcome = "pending"
    try:
        refund = desk.refund(order_id, amount={"amount": 700, "currency": "EUR"})[1]
    finally:
        cloud.payments.refund_outcome = "succeeded"
    by_refund = {r["metadata"]["refund_id"]: r["id"] for r in cloud.payments._refunds.values()}
    assert cloud.payments.settle_refund(by_refund[refund["id"]], provider_status) == 200
    after = desk.shop.order(order_id)
    if provider_status == "canceled":  # Stripe's end for a refund whose customer never acted: failed, amount back
        assert (after["refunds"][0]["status"], after["refunded"]["amount"]) == ("failed", 0)
        assert desk.tasks.finish(order_id) == 0
    else:  # still open: the reconciler keeps asking until the provider settles it
        assert (after["refunds"][0]["status"], after["refunded"]["amount"]) == ("pending", 700)
        assert desk.tasks.finish(order_id) == 1
        assert cloud.payments.settle_refund(by_refund[refund["id"]], "succeeded") == 200
        assert desk.shop.order(order_id)["refunds"][0]["status"] == "succeeded"
        assert desk.tasks.finish(order_id) == 0


def test_an_order_never_paid_is_not_refundable(desk: Desk) -> None:
    _, order_id, _ = paid_order(desk.shop)
    assert desk.refund(order_id) == (
        409,
        {"code": "order_not_refundable", "detail": desk.refund(order_id)[1]["detail"]},
    )
    assert desk.refund("x" * 32)[0] == 404
    assert desk.refund(order_id, amount={"amount": 100, "currency": "USD"})[0] in (409, 422)


def test_a_pending_refund_follows_the_providers_webhooks(desk: Desk, cloud: LocalCloud) -> None:
    _, order_id, order = desk.paid()
    cloud.payments.refund_outcome = "pending"
    try:
        succeeding = desk.refund(order_id, amount={"amount": 700, "currency": "EUR"})[1]
        failing = desk.refund(order_id, amount={"amount": 300, "currency": "EUR"})[1]
    finally:
        cloud.payments.refund_outcome = "succeeded"
    assert (succeeding["status"], failing["status"]) == ("pending", "pending")
    assert desk.shop.order(order_id)["refunded"]["amount"] == 1000  # both reserved while pending
    by_refund = {r["metadata"]["refund_id"]: r["id"] for r in cloud.payments._refunds.values()}
    assert cloud.payments.settle_refund(by_refund[succeeding["id"]], "succeeded") == 200
    assert cloud.payments.settle_refund(by_refund[failing["id"]], "failed") == 200
    order = desk.shop.order(order_id)
    assert {r["id"]: r["status"] for r in order["refunds"]} == {succeeding["id"]: "succeeded", failing["id"]: "failed"}
    assert order["refunded"]["amount"] == 700  # the failed refund gave its amount back
    event, _ = cloud.payments.delivered[-2]  # refund.updated (failed), delivered again: nothing changes
    assert cloud.payments.deliver(event) == 200
    assert desk.shop.order(order_id)["refunded"]["amount"] == 700


# ------------------------------------------------------------------ cancellation, in every status


def test_cancel_awaiting_payment_goes_through_the_workflow(desk: Desk, cloud: LocalCloud) -> None:
    sku, order_id, order = paid_order(desk.shop, units=4, quantity=2)
    desk.shop.wait_until_the_workflow_waits_for_payment(order_id)
    status, cancelled = desk.cancel(order_id)
    assert (status, cancelled["status"], cancelled["reason"]["code"]) == (200, "cancelled", "cancelled")
    assert desk.shop.execution(order_id)["status"] == "SUCCEEDED"  # it released the stock, exactly once
    assert desk.shop.level(sku) == {"on_hand": 4, "reserved": 0, "available": 4}
    assert cloud.payments.intent(order["payment"]["payment_id"])["status"] == "canceled"
    assert desk.cancel(order_id)[1]["status"] == "cancelled"  # again: 200, nothing repeated
    assert desk.shop.level(sku) == {"on_hand": 4, "reserved": 0, "available": 4}


def test_a_cancel_whose_workflow_was_not_told_is_told_by_the_retry(
    desk: Desk, cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cancellation was written, then telling the waiting workflow failed (throttled): the operator's retry
    tells it, so the stock is released now, not when the payment window ends."""
    sku, order_id, order = paid_order(desk.shop, units=4, quantity=2)
    desk.shop.wait_until_the_workflow_waits_for_payment(order_id)
    workflow = desk.cancellations._workflow
    tell, told = workflow.fail, []

    def throttled_once(token: str, error: str, cause: str) -> bool:
        told.append(error)
        if len(told) == 1:
            raise _throttled("SendTaskFailure")
        return tell(token, error, cause)

    monkeypatch.setattr(workflow, "fail", throttled_once)
    with pytest.raises(ClientError):
        desk.cancel(order_id)
    assert desk.shop.order(order_id)["status"] == "cancelled"
    assert desk.shop.level(sku)["reserved"] == 2  # the workflow still waits for a payment
    status, cancelled = desk.cancel(order_id)
    assert (status, cancelled["status"]) == (200, "cancelled")
    assert desk.shop.execution(order_id, timeout=20)["status"] == "SUCCEEDED"
    assert desk.shop.level(sku) == {"on_hand": 4, "reserved": 0, "available": 4}
    assert cloud.payments.intent(order["payment"]["payment_id"])["status"] == "canceled"
    assert desk.cancel(order_id)[0] == 200  # once more: the spent token is no error
    assert told == ["OrderCancelled"] * 3


def test_an_operator_cancel_of_an_unpaid_order_gives_its_client_places_back(desk: Desk, cloud: LocalCloud) -> None:
    _, order_id, _ = paid_order(desk.shop, units=4, quantity=1)
    stored = desk.orders.get(order_id)
    assert stored is not None and stored.client_hold is not None
    hold, dynamodb = stored.client_hold, cloud.client("dynamodb")

    def holding() -> list[bool]:
        items = [
            dynamodb.get_item(
                TableName=cloud.physical_id("OrdersTable"), Key=key(pk=pk, sk=HOLDS_SK), ConsistentRead=True
            ).get("Item")
            for pk in hold.keys
        ]
        return [hold.member in (from_item(item).get("holds", set()) if item else set()) for item in items]

    assert holding() == [True, True]
    assert desk.cancel(order_id)[1]["status"] == "cancelled"
    assert desk.shop.execution(order_id)["status"] == "SUCCEEDED"
    assert holding() == [False, False]


def test_cancel_before_the_workflow_waits_ends_the_same_way(desk: Desk, cloud: LocalCloud) -> None:
    """The cancel lands between CreatePayment and WaitForPayment's token: the token's write sees it."""
    tasks = cloud.functions["PaymentTasksFunction"].module.tasks
    await_payment, cancelled_first = tasks.await_payment, []

    def cancel_first(order_id: str, token: str) -> None:
        if not cancelled_first:
            cancelled_first.append(desk.cancel(order_id))
        await_payment(order_id, token)

    sku = desk.shop.product(3)
    tasks.await_payment = cancel_first
    try:
        order_id = desk.shop.checkout(desk.shop.cart((sku, 1))).json()["id"]
        assert desk.shop.execution(order_id)["status"] == "SUCCEEDED"
    finally:
        tasks.await_payment = await_payment
    assert cancelled_first[0][1]["status"] == "cancelled"
    order = desk.shop.order(order_id)
    assert order["status"] == "cancelled" and order["payment"]["status"] == "canceled"
    assert cloud.payments.intent(order["payment"]["payment_id"])["status"] == "canceled"
    assert desk.shop.level(sku) == {"on_hand": 3, "reserved": 0, "available": 3}


def test_cancel_pending_before_the_payment_exists(desk: Desk, cloud: LocalCloud) -> None:
    """The cancel lands while the stock is being reserved: no payment is created, the stock is released."""
    stock = cloud.functions["StockFunction"].module
    handle, cancelled_first = stock.service.handle, []
    sku = desk.shop.product(3)

    def reserve_then_cancel(request: Any) -> Any:
        outcome = handle(request)
        if request.action == "reserve" and sku in request.quantities() and not cancelled_first:
            cancelled_first.append(desk.cancel(request.order_id))
        return outcome

    stock.service.handle = reserve_then_cancel
    try:
        order_id = desk.shop.checkout(desk.shop.cart((sku, 2))).json()["id"]
        assert desk.shop.execution(order_id)["status"] == "SUCCEEDED"
    finally:
        stock.service.handle = handle
    assert cancelled_first[0][1]["status"] == "cancelled"
    assert desk.shop.order(order_id)["payment"] is None
    assert desk.shop.level(sku) == {"on_hand": 3, "reserved": 0, "available": 3}


def test_cancel_paid_refunds_in_full_and_returns_the_stock(desk: Desk, cloud: LocalCloud) -> None:
    sku, order_id, order = desk.paid(units=5, quantity=2)
    status, cancelled = desk.cancel(order_id)
    assert (status, cancelled["status"]) == (200, "cancelled")
    [refund] = cancelled["refunds"]  # the money; the units are the cancellation's to return
    assert (refund["amount"], refund["status"], refund["lines"]) == (order["totals"]["total"], "succeeded", [])
    assert cancelled["refunded"] == order["totals"]["total"]
    assert desk.shop.level(sku) == {"on_hand": 5, "reserved": 0, "available": 5}
    assert desk.cancel(order_id)[1]["refunds"] == cancelled["refunds"]  # nothing repeated
    assert desk.provider_refunds(order) == [(order["totals"]["total"]["amount"], "succeeded")]
    assert desk.shop.level(sku) == {"on_hand": 5, "reserved": 0, "available": 5}
    assert all(s["status"] == "cancelled" for s in cloud.carrier.shipments.values() if s["reference"] == order_id)


@pytest.mark.slow("waits")
def test_a_crash_after_the_cancellation_is_recorded_is_finished_by_a_retry(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    sku, order_id, order = desk.paid(units=5, quantity=2)
    monkeypatch.setattr(desk.tasks, "finish", lambda _: (_ for _ in ()).throw(ConnectionResetError("died")))
    with pytest.raises(ConnectionResetError):
        desk.cancel(order_id)
    monkeypatch.undo()
    stored = desk.orders.get(order_id)
    assert stored is not None and stored.status == "cancelled" and stored.refunds == []
    assert stored.reconcile_at is not None  # on the reconciler's list, due soon
    assert desk.shop.level(sku) == {"on_hand": 3, "reserved": 0, "available": 3}
    status, cancelled = desk.cancel(order_id)  # the operator retries (or the reconciler's pass does the same)
    assert status == 200 and [r["status"] for r in cancelled["refunds"]] == ["succeeded"]
    assert desk.shop.level(sku) == {"on_hand": 5, "reserved": 0, "available": 5}
    assert desk.provider_refunds(order) == [(order["totals"]["total"]["amount"], "succeeded")]


def test_a_cancellation_finished_by_concurrent_passes_refunds_and_returns_once(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cancel request died after its write; its retry and the reconciler's passes then finish it at the same
    time, after a refund by lines with restock: one refund of the rest, every other unit back exactly once."""
    sku, order_id, order = desk.paid(units=6, quantity=3)
    assert desk.refund(order_id, lines=[{"sku": sku, "quantity": 1}], restock=True)[0] == 201
    finish = desk.tasks.finish
    monkeypatch.setattr(desk.tasks, "finish", lambda _: (_ for _ in ()).throw(ConnectionResetError("died")))
    with pytest.raises(ConnectionResetError):
        desk.cancel(order_id)
    monkeypatch.setattr(desk.tasks, "finish", finish)
    start, errors = threading.Barrier(4), []

    def finish_it() -> None:
        start.wait()
        try:
            finish(order_id)
        except Exception as error:  # noqa: BLE001 - a pass that lost a race is retried by the reconciler
            errors.append(error)

    threads = [threading.Thread(target=finish_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        assert finish(order_id) == 0  # the next reconciler pass
    stored = desk.orders.get(order_id)
    assert stored is not None and not stored.money_work_left
    assert stored.cancellation is not None and stored.cancellation.returned == [RefundLine(sku=sku, quantity=2)]
    total = order["totals"]["total"]["amount"]
    assert desk.provider_refunds(order) == sorted([(1000, "succeeded"), (total - 1000, "succeeded")])
    assert desk.shop.order(order_id)["refunded"]["amount"] == total
    assert desk.shop.level(sku) == {"on_hand": 6, "reserved": 0, "available": 6}


def test_a_restock_racing_a_cancel_never_returns_a_unit_twice(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    """An operator's refund with restock read the order paid; the cancel landed before its write: the refund is
    refused before any money moves (the cancellation returns every unit), and nothing comes back twice."""
    sku, order_id, order = desk.paid(units=5, quantity=2)
    add_refund, raced = desk.orders.add_refund, []

    def cancel_first(order_id: str, refund: Any, **fields: Any) -> Any:
        if refund.restock and not raced:
            raced.append(desk.cancel(order_id))
        return add_refund(order_id, refund, **fields)

    monkeypatch.setattr(desk.orders, "add_refund", cancel_first)
    status, problem = desk.refund(order_id, lines=[{"sku": sku, "quantity": 1}], restock=True)
    assert raced[0][1]["status"] == "cancelled"
    assert (status, problem["code"]) == (422, "validation_error")
    assert desk.provider_refunds(order) == [(order["totals"]["total"]["amount"], "succeeded")]
    assert desk.shop.level(sku) == {"on_hand": 5, "reserved": 0, "available": 5}


def test_cancel_fulfilling_cancels_the_shipment_first(desk: Desk, cloud: LocalCloud) -> None:
    sku, order_id, _order = desk.paid(units=4, quantity=1)
    desk.shop.wait_for_status(order_id, "fulfilling")
    status, cancelled = desk.cancel(order_id)
    assert (status, cancelled["status"]) == (200, "cancelled")
    [shipment] = [s for s in cloud.carrier.shipments.values() if s["reference"] == order_id]
    assert shipment["status"] == "cancelled"
    assert desk.shop.level(sku) == {"on_hand": 4, "reserved": 0, "available": 4}


def test_a_carrier_that_will_not_cancel_leaves_the_order_as_it_was(desk: Desk, cloud: LocalCloud) -> None:
    sku, order_id, _order = desk.paid(units=4, quantity=1)
    desk.shop.wait_for_status(order_id, "fulfilling")
    [shipment] = [s for s in cloud.carrier.shipments.values() if s["reference"] == order_id]
    shipment["status"] = "in_transit"  # handed over; its tracking update has not reached us yet
    status, problem = desk.cancel(order_id)
    assert (status, problem["code"]) == (409, "shipment_not_cancellable")
    after = desk.shop.order(order_id)
    assert (after["status"], after["refunds"]) == ("fulfilling", [])
    assert desk.shop.level(sku) == {"on_hand": 3, "reserved": 0, "available": 3}


def test_shipped_and_delivered_orders_are_not_cancellable(desk: Desk, cloud: LocalCloud) -> None:
    _, order_id, _ = desk.paid(units=4, quantity=1)
    desk.shop.wait_for_status(order_id, "fulfilling")
    shipment_id = next(s["id"] for s in cloud.carrier.shipments.values() if s["reference"] == order_id)
    cloud.carrier.advance(shipment_id)
    desk.shop.wait_for_status(order_id, "shipped")
    assert desk.cancel(order_id)[1]["code"] == "order_not_cancellable"
    for _ in range(2):
        cloud.carrier.advance(shipment_id)
    desk.shop.wait_for_status(order_id, "delivered")
    assert desk.cancel(order_id)[1]["code"] == "order_not_cancellable"
    assert desk.shop.order(order_id)["refunds"] == []


def test_a_shipment_created_for_an_order_cancelled_meanwhile_is_cancelled(desk: Desk, cloud: LocalCloud) -> None:
    """The fulfilment worker asked the carrier while the order was paid; the cancel landed before it wrote back."""
    fulfilment = cloud.functions["FulfilmentFunction"].module.service
    carrier = fulfilment._carrier
    create, cancelled = carrier.create_shipment, []

    def create_then_cancel(request: Any, idempotency_key: str) -> Any:
        shipment = create(request, idempotency_key)
        if not cancelled:
            cancelled.append(desk.cancel(request.reference))
        return shipment

    carrier.create_shipment = create_then_cancel
    try:
        sku, order_id, order = paid_order(desk.shop, units=4, quantity=1)
        desk.shop.api.post(f"/dev/payments/{order['payment']['payment_id']}/succeed")  # paid, queued, shipped...
        desk.shop.wait_for(order_id, lambda o: o["status"] == "cancelled" and bool(o["refunds"]))
        desk.shop.wait_for(
            order_id,
            lambda _: any(
                s["status"] == "cancelled" for s in cloud.carrier.shipments.values() if s["reference"] == order_id
            ),
        )
    finally:
        carrier.create_shipment = create
    assert cancelled[0][1]["status"] == "cancelled"
    assert desk.shop.order(order_id)["fulfilment"] is None
    assert desk.shop.level(sku) == {"on_hand": 4, "reserved": 0, "available": 4}


def test_an_operator_write_is_audited_on_the_orders_trail_and_in_the_log(desk: Desk, api: httpx.Client) -> None:
    _, order_id, _ = desk.paid()
    refund = desk.refund(order_id, amount={"amount": 100, "currency": "EUR"})[1]
    desk.cancel(order_id)
    desk.cancel(order_id)  # cancelled already: nothing done, nothing recorded
    before = desk.shop.order(order_id)["history"][-2]["status"]  # paid, or fulfilling by then
    admin = bearer(api, "admin")
    trail = api.get(f"/admin/orders/{order_id}", headers=admin).json()["audit"]  # newest first
    assert [(e["action"], e["actor"]["username"]) for e in trail] == [
        ("order.cancel", "ops@example.com"),
        ("order.refund", "ops@example.com"),
    ]
    cancel, refunded = trail
    assert cancel["changes"] == {
        "status": {"before": before, "after": "cancelled"},
        "reason": {"before": None, "after": "customer asked"},
    }
    assert (
        refunded["changes"]["refund"]["before"] is None and refunded["changes"]["refund"]["after"]["id"] == refund["id"]
    )
    log = api.get("/admin/audit", params={"limit": 100}, headers=admin).json()["items"]
    assert [e for e in log if e["target"] == f"order:{order_id}"] == trail


def test_money_never_goes_negative_or_mixes_currencies(desk: Desk) -> None:
    _, order_id, _ = desk.paid()
    assert desk.refund(order_id, amount={"amount": 0, "currency": "EUR"})[0] == 422
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        RefundRequest(reason="x", lines=[RefundLine(sku="A", quantity=0)])  # type: ignore[list-item]
    assert Money(amount=1, currency="EUR")  # the Money type itself is tested in tests/unit/test_money.py


# ------------------------------------------------------------------ the admin routes (AdminJwt, group admin)


def test_the_admin_routes_cancel_and_refund_for_admins_only(desk: Desk, api: httpx.Client) -> None:
    sku, order_id, order = desk.paid(units=5, quantity=2)
    refund = {"amount": {"amount": 500, "currency": "EUR"}, "reason": "a scratch", "restock": False}
    assert api.post(f"/admin/orders/{order_id}/refunds", json=refund).status_code == 401  # API Gateway's own answer
    staff = api.post(
        f"/admin/orders/{order_id}/refunds", json=refund, headers={**bearer(api, "staff"), "Idempotency-Key": "k-staff"}
    )
    assert (staff.status_code, staff.json()["code"]) == (403, "forbidden")
    admin = bearer(api, "admin")
    assert (
        api.post(f"/admin/orders/{order_id}/refunds", json=refund, headers=admin).json()["code"]
        == "idempotency_key_required"
    )
    first = api.post(f"/admin/orders/{order_id}/refunds", json=refund, headers={**admin, "Idempotency-Key": "k-1"})
    again = api.post(f"/admin/orders/{order_id}/refunds", json=refund, headers={**admin, "Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201 and first.content == again.content
    assert first.json()["amount"] == refund["amount"] and first.json()["status"] == "succeeded"
    invalid = api.post(
        f"/admin/orders/{order_id}/refunds", json={**refund, "reason": ""}, headers={**admin, "Idempotency-Key": "k-2"}
    )
    assert invalid.status_code == 422
    assert (
        api.post(f"/admin/orders/{order_id}/cancel", json={"reason": "x"}, headers=bearer(api, "staff")).status_code
        == 403
    )
    cancelled = api.post(f"/admin/orders/{order_id}/cancel", json={"reason": "customer asked"}, headers=admin)
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "cancelled" and body["refunded"] == order["totals"]["total"]
    assert [r["amount"]["amount"] for r in body["refunds"]] == [500, order["totals"]["total"]["amount"] - 500]
    assert desk.shop.level(sku) == {"on_hand": 5, "reserved": 0, "available": 5}
    assert desk.provider_refunds(order) == sorted(
        [(500, "succeeded"), (order["totals"]["total"]["amount"] - 500, "succeeded")]
    )
    trail = api.get(f"/admin/orders/{order_id}", headers=admin).json()["audit"]  # the function records who did it
    assert [e["action"] for e in trail] == ["order.cancel", "order.refund"]
    assert {e["actor"]["sub"] for e in trail} == {api.get("/admin/me", headers=admin).json()["sub"]}
