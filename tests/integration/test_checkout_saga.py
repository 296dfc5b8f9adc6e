"""Checkout and the order saga end to end on the local cloud: HTTP → checkout function → Step Functions
(moto, executing statemachines/order.asl.json) → stock, payments and order-step functions → SQS → the
fulfilment function, which ships the order with the local carrier.

After every test the inventory invariant is checked: on_hand = available + reserved, and the ledger sums
to the levels, for every SKU."""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from storefront.cart.models import StoredCart, StoredShipping
from storefront.idempotency import IdempotencyStore, request_hash
from storefront.inventory.invariant import check_inventory

from local_cloud.cloud import LocalCloud
from local_cloud.demo_data import seed
from local_cloud.fake_payments import PaymentStateError
from local_cloud.gateway import Gateway
from tests.saga_shop import ADDRESS, FINAL, PAID_OR_LATER, Shop, paid_order
from tests.waiting import wait_until


@pytest.fixture
def shop(cloud: LocalCloud, api: httpx.Client) -> Iterator[Shop]:
    yield Shop(cloud, api)
    assert check_inventory(cloud.client("dynamodb"), cloud.physical_id("InventoryTable")) == []


# ------------------------------------------------------------------ the happy path and the payment outcomes


def test_happy_path_to_paid_and_exactly_one_shipment(shop: Shop) -> None:
    sku = shop.product(5)
    response = shop.checkout(shop.cart((sku, 2)))
    assert response.status_code == 202
    order = response.json()
    assert response.headers["location"] == f"/orders/{order['id']}"
    assert order["status"] == "pending" and order["totals"]["total"]["amount"] == 2000 + 495
    order = shop.wait_for_status(order["id"], "awaiting_payment")
    payment = order["payment"]
    assert payment["provider"] == "fake" and payment["payment_id"].startswith("pi_") and payment["client_secret"]
    assert shop.level(sku) == {"on_hand": 5, "reserved": 2, "available": 3}

    assert shop.api.post(f"/dev/payments/{payment['payment_id']}/succeed").status_code == 200
    order = shop.wait_for_status(order["id"], *PAID_OR_LATER)
    assert shop.execution(order["id"])["status"] == "SUCCEEDED"
    assert [h["status"] for h in order["history"]][:3] == ["pending", "awaiting_payment", "paid"]
    assert shop.level(sku) == {"on_hand": 3, "reserved": 0, "available": 3}
    assert shop.shipments_for(order["id"]) == 1


def test_declines_up_to_the_limit_then_the_payment_is_cancelled_and_the_stock_returned(shop: Shop) -> None:
    sku, order_id, order = paid_order(shop, units=4, quantity=3)
    payment_id = order["payment"]["payment_id"]
    for attempt in (1, 2):  # MaxPaymentAttempts is 3 (the template's default)
        assert shop.api.post(f"/dev/payments/{payment_id}/fail").json()["webhook_status"] == 200
        order = shop.wait_for(order_id, lambda o, n=attempt: o["payment"]["attempts"] == n)
        assert (order["status"], order["payment"]["status"]) == ("awaiting_payment", "declined")
        assert order["payment"]["last_error"] == {"code": "card_declined", "message": "Your card was declined."}
        assert shop.level(sku) == {"on_hand": 4, "reserved": 3, "available": 1}  # still held for the shopper
    shop.api.post(f"/dev/payments/{payment_id}/fail")
    order = shop.wait_for_status(order_id, "payment_failed")
    assert shop.execution(order_id)["status"] == "SUCCEEDED"
    assert shop.cloud.payments.intent(payment_id)["status"] == "canceled"  # nobody can pay it any more
    assert shop.order(order_id)["payment"]["status"] == "canceled"
    assert shop.level(sku) == {"on_hand": 4, "reserved": 0, "available": 4}
    assert [h["status"] for h in order["history"]] == ["pending", "awaiting_payment", "payment_failed"]


