"""Checkout and the order saga end to end on the local cloud: HTTP → checkout function → Step Functions
(moto, executing statemachines/order.asl.json) → stock, payments and order-step functions → SQS → the
fulfilment function, which ships the order with the local carrier.

After every test the inventory invariant is checked: on_hand = available + reserved, and the ledger sums
to the levels, for every SKU."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from local_cloud.cloud import LocalCloud
from local_cloud.demo_data import seed
from local_cloud.gateway import Gateway
from storefront.cart.models import StoredCart, StoredLine, StoredShipping
from storefront.cart.repository import CartRepository
from storefront.catalog.models import StoredProduct, StoredVariant
from storefront.catalog.repository import CatalogRepository
from storefront.idempotency import IdempotencyStore, request_hash
from storefront.inventory.invariant import check_inventory
from storefront.inventory.repository import InventoryRepository
from storefront.money import Money

ADDRESS = {"name": "Ada Lovelace", "line1": "Unter den Linden 1", "city": "Berlin", "postal_code": "10117",
           "country": "DE"}
# Paid orders move straight on: the fulfilment function ships them (the session's carrier then waits to be told).
PAID_OR_LATER = ("paid", "fulfilling", "shipped", "delivered")
FINAL = {"awaiting_payment", *PAID_OR_LATER, "rejected", "payment_failed", "expired", "cancelled"}


class Shop:
    """What a test needs to set up and observe checkouts on one local cloud."""

    def __init__(self, cloud: LocalCloud, api: httpx.Client) -> None:
        self.cloud = cloud
        self.api = api
        dynamodb = cloud.client("dynamodb")
        self.catalog = CatalogRepository(dynamodb, cloud.physical_id("CatalogTable"))
        self.inventory = InventoryRepository(dynamodb, cloud.physical_id("InventoryTable"))
        self.carts = CartRepository(dynamodb, cloud.physical_id("CartTable"))

    def product(self, units: int, price: int = 1000) -> str:
        """A new product with one SKU and `units` in stock; returns the SKU."""
        product_id = f"saga-{uuid.uuid4().hex[:10]}"
        sku = product_id.upper() + "-ONE"
        self.catalog.put_product(StoredProduct(id=product_id, name="Saga test", description="", category="test",
                                               images=[], variants=[StoredVariant(
                                                   sku=sku, title="One", price=Money(amount=price, currency="EUR"))]))
        self.inventory.put_level(sku, units)
        return sku

    def cart(self, *lines: tuple[str, int], price: int = 1000) -> str:
        """A cart ready for checkout, written directly (the cart API is tested elsewhere)."""
        now = datetime.now(UTC)
        cart_id = uuid.uuid4().hex
        self.carts.create(StoredCart(
            id=cart_id, currency="EUR", version=1, created_at=now, updated_at=now, expires_at=now + timedelta(hours=1),
            lines=[StoredLine(sku=sku, quantity=q, seen_price=Money(amount=price, currency="EUR")) for sku, q in lines],
            shipping=StoredShipping(country="DE", method="standard")))
        return cart_id

    def checkout(self, cart_id: str, key: str | None = None, client: httpx.Client | None = None,
                 **changes: Any) -> httpx.Response:
        body = {"cart_id": cart_id, "email": "ada@example.com", "shipping_address": ADDRESS, **changes}
        return (client or self.api).post("/checkout", json=body, headers={"Idempotency-Key": key or uuid.uuid4().hex})

    def order(self, order_id: str) -> dict[str, Any]:
        response = self.api.get(f"/orders/{order_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_for(self, order_id: str, condition: Callable[[dict[str, Any]], bool], timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            order = self.order(order_id)
            if condition(order):
                return order
            if time.monotonic() > deadline:
                raise AssertionError(f"order {order_id} stuck in {order['status']}: {order}")
            time.sleep(0.1)

    def wait_for_status(self, order_id: str, *statuses: str, timeout: float = 60) -> dict[str, Any]:
        return self.wait_for(order_id, lambda o: o["status"] in statuses, timeout)

    def level(self, sku: str) -> dict[str, int]:
        item = self.cloud.client("dynamodb").get_item(TableName=self.cloud.physical_id("InventoryTable"),
                                                      Key={"pk": {"S": f"SKU#{sku}"}, "sk": {"S": "LEVEL"}},
                                                      ConsistentRead=True)["Item"]
        return {k: int(item[k]["N"]) for k in ("on_hand", "reserved", "available")}

    def shipments_for(self, order_id: str) -> int:
        """How many shipments the local carrier holds for the order, once the order is fulfilling."""
        self.wait_for_status(order_id, "fulfilling", "shipped", "delivered")
        return sum(s["reference"] == order_id for s in self.cloud.carrier.shipments.values())

    def execution(self, order_id: str, timeout: float = 60) -> dict[str, Any]:
        sfn = self.cloud.client("stepfunctions")
        arn = self.cloud.physical_id("OrderWorkflow").replace(":stateMachine:", ":execution:") + f":{order_id}"
        deadline = time.monotonic() + timeout
        while (execution := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            assert time.monotonic() < deadline, f"execution {order_id} still running"
            time.sleep(0.1)
        return execution


@pytest.fixture()
def shop(cloud: LocalCloud, api: httpx.Client) -> Iterator[Shop]:
    yield Shop(cloud, api)
    assert check_inventory(cloud.client("dynamodb"), cloud.physical_id("InventoryTable")) == []


def paid_order(shop: Shop, units: int = 5, quantity: int = 2) -> tuple[str, str, dict[str, Any]]:
    sku = shop.product(units)
    response = shop.checkout(shop.cart((sku, quantity)))
    assert response.status_code == 202, response.text
    order = shop.wait_for_status(response.json()["id"], "awaiting_payment")
    return sku, order["id"], order


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


def test_a_failed_payment_returns_the_stock_exactly(shop: Shop) -> None:
    sku, order_id, order = paid_order(shop, units=4, quantity=3)
    shop.api.post(f"/dev/payments/{order['payment']['payment_id']}/fail")
    order = shop.wait_for_status(order_id, "payment_failed")
    shop.execution(order_id)
    assert shop.level(sku) == {"on_hand": 4, "reserved": 0, "available": 4}
    assert [h["status"] for h in order["history"]] == ["pending", "awaiting_payment", "payment_failed"]


def test_no_payment_in_time_expires_the_order_and_returns_the_stock(tmp_path: Any) -> None:
    with LocalCloud(stack_name=f"expiry-{uuid.uuid4().hex[:6]}",
                    parameter_overrides={"PaymentTimeoutSeconds": "2"}) as short:
        seed(short)
        gateway = Gateway(short, port=0).start()
        try:
            with httpx.Client(base_url=gateway.url, timeout=30) as api:
                shop = Shop(short, api)
                sku = shop.product(3)
                order_id = shop.checkout(shop.cart((sku, 2))).json()["id"]
                shop.wait_for_status(order_id, "awaiting_payment")
                order = shop.wait_for_status(order_id, "expired", timeout=30)
                shop.execution(order_id)
                assert shop.level(sku) == {"on_hand": 3, "reserved": 0, "available": 3}
                assert [h["status"] for h in order["history"]] == ["pending", "awaiting_payment", "expired"]
                late = short.payments.succeed(order["payment"]["payment_id"])  # the shopper pays too late
                assert late == 200
                assert shop.order(order_id)["status"] == "expired"
                assert check_inventory(short.client("dynamodb"), short.physical_id("InventoryTable")) == []
        finally:
            gateway.stop()


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
        assert problem["errors"] == [{"sku": sku, "code": "insufficient_stock", "available": 0,
                                      "message": "0 available"}]
    assert sorted({r.status_code for r in responses} - {409}) == [202], [r.text for r in responses]
    placed = [shop.wait_for_status(r.json()["id"], *FINAL, timeout=120) for r in responses if r.status_code == 202]
    return placed + [{"status": "refused"}] * len(refused)


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


def test_two_hundred_checkouts_for_fifty_units_hold_exactly_fifty(shop: Shop, gateway: Any) -> None:
    sku = shop.product(50)
    orders = _race(shop, gateway, sku, 200)
    statuses = Counter(o["status"] for o in orders)
    assert statuses["awaiting_payment"] == 50 and statuses["rejected"] + statuses["refused"] == 150, statuses
    assert shop.level(sku) == {"on_hand": 50, "reserved": 50, "available": 0}


# ------------------------------------------------------------------ the idempotency contract

def test_missing_idempotency_key_is_400(shop: Shop) -> None:
    response = shop.api.post("/checkout", json={"cart_id": shop.cart((shop.product(1), 1)), "email": "a@b.de",
                                                "shipping_address": ADDRESS})
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
    pages = cloud.client("stepfunctions").get_paginator("list_executions").paginate(
        stateMachineArn=cloud.physical_id("OrderWorkflow"))
    return {e["name"] for page in pages for e in page["executions"]}


def test_a_cart_current_stock_cannot_fill_is_refused_at_once_with_no_order_and_no_workflow(
        shop: Shop, cloud: LocalCloud, capsys: pytest.CaptureFixture[str]) -> None:
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


def test_a_throttled_workflow_start_is_a_503_and_the_retry_with_the_same_key_makes_one_order(
        shop: Shop, cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> None:
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


@pytest.mark.parametrize(("change", "code"), [
    ({"email": "not-an-email"}, "validation_error"),
    ({"email": "a@b"}, "validation_error"),
    ({"shipping_address": {**ADDRESS, "postal_code": ""}}, "validation_error"),
    ({"shipping_address": {**ADDRESS, "country": "Germany"}}, "validation_error"),
    ({"shipping_address": {**ADDRESS, "extra": 1}}, "validation_error"),
    ({"shipping_address": {**ADDRESS, "country": "FR"}}, "shipping_country_mismatch"),
    ({"coupon": "FREE"}, "validation_error"),
])
def test_invalid_checkouts_are_422_and_create_nothing(shop: Shop, cloud: LocalCloud, change: dict[str, Any],
                                                     code: str) -> None:
    cart_id = shop.cart((shop.product(2), 1))
    response = shop.checkout(cart_id, **change)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code
    assert OrderRepositoryProbe(cloud).order_for_cart(cart_id) is None


def test_empty_cart_unknown_cart_and_no_shipping(shop: Shop) -> None:
    now = datetime.now(UTC)
    empty = uuid.uuid4().hex
    shop.carts.create(StoredCart(id=empty, currency="EUR", version=1, lines=[], shipping=StoredShipping(
        country="DE", method="standard"), created_at=now, updated_at=now, expires_at=now + timedelta(hours=1)))
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
