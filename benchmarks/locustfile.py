"""A shop on a busy day, for Locust: most visitors browse, a few buy.

    Browser (weight 8)  lists products (one time in four: reads the categories and lists one), opens one to three
                        products.
    Buyer   (weight 2)  browses, then: creates a cart, adds an in-stock SKU, reads the shipping methods, chooses
                        one, checks out with an Idempotency-Key, reads the order until it awaits payment, pays, and
                        reads the order until it is paid.

Paying: against the local stack (`make dev`), the local provider's POST /dev/payments/{payment_id}/succeed plays the
shopper paying, and sends the signed webhook as Stripe would. A deployed stack has no such route (paying is the
provider's hosted page), so there the buyer stops once the order awaits payment; its stock stays reserved until
PaymentTimeoutSeconds expires it: load a test catalog, not the real one. `--pay auto` (the default) pays when the
host is on loopback; `--pay local` or `--pay skip` decide it yourself.

Requests are named by route ("GET /products/{product_id}"), so Locust's statistics are per route. A 409 when adding
a sold-out SKU, and an order the reservation rejects, are the shop working, not errors: they are reported under
their own names ("... (sold out)", "... (rejected)").

    .venv/bin/locust -f benchmarks/locustfile.py --host http://127.0.0.1:3107 --headless -u 20 -r 5 -t 60s
or the runner, which also writes a per-route summary:
    PYTHONPATH=layers/storefront:. .venv/bin/python -m benchmarks.load --host http://127.0.0.1:3107 --users 20 \\
        --spawn-rate 5 --run-time 60s
"""

from __future__ import annotations

import json
import random
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from locust import HttpUser, between, events, task

ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "Unter den Linden 1",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "DE",
}
JSON = {"Content-Type": "application/json"}
POLL_SECONDS = 0.5
POLL_LIMIT = 40  # reads of one order before the buyer gives up waiting (20 s)


@events.init_command_line_parser.add_listener
def _arguments(parser: Any) -> None:
    parser.add_argument(
        "--pay",
        choices=["auto", "local", "skip"],
        default="auto",
        help="pay through the local provider's /dev route (auto: when the host is on loopback)",
    )


def _pays(environment: Any) -> bool:
    choice = environment.parsed_options.pay if environment.parsed_options else "auto"
    if choice != "auto":
        return bool(choice == "local")
    return urlsplit(environment.host or "").hostname in ("127.0.0.1", "localhost", "::1")


class Shopper(HttpUser):
    abstract = True

    def browse(self) -> list[dict[str, Any]]:
        """A listing (sometimes of a category) and one to three product pages; the products seen."""
        category = random.choice(self._categories() or [None]) if random.random() < 0.25 else None
        path = "/products?limit=20" + (f"&category={category}" if category else "")
        with self.client.get(path, name="GET /products", catch_response=True) as response:
            products = response.json().get("items", []) if response.ok else []
        for product in random.sample(products, min(len(products), random.randint(1, 3))):
            self.client.get(f"/products/{product['id']}", name="GET /products/{product_id}")
        return products

    def _categories(self) -> list[str]:
        with self.client.get("/categories", name="GET /categories", catch_response=True) as response:
            return [c["id"] for c in response.json().get("items", [])] if response.ok else []


class Browser(Shopper):
    weight = 8
    wait_time = between(1, 4)

    @task
    def look_around(self) -> None:
        self.browse()


class Buyer(Shopper):
    weight = 2
    wait_time = between(1, 3)

    @task
    def buy(self) -> None:
        in_stock = [v["sku"] for p in self.browse() for v in p["variants"] if v["in_stock"]]
        if not in_stock:
            return
        cart = self.client.post("/carts", json={"currency": "EUR"}, name="POST /carts")
        if cart.status_code != 201:
            return
        cart_id = cart.json()["id"]
        with self.client.post(
            f"/carts/{cart_id}/items",
            json={"sku": random.choice(in_stock), "quantity": 1},
            name="POST /carts/{cart_id}/items",
            catch_response=True,
        ) as added:
            if added.status_code == 409:  # sold out since the listing: the shop answering correctly
                added.success()
                self._event("POST /carts/{cart_id}/items (sold out)")
                return
        methods = self.client.get("/shipping-methods?country=DE", name="GET /shipping-methods")
        if not methods.ok:
            return
        chosen = self.client.put(
            f"/carts/{cart_id}/shipping",
            name="PUT /carts/{cart_id}/shipping",
            json={"country": "DE", "method": methods.json()["items"][0]["id"]},
        )
        if not chosen.ok:
            return
        body = json.dumps({"cart_id": cart_id, "email": "ada@example.com", "shipping_address": ADDRESS})
        with self.client.post(
            "/checkout",
            data=body,
            name="POST /checkout",
            catch_response=True,
            headers={**JSON, "Idempotency-Key": uuid.uuid4().hex},
        ) as checkout:
            if checkout.status_code == 409:  # the fast path: the cart cannot be filled any more
                checkout.success()
                self._event("POST /checkout (sold out)")
                return
            if checkout.status_code not in (200, 202):
                return
            order_id = checkout.json()["id"]
        order = self._wait_for(order_id, {"awaiting_payment", "rejected"})
        if order is None or order["status"] == "rejected":
            self._event("GET /orders/{order_id} (rejected)" if order else "GET /orders/{order_id} (still pending)")
            return
        if not _pays(self.environment):
            return
        self.client.post(
            f"/dev/payments/{order['payment']['payment_id']}/succeed",
            name="POST /dev/payments/{payment_id}/succeed (local: the shopper pays)",
        )
        if self._wait_for(order_id, {"paid", "fulfilling", "shipped", "delivered"}) is None:
            self._event("GET /orders/{order_id} (payment not seen)")

    def _wait_for(self, order_id: str, statuses: set[str]) -> dict[str, Any] | None:
        for _ in range(POLL_LIMIT):
            response = self.client.get(f"/orders/{order_id}", name="GET /orders/{order_id}")
            if response.ok and response.json()["status"] in statuses:
                return dict(response.json())
            time.sleep(POLL_SECONDS)
        return None

    def _event(self, name: str) -> None:
        """An outcome worth counting that is not a request of its own (Locust counts it as a zero-time request)."""
        self.environment.events.request.fire(
            request_type="EVENT", name=name, response_time=0, response_length=0, exception=None, context={}
        )
