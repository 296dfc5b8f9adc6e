"""What a merchant's CloudWatch would receive from one afternoon of the shop, on a local cloud of its own: a full
purchase to delivery and a partial refund of it, an order rejected for stock, a declined payment, a webhook with a
wrong signature, a sold-out checkout, a shopper over the checkout limit and one of their orders cancelled by the
merchant. Everything the functions print (log lines and the EMF metric blobs)
and every integration event published are captured, then

  - every business metric is found with exactly its value (Powertools' examples/metrics/src/
    assert_single_emf_blob.py is the model: parse the blobs from the captured output), under the stack's
    namespace and the one business dimension, and a cold start counted once per function;
  - no log line and no published event holds a shopper's email, name or any part of their address.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from storefront.observability import BUSINESS_DIMENSIONS
from storefront.shop import DEFAULT_FILE, load_shop_config

from local_cloud.cloud import LocalCloud
from local_cloud.gateway import Gateway
from local_cloud.template import Template
from tests.saga_shop import ShopData
from tests.waiting import wait_until

EMAIL_LIMIT = load_shop_config(str(DEFAULT_FILE)).checkout_limits.orders_holding_stock_per_email
# Loggers of the local stand-ins for other companies' systems (the payment provider, the carrier): what they print
# is theirs, not the shop's. Everything else in the process is scanned.
THIRD_PARTIES = ("local_cloud.local_carrier", "local_cloud.fake_payments")
_STANDARD_RECORD_FIELDS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class Tee(io.TextIOBase):
    """A thread-safe stand-in for stdout that keeps every line written to it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._text: list[str] = []

    def write(self, text: str) -> int:
        with self._lock:
            self._text.append(text)
        return len(text)

    def lines(self) -> list[str]:
        with self._lock:
            return "".join(self._text).splitlines()


class RecordsAsLines(logging.Handler):
    """Every standard-library log record, with its arguments and extra fields, as one JSON line."""

    def __init__(self, sink: Tee) -> None:
        super().__init__(logging.INFO)
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(THIRD_PARTIES):
            return
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD_RECORD_FIELDS}
        self._sink.write(
            json.dumps(
                {"logger": record.name, "message": record.getMessage(), **extras}, default=str, ensure_ascii=False
            )
            + "\n"
        )


class Capture:
    """What the functions print (Powertools' log lines, the EMF blobs) and what is logged through the standard
    library at Lambda's default level (INFO), for as long as it is open."""

    def __init__(self) -> None:
        self.sink = Tee()
        self._handler = RecordsAsLines(self.sink)
        self._saved_stdout: Any = None
        self._saved_level = logging.root.level
        self._repointed: list[tuple[logging.StreamHandler[Any], Any]] = []

    def __enter__(self) -> Capture:
        self._saved_stdout = sys.stdout
        sys.stdout = self.sink  # print(): EMF blobs, and Powertools loggers created from now on
        for logger in [logging.root, *logging.root.manager.loggerDict.values()]:
            handler = getattr(logger, "powertools_handler", None)  # Powertools loggers made before (same services)
            if isinstance(handler, logging.StreamHandler):
                # Not setStream(), which flushes the old stream: made during an earlier test, it may be that test's
                # output capture, closed since.
                self._repointed.append((handler, handler.stream))
                handler.stream = self.sink
        logging.root.addHandler(self._handler)
        logging.root.setLevel(logging.INFO)
        return self

    def __exit__(self, *_: object) -> None:
        logging.root.removeHandler(self._handler)
        logging.root.setLevel(self._saved_level)
        for handler, stream in self._repointed:
            handler.stream = stream
        for logger in logging.root.manager.loggerDict.values():  # those made during the capture: back to stdout
            handler = getattr(logger, "powertools_handler", None)
            if isinstance(handler, logging.StreamHandler) and handler.stream is self.sink:
                handler.setStream(self._saved_stdout)
        sys.stdout = self._saved_stdout

    def emf_blobs(self, namespace: str) -> list[dict[str, Any]]:
        """The EMF blobs printed into `namespace`: those of one stack. The worker's session cloud runs in the same
        process, and its functions may still be finishing an earlier test's work (emails, fulfilment)."""
        blobs = []
        for line in self.sink.lines():
            try:
                document = json.loads(line)
            except ValueError:
                continue
            if not (isinstance(document, dict) and "_aws" in document):
                continue
            if {d.get("Namespace") for d in document["_aws"].get("CloudWatchMetrics", [])} == {namespace}:
                blobs.append(document)
        return blobs