def test_a_decline_then_a_retry_pays_the_order(shop: Shop) -> None:
    sku, order_id, order = paid_order(shop, units=4, quantity=1)
    payment_id = order["payment"]["payment_id"]
    shop.api.post(f"/dev/payments/{payment_id}/fail")
    shop.wait_for(order_id, lambda o: o["payment"]["status"] == "declined")
    shop.api.post(f"/dev/payments/{payment_id}/succeed")  # the same client_secret, another card
    order = shop.wait_for_status(order_id, *PAID_OR_LATER)
    assert shop.execution(order_id)["status"] == "SUCCEEDED"
    assert (order["payment"]["status"], order["payment"]["attempts"]) == ("succeeded", 1)
    assert shop.level(sku) == {"on_hand": 3, "reserved": 0, "available": 3}
    assert shop.shipments_for(order_id) == 1


@pytest.mark.parametrize("first", ["payment_failed", "succeeded"])
def test_concurrent_failed_and_succeeded_webhooks_always_end_paid(shop: Shop, cloud: LocalCloud, first: str) -> None:
    """The two events of one payment race through the webhook function: one of them is read, then the other is
    processed completely, then the first one writes. Whichever order, the order ends paid, committed once."""
    sku, order_id, order = paid_order(shop, units=3, quantity=1)
    payment_id, payments = order["payment"]["payment_id"], cloud.payments
    receiver = cloud.functions["PaymentWebhookFunction"].module.service
    orders = receiver._orders
    write = orders.record_payment
    racing: list[str] = []

    def the_other_event_lands_first(oid: str, status: Any, **fields: Any) -> Any:
        if oid == order_id and not racing:
            racing.append(str(status))
            if first == "payment_failed":
                payments.succeed(payment_id)  # fully processed between the decline's read and its write
            else:
                failed = {
                    **payments.intent(payment_id),
                    "status": "requires_payment_method",
                    "last_payment_error": {"code": "card_declined", "message": "Declined."},
                }
                payments.deliver(payments.event("payment_intent.payment_failed", failed))
        return write(oid, status, **fields)

    orders.record_payment = the_other_event_lands_first
    try:
        if first == "payment_failed":
            failed = {
                **payments.intent(payment_id),
                "status": "requires_payment_method",
                "last_payment_error": {"code": "card_declined", "message": "Declined."},
            }
            payments.deliver(payments.event("payment_intent.payment_failed", failed))
        else:
            payments.succeed(payment_id)
    finally:
        orders.record_payment = write
    assert racing == ["declined" if first == "payment_failed" else "succeeded"]
    order = shop.wait_for_status(order_id, *PAID_OR_LATER)
    assert shop.execution(order_id)["status"] == "SUCCEEDED"
    assert order["payment"]["status"] == "succeeded"
    assert shop.level(sku) == {"on_hand": 2, "reserved": 0, "available": 2}


