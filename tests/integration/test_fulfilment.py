"""Fulfilment on the local cloud: fulfilment queue → fulfilment function → the local carrier (over HTTP) →
signed tracking webhooks → orders shipped and delivered; and the integration events all of it publishes."""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from storefront.fulfilment.carriers import CarrierRejected, CarrierUnavailable, HttpCarrier
from storefront.fulfilment.models import ShipmentRequest
from storefront.orders.models import HistoryEntry, OrderStatus, StoredOrder
from storefront.orders.repository import OrderRepository
from storefront.webhooks.signatures import sign

from local_cloud.cloud import LOCAL_CARRIER_WEBHOOK_SECRET, LocalCloud
from local_cloud.demo_data import DEMO_PAID_ORDER_ID
from local_cloud.functions import LambdaContext
from tests.waiting import wait_until

ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "Unter den Linden 1",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "DE",
}


class Fulfilment:
    """What a test needs to make paid orders, feed the fulfilment queue and watch the carrier and events."""

    def __init__(self, cloud: LocalCloud, api: httpx.Client) -> None:
        self.cloud = cloud
        self.api = api
        self.carrier = cloud.carrier
        self.orders = OrderRepository(cloud.client("dynamodb"), cloud.physical_id("OrdersTable"))
        self.sqs = cloud.client("sqs")
        self.queue_url = cloud.physical_id("FulfilmentQueue")
        self.dlq_url = cloud.physical_id("FulfilmentDeadLetterQueue")

    def paid_order(self, order_id: str | None = None) -> str:
        """A paid order written directly, as the workflow leaves it, without its fulfilment message."""
        template = self.orders.get(DEMO_PAID_ORDER_ID)
        assert template is not None
        now = datetime.now(UTC)
        order_id = order_id or secrets.token_urlsafe(24)
        self.orders.create(
            StoredOrder.model_validate(
                {
                    **template.model_dump(),
                    "id": order_id,
                    "cart_id": uuid.uuid4().hex,
                    "status": OrderStatus.PAID,
                    "created_at": now,
                    "updated_at": now,
                    "fulfilment": None,
                    "shipment_id": None,
                    "history": [HistoryEntry(status=s, at=now) for s in ("pending", "awaiting_payment", "paid")],
                }
            )
        )
        return order_id

    def send(self, *bodies: str) -> None:
        self.sqs.send_message_batch(
            QueueUrl=self.queue_url, Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)]
        )

    def order(self, order_id: str) -> dict[str, Any]:
        response = self.api.get(f"/orders/{order_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_for_status(self, order_id: str, status: str, timeout: float = 30) -> dict[str, Any]:
        return wait_until(
            lambda: (o := self.order(order_id))["status"] == status and o, f"order {order_id} to be {status}", timeout
        )

    def shipments_for(self, order_id: str) -> list[dict[str, Any]]:
        return [s for s in self.carrier.shipments.values() if s["reference"] == order_id]

    def queued(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def events_for(self, order_id: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.cloud.integration_events()
            if e["detail-type"].startswith("order.") and e["detail"]["order"]["id"] == order_id
        ]

    def tracking_update(
        self,
        order: dict[str, Any],
        status: str,
        *,
        secret: str = LOCAL_CARRIER_WEBHOOK_SECRET,
        shipment_id: str | None = None,
        at: datetime | None = None,
        event_id: str | None = None,
    ) -> httpx.Response:
        shipment = self.shipments_for(order["id"])[0]
        body = json.dumps(
            {
                "id": event_id or f"evt_{uuid.uuid4().hex}",
                "type": "shipment.updated",
                "data": {
                    "shipment_id": shipment_id or shipment["id"],
                    "tracking_number": shipment["tracking_number"],
                    "reference": order["id"],
                    "status": status,
                    "occurred_at": (at or datetime.now(UTC)).isoformat(),
                },
            }
        ).encode()
        return self.api.post(
            "/webhooks/carriers/local",
            content=body,
            headers={"Content-Type": "application/json", "Carrier-Signature": sign(body, secret)},
        )


@pytest.fixture
def fulfilment(cloud: LocalCloud, api: httpx.Client) -> Iterator[Fulfilment]:
    yield Fulfilment(cloud, api)
    cloud.carrier.hang = False


@pytest.fixture
def fast_redelivery(fulfilment: Fulfilment) -> Iterator[None]:
    """The fulfilment queue with a 1 s visibility timeout and 3 receives before the DLQ (the template says
    180 s and 5), so retries and dead-lettering happen within a test; put back afterwards."""
    sqs, url = fulfilment.sqs, fulfilment.queue_url
    before = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout", "RedrivePolicy"])["Attributes"]
    policy = json.loads(before["RedrivePolicy"])
    sqs.set_queue_attributes(
        QueueUrl=url,
        Attributes={"VisibilityTimeout": "1", "RedrivePolicy": json.dumps({**policy, "maxReceiveCount": 3})},
    )
    time.sleep(1.5)  # a long poll already waiting took the old visibility timeout with it (as SQS does)
    yield
    sqs.set_queue_attributes(QueueUrl=url, Attributes=before)


# ------------------------------------------------------------------ the whole journey


@pytest.mark.slow("waits")
def test_a_paid_order_is_delivered_with_each_integration_event_once(fulfilment: Fulfilment) -> None:
    sku = "CERAMIC-MUG-ONE"
    cart = fulfilment.api.post("/carts").json()
    cart = fulfilment.api.post(f"/carts/{cart['id']}/items", json={"sku": sku, "quantity": 1}).json()
    fulfilment.api.put(f"/carts/{cart['id']}/shipping", json={"country": "DE", "method": "standard"})
    order = fulfilment.api.post(
        "/checkout",
        headers={"Idempotency-Key": uuid.uuid4().hex},
        json={"cart_id": cart["id"], "email": "ada@example.com", "shipping_address": ADDRESS},
    ).json()
    order = wait_until(lambda: (o := fulfilment.order(order["id"]))["payment"] and o, "a payment")
    assert fulfilment.api.post(f"/dev/payments/{order['payment']['payment_id']}/succeed").status_code == 200

    order = fulfilment.wait_for_status(order["id"], "fulfilling")
    tracking = order["fulfilment"]
    assert tracking["carrier"] == "local" and tracking["status"] == "label_created"
    assert tracking["tracking_number"].startswith("LC")
    assert tracking["tracking_url"] == f"{fulfilment.carrier.url}/track/{tracking['tracking_number']}"
    assert "shipment_id" not in order  # the carrier's id stays private

    for expected in ("in_transit", "out_for_delivery", "delivered"):  # the carrier's van, as make dev does it
        answer = fulfilment.api.post(f"/dev/shipments/{tracking['tracking_number']}/advance")
        assert answer.status_code == 200 and answer.json()["webhook_status"] == 200, answer.text
        assert fulfilment.order(order["id"])["fulfilment"]["status"] == expected
    order = fulfilment.order(order["id"])
    assert order["status"] == "delivered"
    assert [h["status"] for h in order["history"]] == [
        "pending",
        "awaiting_payment",
        "paid",
        "fulfilling",
        "shipped",
        "delivered",
    ]
    assert httpx.get(tracking["tracking_url"]).status_code == 200  # the customer's tracking link works

    events = wait_until(
        lambda: (e := fulfilment.events_for(order["id"])) and e[-1]["detail-type"] == "order.delivered" and e,
        "order.delivered to be published",
    )
    assert [e["detail-type"] for e in events] == ["order.placed", "order.paid", "order.shipped", "order.delivered"]
    time.sleep(1)  # anything published twice would show up by now
    assert Counter(e["detail-type"] for e in fulfilment.events_for(order["id"])) == {
        "order.placed": 1,
        "order.paid": 1,
        "order.shipped": 1,
        "order.delivered": 1,
    }
    delivered = events[-1]
    assert delivered["source"] == "storefront"
    detail = delivered["detail"]
    assert detail["schema_version"] == 2 and detail["event_id"] == f"order.delivered:{order['id']}"
    assert detail["occurred_at"] == order["history"][-1]["at"].replace("Z", "+00:00")
    assert detail["order"]["totals"]["total"] == order["totals"]["total"]  # amounts as Money
    assert detail["order"]["fulfilment"]["tracking_number"] == tracking["tracking_number"]
    assert "client_secret" not in detail["order"]["payment"] and "history" not in detail["order"]


# ------------------------------------------------------------------ the queue: duplicates, poison, outages


def test_the_same_message_twice_makes_one_shipment(fulfilment: Fulfilment, cloud: LocalCloud) -> None:
    order_id = fulfilment.paid_order()
    body = json.dumps({"order_id": order_id})
    record = {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "r",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": cloud.physical_id("FulfilmentQueue", "Arn"),
        "awsRegion": "us-east-1",
    }
    function = cloud.functions["FulfilmentFunction"]
    # Two concurrent deliveries (SQS is at-least-once), then the same message again in one batch.
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(function.invoke({"Records": [record]}))) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.append(function.invoke({"Records": [record, {**record, "messageId": str(uuid.uuid4())}]}))
    assert all(result == {"batchItemFailures": []} for result in results), results
    assert len(fulfilment.shipments_for(order_id)) == 1
    order = fulfilment.order(order_id)
    assert [h["status"] for h in order["history"]].count("fulfilling") == 1


@pytest.mark.slow("waits")
@pytest.mark.usefixtures("fast_redelivery")
def test_a_poison_message_ends_in_the_dlq_without_holding_back_its_batch(
    fulfilment: Fulfilment, cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    function = cloud.functions["FulfilmentFunction"]
    batches: list[list[tuple[str, str]]] = []  # (order id, receive count) of each batch the poller delivered
    invoke = function.invoke

    def recording(event: dict[str, Any]) -> Any:
        batches.append(
            [(json.loads(r["body"])["order_id"], r["attributes"]["ApproximateReceiveCount"]) for r in event["Records"]]
        )
        return invoke(event)

    monkeypatch.setattr(function, "invoke", recording)
    good = [fulfilment.paid_order() for _ in range(4)]
    poison = secrets.token_urlsafe(24)  # an order the table does not have (yet)
    fulfilment.send(*(json.dumps({"order_id": order_id}) for order_id in [good[0], good[1], poison, good[2], good[3]]))
    for order_id in good:
        fulfilment.wait_for_status(order_id, "fulfilling")
        assert len(fulfilment.shipments_for(order_id)) == 1
    wait_until(lambda: fulfilment.queued(fulfilment.dlq_url) == 1, "the poison message in the DLQ")
    assert len(batches[0]) == 5, batches  # one batch of five (the template's BatchSize)
    deliveries = Counter(order_id for batch in batches for order_id, _ in batch)
    assert all(deliveries[order_id] == 1 for order_id in good), batches  # the good ones were never retried
    assert deliveries[poison] == 3, batches  # the poison one: maxReceiveCount times, alone after the first
    assert fulfilment.queued(fulfilment.queue_url) == 0
    dead = fulfilment.sqs.receive_message(
        QueueUrl=fulfilment.dlq_url, VisibilityTimeout=0, MessageSystemAttributeNames=["All"]
    )["Messages"][0]
    assert json.loads(dead["Body"]) == {"order_id": poison}
    assert int(dead["Attributes"]["ApproximateReceiveCount"]) >= 3  # tried, then dead-lettered

    fulfilment.paid_order(poison)  # the fix: the order it names exists now
    answer = fulfilment.api.post("/dev/queues/FulfilmentDeadLetterQueue/redrive")
    assert answer.status_code == 200 and answer.json()["moved"] == 1
    fulfilment.wait_for_status(poison, "fulfilling")
    assert len(fulfilment.shipments_for(poison)) == 1
    assert fulfilment.queued(fulfilment.dlq_url) == 0
    assert fulfilment.api.post("/dev/queues/NoSuchQueue/redrive").status_code == 404


@pytest.mark.usefixtures("fast_redelivery")
def test_a_carrier_that_never_answers_leaves_the_message_on_the_queue(
    fulfilment: Fulfilment, cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = cloud.functions["FulfilmentFunction"].module
    # The deployed function waits 5 s per attempt; the test waits 0.3 s, against the same carrier.
    impatient = HttpCarrier(
        "local", fulfilment.carrier.url, lambda: fulfilment.carrier.api_key, timeout=0.3, max_retries=1, backoff=0.05
    )
    monkeypatch.setattr(app.service, "_carrier", impatient)
    fulfilment.carrier.hang = True
    requests_before = fulfilment.carrier.requests
    order_id = fulfilment.paid_order()
    fulfilment.send(json.dumps({"order_id": order_id}))
    wait_until(lambda: fulfilment.carrier.requests >= requests_before + 2, "two timed-out attempts")
    assert fulfilment.order(order_id)["status"] == "paid"
    assert fulfilment.queued(fulfilment.queue_url) == 1  # not deleted: it comes back after the visibility timeout
    fulfilment.carrier.hang = False  # the carrier recovers
    fulfilment.wait_for_status(order_id, "fulfilling")
    assert len(fulfilment.shipments_for(order_id)) == 1
    wait_until(lambda: fulfilment.queued(fulfilment.queue_url) == 0, "the message deleted")


def test_the_carrier_adapter_retries_5xx_with_one_idempotency_key(fulfilment: Fulfilment) -> None:
    carrier = fulfilment.carrier
    adapter = HttpCarrier("local", carrier.url, lambda: carrier.api_key, timeout=2, max_retries=2, backoff=0.01)
    order = fulfilment.orders.get(DEMO_PAID_ORDER_ID)
    assert order is not None
    request = ShipmentRequest.for_order(order)
    key = f"test-{uuid.uuid4().hex}"
    before = carrier.requests
    carrier.inject_failures(503, 502)
    shipments_before = len(fulfilment.shipments_for(order.id))
    shipment = adapter.create_shipment(request, key)
    assert carrier.requests == before + 3
    assert adapter.create_shipment(request, key) == shipment  # the same key: the same shipment, not a second one
    assert len(fulfilment.shipments_for(order.id)) == shipments_before + 1

    carrier.inject_failures(503, 503, 503)
    with pytest.raises(CarrierUnavailable):
        adapter.create_shipment(request, f"test-{uuid.uuid4().hex}")
    # Throttled: a short Retry-After is waited out; a long one is the queue's to wait (no retry now).
    before = carrier.requests
    carrier.inject_failures(429, retry_after=0)
    adapter.create_shipment(request, f"test-{uuid.uuid4().hex}")
    assert carrier.requests == before + 2
    carrier.inject_failures(429, retry_after=60)
    with pytest.raises(CarrierUnavailable, match="Retry-After: 60"):
        adapter.create_shipment(request, f"test-{uuid.uuid4().hex}")
    assert carrier.requests == before + 3
    bad_key = HttpCarrier("local", carrier.url, lambda: "wrong", timeout=2, max_retries=2, backoff=0.01)
    before = carrier.requests
    with pytest.raises(CarrierRejected):
        bad_key.create_shipment(request, f"test-{uuid.uuid4().hex}")
    assert carrier.requests == before  # a 401 is not retried (and never reached the shipment logic)


# ------------------------------------------------------------------ tracking webhooks


@pytest.fixture
def fulfilling(fulfilment: Fulfilment) -> dict[str, Any]:
    order_id = fulfilment.paid_order()
    fulfilment.send(json.dumps({"order_id": order_id}))
    return fulfilment.wait_for_status(order_id, "fulfilling")


def test_a_bad_signature_is_400_and_changes_nothing(fulfilment: Fulfilment, fulfilling: dict[str, Any]) -> None:
    response = fulfilment.tracking_update(fulfilling, "delivered", secret="not-the-carrier's")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_signature"
    unsigned = fulfilment.api.post("/webhooks/carriers/local", json={"id": "evt_1"})
    assert unsigned.status_code == 400 and unsigned.json()["code"] == "invalid_signature"
    assert fulfilment.order(fulfilling["id"]) == fulfilling


def test_duplicate_and_out_of_order_updates_only_move_forward(
    fulfilment: Fulfilment, fulfilling: dict[str, Any]
) -> None:
    order_id = fulfilling["id"]
    # delivered overtakes in_transit: the order walks through shipped, so history and events stay complete
    assert fulfilment.tracking_update(fulfilling, "delivered").status_code == 200
    assert fulfilment.tracking_update(fulfilling, "delivered").status_code == 200  # a duplicate
    assert fulfilment.tracking_update(fulfilling, "in_transit").status_code == 200  # late news
    order = fulfilment.order(order_id)
    assert order["status"] == "delivered" and order["fulfilment"]["status"] == "delivered"
    assert [h["status"] for h in order["history"]][-3:] == ["fulfilling", "shipped", "delivered"]
    events = wait_until(
        lambda: (e := fulfilment.events_for(order_id)) and e[-1]["detail-type"] == "order.delivered" and e,
        "order.delivered",
    )
    assert [e["detail-type"] for e in events] == ["order.placed", "order.shipped", "order.delivered"]


def test_updates_naming_another_shipment_or_carrier_change_nothing(
    fulfilment: Fulfilment, fulfilling: dict[str, Any]
) -> None:
    assert fulfilment.tracking_update(fulfilling, "delivered", shipment_id="shp_someoneelses").status_code == 200
    assert fulfilment.order(fulfilling["id"]) == fulfilling
    body = b'{"id": "evt_1", "type": "shipment.updated"}'
    other = fulfilment.api.post(
        "/webhooks/carriers/acme", content=body, headers={"Carrier-Signature": sign(body, LOCAL_CARRIER_WEBHOOK_SECRET)}
    )
    assert other.status_code == 404 and other.headers["content-type"] == "application/problem+json"
    malformed = b'{"id": "evt_1", "type": "shipment.updated", "data": {"status": "teleported"}}'
    response = fulfilment.api.post(
        "/webhooks/carriers/local",
        content=malformed,
        headers={"Carrier-Signature": sign(malformed, LOCAL_CARRIER_WEBHOOK_SECRET)},
    )
    assert response.status_code == 400 and response.json()["code"] == "malformed_event"
    assert fulfilment.order(fulfilling["id"]) == fulfilling


def test_late_duplicate_and_problem_updates_keep_the_newest_tracking(
    fulfilment: Fulfilment, fulfilling: dict[str, Any]
) -> None:
    order_id = fulfilling["id"]
    t0 = datetime.now(UTC)
    at = [t0 + timedelta(minutes=m) for m in range(7)]

    def update(status: str, minute: int, event_id: str | None = None) -> tuple[str, str]:
        assert fulfilment.tracking_update(fulfilling, status, at=at[minute], event_id=event_id).status_code == 200
        order = fulfilment.order(order_id)
        return order["status"], order["fulfilment"]["status"]

    assert update("in_transit", 1) == ("shipped", "in_transit")
    assert update("exception", 3, event_id="evt_delayed") == ("shipped", "exception")  # a problem shows
    assert update("out_for_delivery", 2) == ("shipped", "exception")  # older than the problem: late news
    assert update("exception", 3, event_id="evt_delayed") == ("shipped", "exception")  # a duplicate
    assert update("out_for_delivery", 4) == ("shipped", "out_for_delivery")  # newer: the problem is over
    assert update("delivered", 5) == ("delivered", "delivered")
    assert update("exception", 4) == ("delivered", "delivered")  # late news about a delivered parcel
    assert update("exception", 6) == ("delivered", "delivered")  # a delivered parcel's record is final
    assert update("in_transit", 6) == ("delivered", "delivered")
    order = fulfilment.order(order_id)
    assert [h["status"] for h in order["history"]][-3:] == ["fulfilling", "shipped", "delivered"]
    events = wait_until(
        lambda: (e := fulfilment.events_for(order_id)) and e[-1]["detail-type"] == "order.delivered" and e,
        "order.delivered",
    )
    assert [e["detail-type"] for e in events] == ["order.placed", "order.shipped", "order.delivered"]


def test_an_older_update_still_moves_the_order_on(fulfilment: Fulfilment, fulfilling: dict[str, Any]) -> None:
    """A problem reported first, the parcel's pick-up (earlier) reported after it: the order is shipped, and
    the tracking status stays the newer problem."""
    t0 = datetime.now(UTC)
    assert fulfilment.tracking_update(fulfilling, "exception", at=t0 + timedelta(minutes=2)).status_code == 200
    order = fulfilment.order(fulfilling["id"])
    assert (order["status"], order["fulfilment"]["status"]) == ("fulfilling", "exception")
    assert fulfilment.tracking_update(fulfilling, "in_transit", at=t0 + timedelta(minutes=1)).status_code == 200
    order = fulfilment.order(fulfilling["id"])
    assert (order["status"], order["fulfilment"]["status"]) == ("shipped", "exception")


def test_concurrent_tracking_updates_keep_the_newest(fulfilment: Fulfilment) -> None:
    """The carrier sends updates in parallel and retries them: whatever order they land in, the order ends
    with the newest update's tracking status, one history entry per status, and one event per transition."""
    for _ in range(3):
        order_id = fulfilment.paid_order()
        fulfilment.send(json.dumps({"order_id": order_id}))
        order = fulfilment.wait_for_status(order_id, "fulfilling")
        t0 = datetime.now(UTC)
        updates = [("in_transit", 1), ("out_for_delivery", 2), ("exception", 3)] * 3  # each one three times
        barrier = threading.Barrier(len(updates))
        answers: list[int] = []

        def send(
            status: str,
            minute: int,
            *,
            order: dict[str, Any] = order,
            t0: datetime = t0,
            barrier: threading.Barrier = barrier,
            answers: list[int] = answers,
        ) -> None:
            barrier.wait()
            answers.append(fulfilment.tracking_update(order, status, at=t0 + timedelta(minutes=minute)).status_code)

        threads = [threading.Thread(target=send, args=update) for update in updates]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert set(answers) <= {200, 409}, answers  # 409 tracking_conflict: the carrier retries it
        retries = [update for update, answer in zip(updates, answers, strict=True) if answer == 409]
        for status, minute in retries:
            assert fulfilment.tracking_update(order, status, at=t0 + timedelta(minutes=minute)).status_code == 200
        order = fulfilment.order(order_id)
        assert (order["status"], order["fulfilment"]["status"]) == ("shipped", "exception")
        assert [h["status"] for h in order["history"]].count("shipped") == 1
        wait_until(
            lambda order_id=order_id: (
                [e["detail-type"] for e in fulfilment.events_for(order_id)].count("order.shipped") == 1
            ),
            "order.shipped",
        )


def test_an_older_update_delayed_between_read_and_write_does_not_hide_a_newer_one(
    fulfilment: Fulfilment, fulfilling: dict[str, Any], cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lost update, forced: out_for_delivery (older) reads the order, stalls; exception (newer) is applied
    meanwhile; then out_for_delivery writes. It must notice, read again, and find itself old news."""
    t0 = datetime.now(UTC)
    assert fulfilment.tracking_update(fulfilling, "in_transit", at=t0).status_code == 200
    orders = cloud.functions["FulfilmentFunction"].module.service._orders
    get = orders.get
    older_has_read, newer_is_done = threading.Event(), threading.Event()

    def stalls_after_reading(order_id: str) -> Any:
        order = get(order_id)
        if threading.current_thread().name == "older" and not older_has_read.is_set():
            older_has_read.set()
            assert newer_is_done.wait(10)
        return order

    monkeypatch.setattr(orders, "get", stalls_after_reading)
    # The function's own service, called on threads of this test (named, so that only the older one stalls).
    service = cloud.functions["FulfilmentFunction"].module.service
    shipment = fulfilment.shipments_for(fulfilling["id"])[0]

    def deliver(status: str, minutes: int) -> None:
        body = json.dumps(
            {
                "id": f"evt_{uuid.uuid4().hex}",
                "type": "shipment.updated",
                "data": {
                    "shipment_id": shipment["id"],
                    "tracking_number": shipment["tracking_number"],
                    "reference": fulfilling["id"],
                    "status": status,
                    "occurred_at": (t0 + timedelta(minutes=minutes)).isoformat(),
                },
            }
        ).encode()
        service.receive_tracking_webhook("local", body, sign(body, LOCAL_CARRIER_WEBHOOK_SECRET))

    older = threading.Thread(target=deliver, args=("out_for_delivery", 1), name="older")
    older.start()
    assert older_has_read.wait(10)
    deliver("exception", 2)
    newer_is_done.set()
    older.join(10)
    order = fulfilment.order(fulfilling["id"])
    assert (order["status"], order["fulfilment"]["status"]) == ("shipped", "exception")


def test_a_crash_in_the_middle_of_the_walk_is_finished_by_the_carriers_retry(
    fulfilment: Fulfilment, fulfilling: dict[str, Any], cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """delivered overtakes in_transit: two writes (to shipped, then to delivered). The function dies between
    them; the carrier retries the same update, which finishes the walk."""
    orders = cloud.functions["FulfilmentFunction"].module.service._orders
    transition = orders.transition
    writes: list[str] = []

    def dies_after_the_first_write(order_id: str, to: OrderStatus, at: datetime, **fields: Any) -> Any:
        if writes:
            raise ConnectionError("the function died")
        writes.append(to)
        return transition(order_id, to, at, **fields)

    monkeypatch.setattr(orders, "transition", dies_after_the_first_write)
    delivered_at = datetime.now(UTC)
    assert fulfilment.tracking_update(fulfilling, "delivered", at=delivered_at, event_id="evt_d").status_code == 500
    assert fulfilment.order(fulfilling["id"])["status"] == "shipped"
    monkeypatch.setattr(orders, "transition", transition)
    assert fulfilment.tracking_update(fulfilling, "delivered", at=delivered_at, event_id="evt_d").status_code == 200
    order = fulfilment.order(fulfilling["id"])
    assert (order["status"], order["fulfilment"]["status"]) == ("delivered", "delivered")
    assert [h["status"] for h in order["history"]][-3:] == ["fulfilling", "shipped", "delivered"]


def test_a_message_that_might_outlast_the_timeout_is_left_for_later(fulfilment: Fulfilment, cloud: LocalCloud) -> None:
    """The function does not start a message it might not finish: a timeout would fail the whole batch,
    including the messages already shipped. The ones left return to the queue untried."""
    function = cloud.functions["FulfilmentFunction"]
    module = function.module
    order_ids = [fulfilment.paid_order() for _ in range(3)]
    records = [
        {
            "messageId": f"m{i}",
            "receiptHandle": "r",
            "body": json.dumps({"order_id": order_id}),
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": cloud.physical_id("FulfilmentQueue", "Arn"),
            "awsRegion": "us-east-1",
        }
        for i, order_id in enumerate(order_ids)
    ]
    per_message_ms = module.SECONDS_PER_MESSAGE * 1000

    class RunningOut(LambdaContext):
        """Time for the first message only, as if it had taken nearly all of it."""

        def get_remaining_time_in_millis(self) -> int:
            return int(per_message_ms + 1) if not fulfilment.shipments_for(order_ids[0]) else int(per_message_ms - 1)

    context = RunningOut(function.name, function.arn, function.memory, function.timeout)
    result = module.handler({"Records": records}, context)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}
    assert fulfilment.order(order_ids[0])["status"] == "fulfilling"
    assert [fulfilment.order(o)["status"] for o in order_ids[1:]] == ["paid", "paid"]
    assert all(not fulfilment.shipments_for(o) for o in order_ids[1:])  # untried, not half-done


def test_an_update_before_the_shipment_is_recorded_is_retried_by_the_carrier(fulfilment: Fulfilment) -> None:
    order_id = fulfilment.paid_order()  # paid; the fulfilment function has not recorded a shipment yet
    body = json.dumps(
        {
            "id": "evt_early",
            "type": "shipment.updated",
            "data": {
                "shipment_id": "shp_early",
                "tracking_number": "LC000000000001",
                "reference": order_id,
                "status": "in_transit",
                "occurred_at": datetime.now(UTC).isoformat(),
            },
        }
    ).encode()
    response = fulfilment.api.post(
        "/webhooks/carriers/local",
        content=body,
        headers={"Carrier-Signature": sign(body, LOCAL_CARRIER_WEBHOOK_SECRET)},
    )
    assert response.status_code == 409 and response.json()["code"] == "not_yet_fulfilling"
    assert fulfilment.order(order_id)["status"] == "paid"


# ------------------------------------------------------------------ integration events of the other transitions


def test_stock_low_is_published_once_when_the_level_crosses_its_threshold(
    fulfilment: Fulfilment, cloud: LocalCloud
) -> None:
    from storefront.inventory.repository import InventoryRepository

    inventory = InventoryRepository(cloud.client("dynamodb"), cloud.physical_id("InventoryTable"))
    sku = f"LOW-{uuid.uuid4().hex[:8].upper()}"
    inventory.put_level(sku, 8, low_stock_threshold=5)
    stock = cloud.functions["StockFunction"]
    for quantity in (2, 2, 1):  # 8 -> 6 -> 4 (crosses 5) -> 3 (still low)
        order_id = secrets.token_urlsafe(24)
        result = stock.invoke(
            {"action": "reserve", "order_id": order_id, "lines": [{"sku": sku, "quantity": quantity}]}
        )
        assert result["outcome"] == "reserved", result

    def low_events() -> list[dict[str, Any]]:
        return [e for e in cloud.integration_events() if e["detail-type"] == "stock.low" and e["detail"]["sku"] == sku]

    events = wait_until(low_events, "stock.low")
    time.sleep(1)
    assert len(low_events()) == 1
    detail = events[0]["detail"]
    assert (detail["available"], detail["on_hand"], detail["reserved"], detail["low_stock_threshold"]) == (4, 8, 4, 5)
    assert detail["schema_version"] == 2 and detail["event_id"]


def test_eventbridge_throttling_delays_events_but_loses_and_repeats_none(
    fulfilment: Fulfilment, cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storefront.integration_events import PublishFailed

    app = cloud.functions["IntegrationEventsFunction"].module
    real_publish = app.publisher.publish
    refusals = {"left": 3}

    def throttled(events: list[Any]) -> None:
        if events and refusals["left"] > 0:  # PutEvents answers ThrottlingException for a while
            refusals["left"] -= 1
            raise PublishFailed("EventBridge refused 1 of 1 events: ['ThrottlingException']")
        real_publish(events)

    monkeypatch.setattr(app.publisher, "publish", throttled)
    order_id = fulfilment.paid_order()
    fulfilment.send(json.dumps({"order_id": order_id}))
    order = fulfilment.wait_for_status(order_id, "fulfilling")
    for status in ("in_transit", "delivered"):
        assert fulfilment.tracking_update(order, status).status_code == 200
    events = wait_until(
        lambda: (e := fulfilment.events_for(order_id)) and e[-1]["detail-type"] == "order.delivered" and e,
        "order.delivered after the throttling",
    )
    assert refusals["left"] == 0
    time.sleep(1)
    assert [e["detail-type"] for e in fulfilment.events_for(order_id)] == [
        "order.placed",
        "order.shipped",
        "order.delivered",
    ]
    assert [e["detail-type"] for e in events] == ["order.placed", "order.shipped", "order.delivered"]
