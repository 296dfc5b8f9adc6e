"""Per-client limits on checkout, on a local cloud of their own running the limits shop.json ships: orders holding
stock per email and per source IP (429 rate_limited with Retry-After, while other clients still check out), units
of one SKU per order (422), exactly the limit passing however many checkouts of one client race, with conflicting
transactions and throttling injected, places given back when orders end and lapsing when never given back.

Several source addresses on one machine: the gateway listens on 127.0.0.1 and clients connect from other
addresses of the loopback range (127.0.0.2, ...), which API Gateway's sourceIp then shows."""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from storefront.dynamodb import from_item, key
from storefront.inventory.invariant import check_inventory
from storefront.limits.models import member_for
from storefront.limits.repository import HOLDS_SK, ClientHoldRepository
from storefront.limits.service import client_key
from storefront.shop import DEFAULT_FILE, load_shop_config

from local_cloud.cloud import LocalCloud
from local_cloud.gateway import Gateway
from tests.admin_api import bearer
from tests.saga_shop import ShopData
from tests.waiting import wait_until

LIMITS = load_shop_config(str(DEFAULT_FILE)).checkout_limits  # the limits the shop ships with
ADDRESS = {"name": "Grace Hopper", "line1": "Main St 1", "city": "Berlin", "postal_code": "10117", "country": "DE"}
_addresses = itertools.count(2)


class Shop(ShopData):
    def __init__(self, cloud: LocalCloud, url: str) -> None:
        super().__init__(cloud)
        self.url = url
        self.dynamodb = cloud.client("dynamodb")
        self.orders_table = cloud.physical_id("OrdersTable")
        self.holds = ClientHoldRepository(self.dynamodb, self.orders_table)

    def client(self) -> httpx.Client:
        """A client at an address of its own (127.0.0.<n>)."""
        address = f"127.0.0.{next(_addresses)}"
        return httpx.Client(base_url=self.url, timeout=60, transport=httpx.HTTPTransport(local_address=address))

    @staticmethod
    def checkout(client: httpx.Client, cart_id: str, email: str, key: str | None = None) -> httpx.Response:
        return client.post(
            "/checkout",
            json={"cart_id": cart_id, "email": email, "shipping_address": ADDRESS},
            headers={"Idempotency-Key": key or uuid.uuid4().hex},
        )

    def order(self, order_id: str) -> dict[str, Any]:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            return client.get(f"/orders/{order_id}").json()

    def wait_for_status(self, order_id: str, *statuses: str) -> dict[str, Any]:
        return wait_until(lambda: (o := self.order(order_id))["status"] in statuses and o, f"{order_id} in {statuses}")

    def places(self, kind: str, client: str) -> list[str]:
        item = self.dynamodb.get_item(
            TableName=self.orders_table, Key=key(pk=client_key(kind, client), sk=HOLDS_SK), ConsistentRead=True
        ).get("Item")
        return sorted(from_item(item).get("holds", [])) if item else []


@pytest.fixture(scope="module")
def shop() -> Iterator[Shop]:
    """A local cloud whose functions read the shop.json the shop ships (the session's other clouds run without
    client limits), with the route throttles out of the way."""
    saved = os.environ.pop("SHOP_CONFIG_FILE", None)
    cloud = LocalCloud(
        stack_name=f"limits-{uuid.uuid4().hex[:6]}",
        parameter_overrides={"CheckoutBurstLimit": "5000", "CheckoutRateLimit": "10000"},
    )
    try:
        cloud.start()
    finally:
        if saved is not None:
            os.environ["SHOP_CONFIG_FILE"] = saved
    gateway = Gateway(cloud, port=0).start()
    try:
        yield Shop(cloud, gateway.url)
        assert check_inventory(cloud.client("dynamodb"), cloud.physical_id("InventoryTable")) == []
    finally:
        gateway.stop()
        cloud.stop()


def _email() -> str:
    return f"shopper-{uuid.uuid4().hex[:8]}@example.com"


def _retry_after(response: httpx.Response) -> int:
    return int(response.headers["retry-after"])


# ------------------------------------------------------------------ per email and per source IP


def test_an_email_over_its_limit_gets_429_with_retry_after_while_another_shopper_checks_out(shop: Shop) -> None:
    sku = shop.product(50)
    email = _email()
    with shop.client() as one, shop.client() as other_address, shop.client() as stranger:
        placed = [shop.checkout(one, shop.cart((sku, 1)), email) for _ in range(LIMITS.orders_holding_stock_per_email)]
        assert [r.status_code for r in placed] == [202] * LIMITS.orders_holding_stock_per_email
        cart_id = shop.cart((sku, 1))
        # Another address does not help: the email is at its limit.
        refused = shop.checkout(other_address, cart_id, email.upper())  # case and spaces do not make another email
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        problem = refused.json()
        assert problem["code"] == "rate_limited" and problem["status"] == 429
        assert problem["errors"][0]["field"] == "email"
        # Until the oldest unpaid order's place lapses: the payment window, a payment's processing grace, the margin
        # (and a second of rounding: expiries are whole seconds).
        window = int(shop.cloud.template.parameter("PaymentTimeoutSeconds"))
        grace = int(shop.cloud.template.parameter("PaymentProcessingGraceSeconds"))
        assert window + grace < _retry_after(refused) <= window + grace + 300 + 1
        assert (
            shop.cloud.client("dynamodb")
            .get_item(  # no order for that cart
                TableName=shop.orders_table, Key=key(pk=f"CART#{cart_id}", sk="ORDER")
            )
            .get("Item")
            is None
        )
        # Meanwhile another shopper checks out, from the first shopper's address too.
        assert shop.checkout(one, shop.cart((sku, 1)), _email()).status_code == 202
        assert shop.checkout(stranger, shop.cart((sku, 1)), _email()).status_code == 202
    assert len(shop.places("email", email)) == LIMITS.orders_holding_stock_per_email