@dataclass
class Shopper:
    email: str
    address: dict[str, str]

    @classmethod
    def new(cls, who: str) -> Shopper:
        tag = uuid.uuid4().hex[:8]
        return cls(
            email=f"{who}.{tag}@example.com",
            address={
                "name": f"{who.title()} Q{tag}",
                "line1": f"Hidden Lane {tag}",
                "line2": f"Flat {tag[:4]}",
                "city": f"Privacyville {tag[4:]}",
                "postal_code": f"Z{tag[:5]}",
                "country": "DE",
            },
        )

    @property
    def personal(self) -> list[str]:
        return [self.email, *(v for k, v in self.address.items() if k != "country")]


@dataclass
class Afternoon:
    capture: Capture
    cloud: LocalCloud
    shoppers: list[Shopper] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    emails: list[dict[str, Any]] = field(default_factory=list)

    @property
    def namespace(self) -> str:
        return f"Storefront/{self.cloud.template.stack_name}"  # template.yaml: Storefront/${AWS::StackName}


class Shop(ShopData):
    def __init__(self, cloud: LocalCloud, api: httpx.Client) -> None:
        super().__init__(cloud)
        self.api = api

    def checkout(self, cart_id: str, shopper: Shopper) -> httpx.Response:
        return self.api.post(
            "/checkout",
            headers={"Idempotency-Key": uuid.uuid4().hex},
            json={"cart_id": cart_id, "email": shopper.email, "shipping_address": shopper.address},
        )

    def wait_for(self, order_id: str, *statuses: str) -> dict[str, Any]:
        return wait_until(
            lambda: (o := self.api.get(f"/orders/{order_id}").json())["status"] in statuses and o,
            f"order {order_id} in {statuses}",
        )


DECLINES_TO_FAIL = int(Template.load().parameter("MaxPaymentAttempts"))
EXPECTED = {  # business metric -> its total over the afternoon
    "OrdersPlaced": 3 + EMAIL_LIMIT,
    "OrdersPaid": 1,
    "OrdersFulfilling": 1,
    "OrdersShipped": 1,
    "OrdersDelivered": 1,
    "OrdersRejected": 1,
    "StockReservationsRejected": 1,
    "PaymentsDeclined": DECLINES_TO_FAIL,
    "OrdersPaymentFailed": 1,
    "WebhookSignaturesInvalid": 1,
    "CheckoutsRefusedSoldOut": 1,
    "CheckoutsRateLimited": 1,
    "RefundsSucceeded": 1,
    "OrdersCancelled": 1,
}
# Emails the afternoon sends (docs/notifications.md): the buyer's confirmation, shipping, delivery and refund mails; the
# declined racer's mails (one per retryable decline, then the failure mail); the hoarder's cancellation mail.
# EmailsSent must count exactly the mails the local SES holds.
EXPECTED_EMAILS = 4 + DECLINES_TO_FAIL + 1


def _values(value: float | list[float]) -> list[float]:
    return value if isinstance(value, list) else [value]  # EMF allows one value or an array of them


def _business_totals(capture: Capture, namespace: str) -> Counter[str]:
    totals: Counter[str] = Counter()
    for blob in capture.emf_blobs(namespace):
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                if metric["Name"] in EXPECTED or metric["Name"] == "EmailsSent":
                    totals[metric["Name"]] += int(sum(_values(blob[metric["Name"]])))
    return totals