def test_a_payment_of_another_amount_is_refunded_in_full_and_the_order_ends_unpaid(
    shop: Shop, cloud: LocalCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    """The intent was changed at the provider (its dashboard, say) and paid for another amount: the order is not
    paid, what was captured is refunded in full (reason amount_mismatch, counted), the stock released."""
    sku, order_id, order = paid_order(shop, units=3, quantity=1)
    payment_id, total = order["payment"]["payment_id"], order["totals"]["total"]["amount"]
    cloud.payments._intents[payment_id]["amount"] = total + 100
    capsys.readouterr()
    assert shop.api.post(f"/dev/payments/{payment_id}/succeed").status_code == 200
    ended = shop.wait_for(
        order_id,
        lambda o: o["status"] == "payment_failed" and bool(o["refunds"]) and o["refunds"][0]["status"] == "succeeded",
    )
    assert shop.execution(order_id)["status"] == "SUCCEEDED"
    assert shop.level(sku) == {"on_hand": 3, "reserved": 0, "available": 3}
    [refund] = ended["refunds"]
    assert (refund["reason"], refund["amount"]["amount"]) == ("amount_mismatch", total + 100)
    assert ended["refunded"]["amount"] == total + 100
    assert (ended["payment"]["status"], ended["payment"]["last_error"]["code"]) == ("failed", "amount_mismatch")
    assert [
        (r["amount"], r["status"]) for r in cloud.payments._refunds.values() if r["payment_intent"] == payment_id
    ] == [(total + 100, "succeeded")]
    assert _metric(capsys.readouterr().out, "MismatchedPaymentsRefunded") == [1.0]


def _metric(output: str, name: str) -> list[float]:
    """The values of a business metric in the EMF blobs the functions printed."""
    values: list[float] = []
    for line in output.splitlines():
        if line.startswith('{"_aws"') and f'"{name}"' in line:
            value = json.loads(line)[name]
            values += value if isinstance(value, list) else [value]
    return values


@pytest.mark.slow("waits")
def test_a_throttled_mark_paid_is_retried_and_the_order_ends_paid_and_queued(shop: Shop, cloud: LocalCloud) -> None:
    from botocore.exceptions import ClientError

    steps = cloud.functions["OrderWorkflowFunction"].module.steps
    sku, order_id, order = paid_order(shop, units=2, quantity=1)
    move, throttled = steps.move, []

    def throttled_once(oid: str, to: Any, reason: Any = None) -> Any:
        if oid == order_id and str(to) == "paid" and len(throttled) < 2:
            throttled.append(to)
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "UpdateItem")
        return move(oid, to, reason)

    steps.move = throttled_once
    try:
        shop.api.post(f"/dev/payments/{order['payment']['payment_id']}/succeed")
        order = shop.wait_for_status(order_id, "fulfilling", "shipped", "delivered")  # paid, queued and shipped
    finally:
        steps.move = move
    assert len(throttled) == 2 and shop.execution(order_id)["status"] == "SUCCEEDED"
    assert shop.shipments_for(order_id) == 1
    assert shop.level(sku) == {"on_hand": 1, "reserved": 0, "available": 1}


# ------------------------------------------------------------------ the payment window (a cloud with a short one)


@pytest.fixture(scope="module")
def short_shop() -> Iterator[Shop]:
    """A second local cloud whose payment window is 2 s and processing grace 3 s."""
    with LocalCloud(
        stack_name=f"window-{uuid.uuid4().hex[:6]}",
        parameter_overrides={"PaymentTimeoutSeconds": "2", "PaymentProcessingGraceSeconds": "3"},
    ) as short:
        seed(short)
        gateway = Gateway(short, port=0).start()
        try:
            with httpx.Client(base_url=gateway.url, timeout=30) as api:
                yield Shop(short, api)
        finally:
            gateway.stop()
            assert check_inventory(short.client("dynamodb"), short.physical_id("InventoryTable")) == []