@pytest.mark.slow("waits")
def test_a_source_address_over_its_limit_gets_429_while_other_addresses_check_out(shop: Shop) -> None:
    sku = shop.product(100)
    with shop.client() as crowded, shop.client() as elsewhere:
        statuses = [
            shop.checkout(crowded, shop.cart((sku, 1)), _email()).status_code
            for _ in range(LIMITS.orders_holding_stock_per_ip)
        ]
        assert statuses == [202] * LIMITS.orders_holding_stock_per_ip
        refused = shop.checkout(crowded, shop.cart((sku, 1)), _email())
        assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
        assert refused.json()["errors"] == [] and _retry_after(refused) > 0  # nothing the shopper could correct
        assert shop.checkout(elsewhere, shop.cart((sku, 1)), _email()).status_code == 202


# ------------------------------------------------------------------ concurrency and faults


def _race(shop: Shop, email: str, sku: str, checkouts: int) -> list[httpx.Response]:
    """`checkouts` checkouts of one email at once, each from its own address and cart."""
    carts = [shop.cart((sku, 1)) for _ in range(checkouts)]
    clients = [shop.client() for _ in range(checkouts)]
    start = threading.Barrier(checkouts)
    responses: list[httpx.Response] = []
    lock = threading.Lock()

    def buy(client: httpx.Client, cart_id: str) -> None:
        start.wait()
        response = shop.checkout(client, cart_id, email)
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=buy, args=pair) for pair in zip(clients, carts, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    return responses


def test_racing_checkouts_of_one_shopper_let_exactly_the_limit_through(shop: Shop) -> None:
    email, sku = _email(), shop.product(100)
    responses = _race(shop, email, sku, LIMITS.orders_holding_stock_per_email + 12)
    assert Counter(r.status_code for r in responses) == {202: LIMITS.orders_holding_stock_per_email, 429: 12}
    placed = [r.json()["id"] for r in responses if r.status_code == 202]
    assert sorted(m.split("#", 1)[1] for m in shop.places("email", email)) == sorted(placed)
    for order_id in placed:
        shop.wait_for_status(order_id, "awaiting_payment")
    assert shop.inventory.level(sku).reserved == len(placed)  # type: ignore[union-attr]


class Conflicting:
    """DynamoDB answering the checkout's order transaction with a conflict or throttling on its first tries, as
    real DynamoDB does when transactions of one client's limit item race (moto never does)."""

    def __init__(self, client: Any, refusals_per_call: int) -> None:
        self._client = client
        self._real = client.transact_write_items
        self._refusals = refusals_per_call
        self._lock = threading.Lock()
        self.refused = 0
        self.calls: Counter[str] = Counter()

    def transact_write_items(self, **request: Any) -> Any:
        order_put = request["TransactItems"][1]["Put"]["Item"]["pk"]["S"]
        with self._lock:
            self.calls[order_put] += 1
            refuse = self.calls[order_put] <= self._refusals
            if refuse:
                self.refused += 1
        if refuse:
            if self.calls[order_put] % 2:
                raise ClientError(
                    {
                        "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                        "CancellationReasons": [
                            {"Code": "None"},
                            {"Code": "None"},
                            {"Code": "TransactionConflict"},
                            {"Code": "None"},
                        ],
                    },
                    "TransactWriteItems",
                )
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "TransactWriteItems")
        return self._real(**request)