@pytest.fixture(scope="module")
def afternoon() -> Iterator[Afternoon]:
    """The afternoon, played once; its cloud runs the shop.json the shop ships (the session's do not)."""
    saved = os.environ.pop("SHOP_CONFIG_FILE", None)
    with Capture() as capture:
        cloud = LocalCloud(stack_name=f"observed-{uuid.uuid4().hex[:6]}")
        try:
            cloud.start()
        finally:
            if saved is not None:
                os.environ["SHOP_CONFIG_FILE"] = saved
        gateway = Gateway(cloud, port=0).start()
        try:
            with httpx.Client(base_url=gateway.url, timeout=60) as api:
                day = Afternoon(capture, cloud)
                _play(Shop(cloud, api), day)
                wait_until(
                    lambda: _business_totals(capture, day.namespace) == Counter(EXPECTED, EmailsSent=EXPECTED_EMAILS),
                    "every business metric",
                    60,
                )
                day.emails = api.get("/dev/emails").json()["items"]
                day.events = cloud.integration_events()
            yield day
        finally:
            gateway.stop()
            cloud.stop()


def _play(shop: Shop, day: Afternoon) -> None:
    api = shop.api
    # 1. A purchase, paid, shipped and delivered.
    buyer = Shopper.new("ada")
    order = shop.checkout(shop.cart((shop.product(5), 2)), buyer).json()
    order = shop.wait_for(order["id"], "awaiting_payment")
    assert api.post(f"/dev/payments/{order['payment']['payment_id']}/succeed").status_code == 200
    tracking = shop.wait_for(order["id"], "fulfilling")["fulfilment"]["tracking_number"]
    for _ in range(3):
        assert api.post(f"/dev/shipments/{tracking}/advance").status_code == 200
    shop.wait_for(order["id"], "delivered")
    #    The merchant refunds part of it.
    admin = {
        "Authorization": "Bearer " + api.post("/dev/auth/token", json={"groups": ["admin"]}).json()["access_token"]
    }
    refund = api.post(
        f"/admin/orders/{order['id']}/refunds",
        headers={**admin, "Idempotency-Key": uuid.uuid4().hex},
        json={"amount": {"amount": 500, "currency": "EUR"}, "restock": False, "reason": "scratched"},
    )
    assert refund.status_code == 201 and refund.json()["status"] == "succeeded", refund.text

    # 2. Two shoppers check out the last unit before either reservation runs: one order is rejected; the other's
    #    payment is then declined.
    last_unit = shop.product(1)
    stock = shop.cloud.functions["StockFunction"].module
    both_placed = threading.Event()
    real_handle = stock.service.handle

    def reserve_when_both_placed(request: Any) -> Any:
        if request.action == "reserve" and last_unit in request.quantities():
            both_placed.wait(30)
        return real_handle(request)

    stock.service.handle = reserve_when_both_placed
    try:
        racers = [Shopper.new("grace"), Shopper.new("alan")]
        placed = [shop.checkout(shop.cart((last_unit, 1)), racer).json()["id"] for racer in racers]
        both_placed.set()
        ended = {o: shop.wait_for(o, "awaiting_payment", "rejected") for o in placed}
    finally:
        stock.service.handle = real_handle
    assert sorted(o["status"] for o in ended.values()) == ["awaiting_payment", "rejected"]
    waiting = next(o for o in ended.values() if o["status"] == "awaiting_payment")
    for _ in range(DECLINES_TO_FAIL):  # each decline leaves the order awaiting payment until the last
        assert api.post(f"/dev/payments/{waiting['payment']['payment_id']}/fail").status_code == 200
    shop.wait_for(waiting["id"], "payment_failed")

    # 3. A webhook signed with the wrong secret.
    body = json.dumps({"id": "evt_forged", "type": "payment_intent.succeeded", "data": {"object": {}}})
    forged = api.post(
        "/webhooks/payments/fake",
        content=body,
        headers={"Content-Type": "application/json", "Stripe-Signature": f"t={int(time.time())},v1={'0' * 64}"},
    )
    assert forged.status_code == 400 and forged.json()["code"] == "invalid_signature"

    # 4. A cart current stock cannot fill.
    sold_out = Shopper.new("edsger")
    assert shop.checkout(shop.cart((shop.product(1), 2)), sold_out).status_code == 409

    # 5. A shopper holding as many unpaid orders as one email may, and trying once more.
    hoarder = Shopper.new("barbara")
    sku = shop.product(20)
    placed_by_hoarder = [shop.checkout(shop.cart((sku, 1)), hoarder) for _ in range(EMAIL_LIMIT)]
    assert [response.status_code for response in placed_by_hoarder] == [202] * EMAIL_LIMIT
    hoarded = [response.json()["id"] for response in placed_by_hoarder]
    assert shop.checkout(shop.cart((sku, 1)), hoarder).status_code == 429
    #    The merchant cancels one of them.
    cancel = api.post(f"/admin/orders/{hoarded[0]}/cancel", headers=admin, json={"reason": "duplicate order"})
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled", cancel.text
    day.shoppers = [buyer, *racers, sold_out, hoarder]


