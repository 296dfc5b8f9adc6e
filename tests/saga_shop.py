"""What the saga and payment tests share: a Shop that sets up checkouts on a local cloud and watches them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from storefront.cart.models import StoredCart, StoredLine, StoredShipping
from storefront.cart.repository import CartRepository
from storefront.catalog.models import StoredProduct, StoredVariant
from storefront.catalog.repository import CatalogRepository
from storefront.inventory.repository import InventoryRepository
from storefront.money import Money

from local_cloud.cloud import LocalCloud
from tests.waiting import wait_until

ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "Unter den Linden 1",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "DE",
}
# Paid orders move straight on: the fulfilment function ships them (the session's carrier then waits to be told).
PAID_OR_LATER = ("paid", "fulfilling", "shipped", "delivered")
FINAL = {"awaiting_payment", *PAID_OR_LATER, "rejected", "payment_failed", "expired", "cancelled"}


class ShopData:
    """Products with stock and carts ready for checkout, written straight to one local cloud's tables (the catalog
    and cart APIs are tested elsewhere): what every checkout test starts from."""

    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud
        dynamodb = cloud.client("dynamodb")
        self.catalog = CatalogRepository(dynamodb, cloud.physical_id("CatalogTable"))
        self.inventory = InventoryRepository(dynamodb, cloud.physical_id("InventoryTable"))
        self.carts = CartRepository(dynamodb, cloud.physical_id("CartTable"))

    def product(self, units: int, price: int = 1000) -> str:
        """A new product with one SKU and `units` in stock; returns the SKU."""
        product_id = f"test-{uuid.uuid4().hex[:10]}"
        sku = product_id.upper() + "-ONE"
        self.catalog.put_product(
            StoredProduct(
                id=product_id,
                name="Test product",
                description="",
                category="test",
                images=[],
                variants=[StoredVariant(sku=sku, title="One", price=Money(amount=price, currency="EUR"))],
            )
        )
        self.inventory.put_level(sku, units)
        return sku

    def cart(self, *lines: tuple[str, int], price: int = 1000) -> str:
        """A cart of (sku, quantity) lines, shipping to Germany, ready for checkout."""
        now = datetime.now(UTC)
        cart_id = uuid.uuid4().hex
        self.carts.create(
            StoredCart(
                id=cart_id,
                currency="EUR",
                version=1,
                created_at=now,
                updated_at=now,
                expires_at=now + timedelta(hours=1),
                lines=[
                    StoredLine(sku=sku, quantity=q, seen_price=Money(amount=price, currency="EUR")) for sku, q in lines
                ],
                shipping=StoredShipping(country="DE", method="standard"),
            )
        )
        return cart_id


class Shop(ShopData):
    """What a test needs to set up and observe checkouts on one local cloud."""

    def __init__(self, cloud: LocalCloud, api: httpx.Client) -> None:
        super().__init__(cloud)
        self.api = api

    def checkout(
        self, cart_id: str, key: str | None = None, client: httpx.Client | None = None, **changes: Any
    ) -> httpx.Response:
        body = {"cart_id": cart_id, "email": "ada@example.com", "shipping_address": ADDRESS, **changes}
        return (client or self.api).post("/checkout", json=body, headers={"Idempotency-Key": key or uuid.uuid4().hex})

    def order(self, order_id: str) -> dict[str, Any]:
        response = self.api.get(f"/orders/{order_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_for(
        self, order_id: str, condition: Callable[[dict[str, Any]], bool], timeout: float = 60
    ) -> dict[str, Any]:
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
        item = self.cloud.client("dynamodb").get_item(
            TableName=self.cloud.physical_id("InventoryTable"),
            Key={"pk": {"S": f"SKU#{sku}"}, "sk": {"S": "LEVEL"}},
            ConsistentRead=True,
        )["Item"]
        return {k: int(item[k]["N"]) for k in ("on_hand", "reserved", "available")}

    def shipments_for(self, order_id: str) -> int:
        """How many shipments the local carrier holds for the order, once the order is fulfilling."""
        self.wait_for_status(order_id, "fulfilling", "shipped", "delivered")
        return sum(s["reference"] == order_id for s in self.cloud.carrier.shipments.values())

    def wait_until_the_workflow_waits_for_payment(self, order_id: str) -> None:
        """An order is awaiting_payment before its workflow's WaitForPayment task has stored its token; what a
        test says about telling the waiting workflow needs the token there."""
        wait_until(
            lambda: (
                "task_token"
                in self.cloud.client("dynamodb").get_item(
                    TableName=self.cloud.physical_id("OrdersTable"),
                    Key={"pk": {"S": f"ORDER#{order_id}"}, "sk": {"S": "ORDER"}},
                    ConsistentRead=True,
                )["Item"]
            ),
            f"order {order_id}'s workflow waiting for its payment",
        )

    def execution(self, order_id: str, timeout: float = 60) -> dict[str, Any]:
        sfn = self.cloud.client("stepfunctions")
        arn = self.cloud.physical_id("OrderWorkflow").replace(":stateMachine:", ":execution:") + f":{order_id}"
        deadline = time.monotonic() + timeout
        while (execution := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            assert time.monotonic() < deadline, f"execution {order_id} still running"
            time.sleep(0.1)
        return execution


def paid_order(shop: Shop, units: int = 5, quantity: int = 2) -> tuple[str, str, dict[str, Any]]:
    sku = shop.product(units)
    response = shop.checkout(shop.cart((sku, quantity)))
    assert response.status_code == 202, response.text
    order = shop.wait_for_status(response.json()["id"], "awaiting_payment")
    return sku, order["id"], order