@pytest.mark.slow("waits")
def test_no_payment_in_time_cancels_the_payment_expires_the_order_and_returns_the_stock(
    short_shop: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    shop = short_shop
    capsys.readouterr()
    sku = shop.product(3)
    order_id = shop.checkout(shop.cart((sku, 2))).json()["id"]
    payment_id = shop.wait_for_status(order_id, "awaiting_payment")["payment"]["payment_id"]
    order = shop.wait_for_status(order_id, "expired", timeout=30)
    assert shop.execution(order_id)["status"] == "SUCCEEDED"
    assert shop.level(sku) == {"on_hand": 3, "reserved": 0, "available": 3}
    assert [h["status"] for h in order["history"]] == ["pending", "awaiting_payment", "expired"]
    assert shop.cloud.payments.intent(payment_id)["status"] == "canceled"
    refused = shop.api.post(f"/dev/payments/{payment_id}/succeed")  # the shopper can no longer pay it
    assert refused.status_code == 409 and "canceled" in refused.json()["message"]
    with pytest.raises(PaymentStateError):
        shop.cloud.payments.succeed(payment_id)
    assert shop.order(order_id)["status"] == "expired"
    # The business metric (EMF, as the functions print it): this one order expired, counted once.
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    expired = [blob["OrdersExpired"] for blob in blobs if "OrdersExpired" in blob]
    assert expired in ([1.0], [[1.0]]), expired  # EMF allows one value or an array of them


@pytest.mark.slow("waits")
def test_a_shopper_who_paid_by_the_timeout_gets_a_paid_order_even_without_the_webhook(short_shop: Shop) -> None:
    shop = short_shop
    sku = shop.product(3)
    order_id = shop.checkout(shop.cart((sku, 1))).json()["id"]
    payment_id = shop.wait_for_status(order_id, "awaiting_payment")["payment"]["payment_id"]
    shop.cloud.payments._move(payment_id, status="succeeded")
    order = shop.wait_for_status(order_id, *PAID_OR_LATER, timeout=30)
    assert shop.execution(order_id)["status"] == "SUCCEEDED"
    assert order["payment"]["status"] == "succeeded" and order["refunds"] == []
    assert shop.level(sku) == {"on_hand": 2, "reserved": 0, "available": 2}


@pytest.mark.slow("waits")
def test_a_payment_that_succeeds_after_the_order_expired_is_refunded_in_full(short_shop: Shop) -> None:
    """A delayed method still processing at the timeout and after the grace (the provider will not cancel it):
    the order expires and its stock is released; when the payment succeeds after all, it is refunded in full."""
    shop = short_shop
    sku = shop.product(3)
    order_id = shop.checkout(shop.cart((sku, 1))).json()["id"]
    payment_id = shop.wait_for_status(order_id, "awaiting_payment")["payment"]["payment_id"]
    assert shop.cloud.payments.processing(payment_id) == 200
    order = shop.wait_for_status(order_id, "expired", timeout=30)
    assert shop.execution(order_id)["status"] == "SUCCEEDED"
    assert shop.level(sku) == {"on_hand": 3, "reserved": 0, "available": 3}
    assert order["payment"]["status"] == "processing"
    assert shop.cloud.payments.succeed(payment_id) == 200  # the bank debit went through after all
    order = shop.wait_for(order_id, lambda o: o["refunds"] and o["refunds"][0]["status"] == "succeeded")
    assert order["status"] == "expired" and order["payment"]["status"] == "succeeded"
    [refund] = order["refunds"]
    assert (refund["reason"], refund["amount"]) == ("late_payment", order["totals"]["total"])
    assert order["refunded"] == order["totals"]["total"]
    refunds = [r for r in shop.cloud.payments._refunds.values() if r["payment_intent"] == payment_id]
    assert [(r["amount"], r["status"]) for r in refunds] == [(order["totals"]["total"]["amount"], "succeeded")]
    assert shop.cloud.payments.deliver(shop.cloud.payments.delivered[-1][0]) == 200  # a redelivery: still one
    assert len(shop.order(order_id)["refunds"]) == 1


def test_a_late_payment_whose_refund_failed_is_refunded_by_an_operator(short_shop: Shop) -> None:
    """The automatic refund of a late payment failed at the provider: the order is expired, yet its money must still
    be refundable by an operator (any order with captured money is), and nothing else about it changes."""
    shop = short_shop
    sku = shop.product(3)
    order_id = shop.checkout(shop.cart((sku, 1))).json()["id"]
    payment_id = shop.wait_for_status(order_id, "awaiting_payment")["payment"]["payment_id"]
    assert shop.cloud.payments.processing(payment_id) == 200
    shop.wait_for_status(order_id, "expired", timeout=30)
    shop.cloud.payments.refund_outcome = "failed"
    try:
        assert shop.cloud.payments.succeed(payment_id) == 200
        order = shop.wait_for(order_id, lambda o: bool(o["refunds"]) and o["refunds"][0]["status"] == "failed")
    finally:
        shop.cloud.payments.refund_outcome = "succeeded"
    total = order["totals"]["total"]
    assert (order["status"], order["refunded"]["amount"]) == ("expired", 0)
    token = shop.api.post("/dev/auth/token", json={"groups": ["admin"]}).json()["access_token"]
    admin = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
    refunded = shop.api.post(
        f"/admin/orders/{order_id}/refunds", json={"reason": "late payment, retried"}, headers=admin
    )
    assert refunded.status_code == 201, refunded.text
    assert (refunded.json()["amount"], refunded.json()["status"]) == (total, "succeeded")
    order = shop.order(order_id)
    assert (order["status"], order["refunded"]) == ("expired", total)
    assert sorted(
        (r["amount"], r["status"]) for r in shop.cloud.payments._refunds.values() if r["payment_intent"] == payment_id
    ) == [(total["amount"], "failed"), (total["amount"], "succeeded")]
    restock = shop.api.post(
        f"/admin/orders/{order_id}/refunds",
        headers={**admin, "Idempotency-Key": "restock"},
        json={"reason": "x", "lines": [{"sku": sku, "quantity": 1}], "restock": True},
    )
    assert (restock.status_code, restock.json()["code"]) == (422, "validation_error")  # its units never left
    assert shop.level(sku) == {"on_hand": 3, "reserved": 0, "available": 3}


def test_a_payment_that_stops_processing_in_the_grace_is_cancelled_at_its_end(short_shop: Shop) -> None:
    """Processing at the timeout, so the provider refused to cancel it; then the bank debit failed and the intent may
    be paid again. The cancel at the grace's end must cancel it: with one idempotency key per intent, Stripe would
    replay the first refusal (it replays a key's first answer, errors included) and leave the intent payable."""
    shop = short_shop
    sku = shop.product(3)
    order_id = shop.checkout(shop.cart((sku, 1))).json()["id"]
    payment_id = shop.wait_for_status(order_id, "awaiting_payment")["payment"]["payment_id"]
    assert shop.cloud.payments.processing(payment_id) == 200
    sfn = shop.cloud.client("stepfunctions")
    arn = shop.cloud.physical_id("OrderWorkflow").replace(":stateMachine:", ":execution:") + f":{order_id}"
    wait_until(
        lambda: any(
            e.get("stateEnteredEventDetails", {}).get("name") == "WaitForProcessingPayment"
            for e in sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        ),
        "the refused cancel at the timeout, then the grace",
    )
    assert shop.cloud.payments.fail(payment_id) == 200  # payable again (one decline of MaxPaymentAttempts)
    order = shop.wait_for_status(order_id, "expired", timeout=30)
    assert shop.execution(order_id)["status"] == "SUCCEEDED"
    assert shop.cloud.payments.intent(payment_id)["status"] == "canceled"  # nobody can pay it any more
    assert order["payment"]["status"] == "canceled" and order["refunds"] == []
    assert shop.level(sku) == {"on_hand": 3, "reserved": 0, "available": 3}


def test_the_same_webhook_twice_moves_the_order_once(shop: Shop) -> None:
    sku, order_id, order = paid_order(shop)
    payments = shop.cloud.payments
    assert payments.succeed(order["payment"]["payment_id"]) == 200
    event, _ = payments.delivered[-1]
    assert event["data"]["object"]["id"] == order["payment"]["payment_id"]
    assert payments.deliver(event) == 200  # Stripe retries, or delivers twice
    order = shop.wait_for_status(order_id, "fulfilling")
    shop.execution(order_id)
    assert [h["status"] for h in order["history"]] == ["pending", "awaiting_payment", "paid", "fulfilling"]
    assert shop.shipments_for(order_id) == 1
    assert shop.level(sku) == {"on_hand": 3, "reserved": 0, "available": 3}


def test_payment_failed_after_succeeded_leaves_the_order_paid(shop: Shop) -> None:
    sku, order_id, order = paid_order(shop)
    payment_id = order["payment"]["payment_id"]
    shop.api.post(f"/dev/payments/{payment_id}/succeed")
    shop.wait_for_status(order_id, *PAID_OR_LATER)
    shop.execution(order_id)
    payments = shop.cloud.payments
    failed = {**payments.intent(payment_id), "status": "requires_payment_method"}  # an older attempt, arriving late
    assert payments.deliver(payments.event("payment_intent.payment_failed", failed)) == 200
    order = shop.order(order_id)
    assert order["status"] in PAID_OR_LATER and order["payment"]["status"] == "succeeded"
    assert shop.level(sku) == {"on_hand": 3, "reserved": 0, "available": 3}


def test_a_crash_after_the_stock_write_does_not_reserve_twice(shop: Shop, cloud: LocalCloud) -> None:
    """The stock function dies after its transaction landed but before it answered; the workflow retries
    the step, which finds the reservation already made."""
    stock = cloud.functions["StockFunction"].module
    sku = shop.product(5)
    cart_id = shop.cart((sku, 2))
    crashed: list[str] = []
    real_handle = stock.service.handle

    def handle_then_crash(request: Any) -> Any:
        outcome = real_handle(request)
        if request.action == "reserve" and sku in request.quantities() and not crashed:
            crashed.append(request.order_id)
            raise ConnectionResetError("the runtime died before answering")
        return outcome

    stock.service.handle = handle_then_crash
    try:
        order = shop.wait_for_status(shop.checkout(cart_id).json()["id"], "awaiting_payment")
    finally:
        stock.service.handle = real_handle
    assert crashed == [order["id"]]
    assert shop.level(sku) == {"on_hand": 5, "reserved": 2, "available": 3}  # reserved once, not twice
    for _ in range(3):
        shop.api.post(f"/dev/payments/{order['payment']['payment_id']}/fail")
    shop.wait_for_status(order["id"], "payment_failed")
    shop.execution(order["id"])
    assert shop.level(sku) == {"on_hand": 5, "reserved": 0, "available": 5}  # and released exactly once


# ------------------------------------------------------------------ never oversold


def _race(shop: Shop, gateway: Any, sku: str, orders: int) -> list[dict[str, Any]]:
    """`orders` concurrent checkouts of one unit each; the orders they made, in their final status. A checkout that
    finds the SKU already sold out is answered 409 at once (the fast path) and makes no order: it is returned as
    {"status": "refused"}, the same outcome for the shopper as a rejected order."""
    carts = [shop.cart((sku, 1)) for _ in range(orders)]
    start = threading.Barrier(min(orders, 50))
    responses: list[httpx.Response] = []
    lock = threading.Lock()

    def buy(batch: list[str]) -> None:
        with httpx.Client(base_url=gateway.url, timeout=60) as client:
            start.wait()
            for cart_id in batch:
                response = shop.checkout(cart_id, client=client)
                with lock:
                    responses.append(response)

    batches = [carts[i::50] for i in range(min(orders, 50))]
    threads = [threading.Thread(target=buy, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    refused = [r for r in responses if r.status_code == 409]
    for response in refused:
        problem = response.json()
        assert problem["code"] == "insufficient_stock"
        assert problem["errors"] == [
            {"sku": sku, "code": "insufficient_stock", "available": 0, "message": "0 available"}
        ]
    assert sorted({r.status_code for r in responses} - {409}) == [202], [r.text for r in responses]
    placed = [shop.wait_for_status(r.json()["id"], *FINAL, timeout=120) for r in responses if r.status_code == 202]
    return placed + [{"status": "refused"}] * len(refused)


@pytest.mark.slow("race")
def test_fifty_checkouts_for_one_unit_sell_it_once(shop: Shop, gateway: Any) -> None:
    sku = shop.product(1)
    orders = _race(shop, gateway, sku, 50)
    statuses = Counter(o["status"] for o in orders)
    assert statuses["awaiting_payment"] == 1 and statuses["rejected"] + statuses["refused"] == 49, statuses
    for order in orders:
        if order["status"] == "rejected":
            assert order["reason"]["code"] == "insufficient_stock"
            assert order["reason"]["lines"] == [{"sku": sku, "requested": 1, "available": 0}]
    assert shop.level(sku) == {"on_hand": 1, "reserved": 1, "available": 0}


@pytest.mark.slow("race")
def test_two_hundred_checkouts_for_fifty_units_hold_exactly_fifty(shop: Shop, gateway: Any) -> None:
    sku = shop.product(50)
    orders = _race(shop, gateway, sku, 200)
    statuses = Counter(o["status"] for o in orders)
    assert statuses["awaiting_payment"] == 50 and statuses["rejected"] + statuses["refused"] == 150, statuses
    assert shop.level(sku) == {"on_hand": 50, "reserved": 50, "available": 0}


# ------------------------------------------------------------------ the idempotency contract


def test_missing_idempotency_key_is_400(shop: Shop) -> None:
    response = shop.api.post(
        "/checkout", json={"cart_id": shop.cart((shop.product(1), 1)), "email": "a@b.de", "shipping_address": ADDRESS}
    )
    assert response.status_code == 400 and response.json()["code"] == "idempotency_key_required"


def test_same_key_same_body_replays_the_same_response(shop: Shop) -> None:
    cart_id = shop.cart((shop.product(2), 1))
    key = uuid.uuid4().hex
    first, again = shop.checkout(cart_id, key), shop.checkout(cart_id, key)
    assert (first.status_code, again.status_code) == (202, 202)
    assert first.content == again.content  # the stored response, byte for byte
    shop.wait_for_status(first.json()["id"], *FINAL)


def test_same_key_other_body_is_422(shop: Shop) -> None:
    cart_id = shop.cart((shop.product(2), 1))
    key = uuid.uuid4().hex
    first = shop.checkout(cart_id, key)
    other = shop.checkout(cart_id, key, email="someone.else@example.com")
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    shop.wait_for_status(first.json()["id"], *FINAL)


def test_same_key_while_the_first_still_runs_is_409(shop: Shop, cloud: LocalCloud) -> None:
    cart_id = shop.cart((shop.product(2), 1))
    key = uuid.uuid4().hex
    body = {"cart_id": cart_id, "email": "ada@example.com", "shipping_address": {**ADDRESS, "line2": None}}
    store = IdempotencyStore(cloud.client("dynamodb"), cloud.physical_id("OrdersTable"), ttl_seconds=3600)
    assert store.claim("checkout", key, request_hash(body)) is None  # the first request, mid-flight
    response = shop.checkout(cart_id, key)
    assert response.status_code == 409 and response.json()["code"] == "request_in_progress"
    assert response.headers["retry-after"] == "1"


def test_a_new_key_for_a_checked_out_cart_returns_its_order_and_creates_nothing(shop: Shop, cloud: LocalCloud) -> None:
    cart_id = shop.cart((shop.product(2), 1))
    first = shop.checkout(cart_id)
    second = shop.checkout(cart_id)
    assert second.status_code == 200 and second.json()["id"] == first.json()["id"]
    shop.wait_for_status(first.json()["id"], *FINAL)
    executions = cloud.client("stepfunctions").list_executions(stateMachineArn=cloud.physical_id("OrderWorkflow"))
    assert sum(e["name"] == first.json()["id"] for e in executions["executions"]) == 1


# ------------------------------------------------------------------ the sold-out fast path and overload


def _executions(cloud: LocalCloud) -> set[str]:
    pages = (
        cloud.client("stepfunctions")
        .get_paginator("list_executions")
        .paginate(stateMachineArn=cloud.physical_id("OrderWorkflow"))
    )
    return {e["name"] for page in pages for e in page["executions"]}


def test_a_cart_current_stock_cannot_fill_is_refused_at_once_with_no_order_and_no_workflow(
    shop: Shop, cloud: LocalCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    sku, plenty = shop.product(2), shop.product(5)
    cart_id, key = shop.cart((plenty, 1), (sku, 3)), uuid.uuid4().hex
    before = _executions(cloud)
    response = shop.checkout(cart_id, key)
    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["code"] == "insufficient_stock"
    assert problem["errors"] == [{"sku": sku, "code": "insufficient_stock", "available": 2, "message": "2 available"}]
    assert OrderRepositoryProbe(cloud).order_for_cart(cart_id) is None
    assert _executions(cloud) == before
    assert shop.level(sku) == {"on_hand": 2, "reserved": 0, "available": 2}
    assert '"CheckoutsRefusedSoldOut":[1.0]' in capsys.readouterr().out.replace(" ", "")
    # Refused, not spent: the same key goes through once the stock is there (the claim was given back).
    shop.inventory.put_level(sku, 3)
    again = shop.checkout(cart_id, key)
    assert again.status_code == 202, again.text
    assert shop.wait_for_status(again.json()["id"], "awaiting_payment")["id"] in _executions(cloud)


@pytest.mark.slow("waits")
def test_a_throttled_workflow_start_is_a_503_and_the_retry_with_the_same_key_makes_one_order(
    shop: Shop, cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.core.exceptions import JsonRESTError
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    def throttled(*_: Any, **__: Any) -> None:
        raise JsonRESTError("ThrottlingException", "Rate exceeded")

    sku = shop.product(3)
    cart_id, key = shop.cart((sku, 1)), uuid.uuid4().hex
    with monkeypatch.context() as patch:
        patch.setattr(StepFunctionsParserBackend, "start_execution", throttled)
        busy = shop.checkout(cart_id, key)
    assert busy.status_code == 503, busy.text
    assert busy.json()["code"] == "busy" and busy.headers["retry-after"] == "2"

    retried = shop.checkout(cart_id, key)  # Step Functions has recovered
    assert retried.status_code in (200, 202), retried.text
    order_id = retried.json()["id"]
    assert shop.checkout(cart_id, key).json()["id"] == order_id  # and it stays the one order
    assert sum(name == order_id for name in _executions(cloud)) == 1
    shop.wait_for_status(order_id, "awaiting_payment")
    assert shop.level(sku) == {"on_hand": 3, "reserved": 1, "available": 2}


def test_concurrent_checkouts_of_one_cart_make_one_order(shop: Shop, gateway: Any) -> None:
    cart_id = shop.cart((shop.product(3), 1))
    ids: list[str] = []

    def buy() -> None:
        with httpx.Client(base_url=gateway.url, timeout=30) as client:
            response = shop.checkout(cart_id, client=client)
            assert response.status_code in (200, 202)
            ids.append(response.json()["id"])

    threads = [threading.Thread(target=buy) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 1
    shop.wait_for_status(ids[0], *FINAL)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"email": "not-an-email"}, "validation_error"),
        ({"email": "a@b"}, "validation_error"),
        ({"shipping_address": {**ADDRESS, "postal_code": ""}}, "validation_error"),
        ({"shipping_address": {**ADDRESS, "country": "Germany"}}, "validation_error"),
        ({"shipping_address": {**ADDRESS, "extra": 1}}, "validation_error"),
        ({"shipping_address": {**ADDRESS, "country": "FR"}}, "shipping_country_mismatch"),
        ({"coupon": "FREE"}, "validation_error"),
    ],
)
def test_invalid_checkouts_are_422_and_create_nothing(
    shop: Shop, cloud: LocalCloud, change: dict[str, Any], code: str
) -> None:
    cart_id = shop.cart((shop.product(2), 1))
    response = shop.checkout(cart_id, **change)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code
    assert OrderRepositoryProbe(cloud).order_for_cart(cart_id) is None


def test_empty_cart_unknown_cart_and_no_shipping(shop: Shop) -> None:
    now = datetime.now(UTC)
    empty = uuid.uuid4().hex
    shop.carts.create(
        StoredCart(
            id=empty,
            currency="EUR",
            version=1,
            lines=[],
            shipping=StoredShipping(country="DE", method="standard"),
            created_at=now,
            updated_at=now,
            expires_at=now + timedelta(hours=1),
        )
    )
    assert shop.checkout(empty).json()["code"] == "empty_cart"
    no_shipping = shop.cart((shop.product(1), 1))
    shop.carts.save(shop.carts.get(no_shipping).model_copy(update={"shipping": None, "version": 2}), 1)
    assert shop.checkout(no_shipping).json()["code"] == "shipping_required"
    assert shop.checkout(uuid.uuid4().hex).status_code == 404
    key = uuid.uuid4().hex  # a failed checkout gives its key back: fixed, the same key succeeds
    assert shop.checkout(empty, key).status_code == 422
    assert shop.checkout(empty, key).status_code == 422


def test_unknown_order_is_404(shop: Shop) -> None:
    assert shop.api.get("/orders/" + "x" * 32).status_code == 404
    assert shop.api.get("/orders/" + "x" * 65).status_code == 422


class OrderRepositoryProbe:
    def __init__(self, cloud: LocalCloud) -> None:
        from storefront.orders.repository import OrderRepository

        self.repository = OrderRepository(cloud.client("dynamodb"), cloud.physical_id("OrdersTable"))

    def order_for_cart(self, cart_id: str) -> str | None:
        return self.repository.order_for_cart(cart_id)