def test_every_business_event_is_one_metric_with_its_exact_value(afternoon: Afternoon) -> None:
    # Counted in the stack's own namespace (template.yaml: Storefront/${AWS::StackName}), every one of them.
    namespace = afternoon.namespace
    assert _business_totals(afternoon.capture, namespace) == Counter(EXPECTED, EmailsSent=EXPECTED_EMAILS)
    blobs = afternoon.capture.emf_blobs(namespace)
    business = [b for b in blobs if "ColdStart" not in b]
    latency = [value for b in business if "CheckoutLatency" in b for value in _values(b["CheckoutLatency"])]
    assert len(latency) == EXPECTED["OrdersPlaced"] and all(value > 0 for value in latency)
    for blob in business:
        (directive,) = blob["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == namespace
        assert directive["Dimensions"] == [list(BUSINESS_DIMENSIONS)]
        assert {k: blob[k] for k in BUSINESS_DIMENSIONS} == BUSINESS_DIMENSIONS
    assert len(afternoon.emails) == EXPECTED_EMAILS
    # Nothing expired (test_checkout_saga.py counts OrdersExpired on a cloud with a short payment window) and
    # nothing was busy.
    assert not {"OrdersExpired", "CheckoutsBusy"} & {
        m["Name"] for b in business for d in b["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]
    }
    # Powertools keeps its cold-start flag per process, and the local cloud runs every function in one: here the
    # first invocation of the process counts it (on Lambda, every execution environment's first does; the unit
    # test of storefront.observability covers that). Never twice for one function.
    cold = Counter(b["function_name"] for b in blobs if "ColdStart" in b)
    assert set(cold.values()) <= {1}, cold


def test_no_log_line_and_no_event_holds_a_shoppers_email_name_or_address(afternoon: Afternoon) -> None:
    lines = afternoon.capture.sink.lines()
    published = [json.dumps(event, ensure_ascii=False) for event in afternoon.events]
    assert len(lines) > 100 and len(published) >= 10, "the capture missed the afternoon"
    assert any('"order.delivered"' in event for event in published)
    for shopper in afternoon.shoppers:
        for value in shopper.personal:
            leaks = [line for line in lines if value.lower() in line.lower()]
            assert leaks == [], f"a log line holds {value!r}: {leaks[:2]}"
            leaks = [event for event in published if value.lower() in event.lower()]
            assert leaks == [], f"an integration event holds {value!r}: {leaks[:1]}"