def test_conflicts_and_throttling_are_retried_and_still_exactly_the_limit_passes(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = shop.cloud.functions["CheckoutFunction"].module
    conflicting = Conflicting(module.dynamodb, refusals_per_call=3)
    monkeypatch.setattr(module.dynamodb, "transact_write_items", conflicting.transact_write_items)
    email, sku = _email(), shop.product(100)
    responses = _race(shop, email, sku, LIMITS.orders_holding_stock_per_email + 7)
    assert Counter(r.status_code for r in responses) == {202: LIMITS.orders_holding_stock_per_email, 429: 7}
    assert conflicting.refused >= 3 * len(responses)  # every checkout met refusals first, and got through them
    assert len(shop.places("email", email)) == LIMITS.orders_holding_stock_per_email


# ------------------------------------------------------------------ giving places back


def test_an_order_that_ends_gives_its_places_back_once_and_the_refused_key_then_succeeds(shop: Shop) -> None:
    sku, email = shop.product(50), _email()
    with shop.client() as client:
        orders = [
            shop.checkout(client, shop.cart((sku, 1)), email).json()["id"]
            for _ in range(LIMITS.orders_holding_stock_per_email)
        ]
        waiting = [shop.wait_for_status(order_id, "awaiting_payment") for order_id in orders]
        cart_id, retry_key = shop.cart((sku, 1)), "limits-retry-key"
        assert shop.checkout(client, cart_id, email, retry_key).status_code == 429

        # One is declined (its stock released), one is paid (its stock committed): neither holds stock any more.
        for _ in range(int(shop.cloud.template.parameter("MaxPaymentAttempts"))):  # the last decline ends it
            assert client.post(f"/dev/payments/{waiting[0]['payment']['payment_id']}/fail").status_code == 200
        assert client.post(f"/dev/payments/{waiting[1]['payment']['payment_id']}/succeed").status_code == 200
        shop.wait_for_status(orders[0], "payment_failed")
        shop.wait_for_status(orders[1], "paid", "fulfilling", "shipped", "delivered")
        wait_until(
            lambda: len(shop.places("email", email)) == LIMITS.orders_holding_stock_per_email - 2,
            "the two ended orders' places given back",
        )

        # The workflow's step retried after a crash gives the place back again: nothing changes.
        steps = shop.cloud.functions["OrderWorkflowFunction"]
        assert steps.invoke({"action": "mark_payment_failed", "order_id": orders[0]})["changed"] is False
        assert len(shop.places("email", email)) == LIMITS.orders_holding_stock_per_email - 2

        # The refused request, retried with its key, now makes its order (a refusal gave its key back).
        retried = shop.checkout(client, cart_id, email, retry_key)
        assert retried.status_code == 202, retried.text
    assert len(shop.places("email", email)) == LIMITS.orders_holding_stock_per_email - 1


def test_an_order_an_operator_cancels_gives_its_places_back(shop: Shop) -> None:
    """Cancelled while unpaid, its workflow releases the stock and ends without a status move of its own: the
    cancellation gives the places back, once however often it is repeated."""
    sku, email = shop.product(20), _email()
    with shop.client() as client:
        orders = [
            shop.checkout(client, shop.cart((sku, 1)), email).json()["id"]
            for _ in range(LIMITS.orders_holding_stock_per_email)
        ]
        for order_id in orders:
            shop.wait_for_status(order_id, "awaiting_payment")
        cart_id, retry_key = shop.cart((sku, 1)), "limits-cancel-retry-key"
        assert shop.checkout(client, cart_id, email, retry_key).status_code == 429
        admin = bearer(client, "admin")
        for _ in range(2):  # the operator repeats it: nothing more is given back
            cancelled = client.post(
                f"/admin/orders/{orders[0]}/cancel", json={"reason": "customer asked"}, headers=admin
            )
            assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled"), cancelled.text
            assert sorted(m.split("#", 1)[1] for m in shop.places("email", email)) == sorted(orders[1:])
        retried = shop.checkout(client, cart_id, email, retry_key)
        assert retried.status_code == 202, retried.text
    assert len(shop.places("email", email)) == LIMITS.orders_holding_stock_per_email


def test_places_never_given_back_lapse_after_the_payment_window(shop: Shop) -> None:
    """A crash between an order's end and its places' release leaves them taken: once their expiry has passed,
    the client's next checkout clears them instead of being refused."""
    email = _email()
    pk = client_key("email", email)
    lapsed = math.floor(time.time()) - 1
    for order_id in (f"crashed-{i}" for i in range(LIMITS.orders_holding_stock_per_email)):
        shop.dynamodb.transact_write_items(
            TransactItems=[shop.holds.take(pk, member_for(order_id, lapsed), LIMITS.orders_holding_stock_per_email)]
        )
    assert len(shop.places("email", email)) == LIMITS.orders_holding_stock_per_email
    with shop.client() as client:
        response = shop.checkout(client, shop.cart((shop.product(5), 1)), email)
    assert response.status_code == 202, response.text
    assert [m.split("#", 1)[1] for m in shop.places("email", email)] == [response.json()["id"]]


# ------------------------------------------------------------------ units of one SKU


def test_more_units_of_one_sku_than_an_order_may_hold_is_422_and_makes_nothing(shop: Shop) -> None:
    sku = shop.product(200)
    email = _email()
    with shop.client() as client:
        response = shop.checkout(client, shop.cart((sku, LIMITS.units_per_sku + 1)), email)
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["code"] == "quantity_limit"
        assert problem["errors"] == [
            {
                "sku": sku,
                "code": "quantity_limit",
                "max": LIMITS.units_per_sku,
                "message": f"at most {LIMITS.units_per_sku} per order ({LIMITS.units_per_sku + 1} in the cart)",
            }
        ]
        assert shop.places("email", email) == []
        assert shop.checkout(client, shop.cart((sku, LIMITS.units_per_sku)), email).status_code == 202
