"""Customer emails on the local cloud: the template's rules, queue, mapping, function, table and SES (moto's).

A purchase gets its confirmation, shipping and delivery mails once each; every subscribed event type sends its
email once even when EventBridge delivers it twice; concurrent duplicate deliveries send one; a throttled SES
delays the mail (the queue delivers it again) and it is sent once; a bounce suppresses the address and the next
mail to it is skipped and counted; an event for an unknown order is dropped, not retried.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from storefront.notifications.models import EMAIL_FOR_EVENT
from storefront.notifications.repository import EmailRecords, SuppressionList
from storefront.orders.models import HistoryEntry, OrderStatus, StoredOrder
from storefront.orders.repository import OrderRepository

from local_cloud.cloud import LocalCloud
from local_cloud.demo_data import DEMO_PAID_ORDER_ID
from local_cloud.functions import LambdaContext
from tests.waiting import wait_until

HOSTILE_NAME = "<script>alert('x')</script> Ada \u202eecalevoL"
ADDRESS = {
    "name": HOSTILE_NAME,
    "line1": "Unter den Linden 1",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "DE",
}


class Mail:
    """What a test needs to make orders, put events where the shop's systems put them, and read what was sent."""

    def __init__(self, cloud: LocalCloud, api: httpx.Client) -> None:
        self.cloud = cloud
        self.api = api
        dynamodb = cloud.client("dynamodb")
        self.orders = OrderRepository(dynamodb, cloud.physical_id("OrdersTable"))
        self.records = EmailRecords(dynamodb, cloud.physical_id("NotificationsTable"))
        self.suppressions = SuppressionList(dynamodb, cloud.physical_id("NotificationsTable"))
        self.dynamodb = dynamodb
        self.events = cloud.client("events")
        self.sqs = cloud.client("sqs")
        self.queue_url = cloud.physical_id("NotificationsQueue")
        self.dlq_url = cloud.physical_id("NotificationsDeadLetterQueue")

    def order(self, status: OrderStatus = OrderStatus.SHIPPED, email: str | None = None, **extra: Any) -> str:
        """An order written as the workflow leaves it (from the demo paid order's lines), with `extra` attributes
        the contract gives orders (refunds and the refunded amount, the payment's attempts) in the same write: a later
        change of them would be news of its own (order.refunded, order.payment_declined) and send its own email."""
        template = self.orders.get(DEMO_PAID_ORDER_ID)
        assert template is not None
        now = datetime.now(UTC)
        order_id = secrets.token_urlsafe(24)
        self.orders.create(
            StoredOrder.model_validate(
                {
                    **template.model_dump(),
                    "id": order_id,
                    "cart_id": uuid.uuid4().hex,
                    "status": status,
                    "email": email or f"{order_id.lower()}@example.com",
                    "created_at": now,
                    "updated_at": now,
                    "fulfilment": {
                        "status": "in_transit",
                        "carrier": "local",
                        "tracking_number": "LC100200300",
                        "tracking_url": "https://carrier.example/track/LC100200300",
                    },
                    "history": [HistoryEntry(status=OrderStatus.PENDING, at=now)],
                    **extra,
                }
            )
        )
        return order_id

    def publish(self, event_type: str, order_id: str, event_id: str | None = None) -> str:
        """An integration event on the shop's bus, as IntegrationEventsFunction publishes it (ids and figures)."""
        event_id = event_id or f"{event_type}:{order_id}"
        detail = {
            "schema_version": 1,
            "event_id": event_id,
            "type": event_type,
            "occurred_at": datetime.now(UTC).isoformat(),
            "order": {"id": order_id},
        }
        answer = self.events.put_events(
            Entries=[
                {
                    "Source": "storefront",
                    "DetailType": event_type,
                    "Detail": json.dumps(detail),
                    "EventBusName": self.cloud.physical_id("IntegrationEventBus"),
                }
            ]
        )
        assert answer["FailedEntryCount"] == 0, answer
        return event_id

    def sent_to(self, order_id: str) -> list[dict[str, Any]]:
        return [e for e in self.cloud.sent_emails() if e["order_id"] == order_id]

    def wait_for_emails(self, order_id: str, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        return wait_until(
            lambda: len(sent := self.sent_to(order_id)) >= count and sent,
            f"{count} email(s) for order {order_id}",
            timeout,
        )

    def settled(self, *event_ids: str, timeout: float = 30) -> list[dict[str, Any]]:
        """The events' records, once every one is final and the queue holds nothing more."""

        def done() -> list[dict[str, Any]] | None:
            records = [self.records.get(event_id) for event_id in event_ids]
            if self.queued(self.queue_url) or not all(r and r["status"] != "sending" for r in records):
                return None
            return records  # type: ignore[return-value]

        return wait_until(done, f"the records of {event_ids}", timeout)

    def queued(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


@pytest.fixture
def mail(cloud: LocalCloud, api: httpx.Client) -> Mail:
    return Mail(cloud, api)


@pytest.fixture
def fast_redelivery(mail: Mail) -> Iterator[None]:
    """The notifications queue with a 1 s visibility timeout (the template says 180 s), so that a retry happens
    within a test; put back afterwards."""
    before = mail.sqs.get_queue_attributes(QueueUrl=mail.queue_url, AttributeNames=["VisibilityTimeout"])["Attributes"]
    mail.sqs.set_queue_attributes(QueueUrl=mail.queue_url, Attributes={"VisibilityTimeout": "1"})
    time.sleep(1.5)  # a long poll already waiting took the old visibility timeout with it (as SQS does)
    yield
    mail.sqs.set_queue_attributes(QueueUrl=mail.queue_url, Attributes=before)


# ------------------------------------------------------------------ a shopper's purchase


def test_a_purchase_gets_its_confirmation_shipping_and_delivery_mail_once_each(mail: Mail) -> None:
    api = mail.api
    cart = api.post("/carts").json()
    api.post(f"/carts/{cart['id']}/items", json={"sku": "CERAMIC-MUG-ONE", "quantity": 2})
    api.put(f"/carts/{cart['id']}/shipping", json={"country": "DE", "method": "standard"})
    order = api.post(
        "/checkout",
        headers={"Idempotency-Key": uuid.uuid4().hex},
        json={"cart_id": cart["id"], "email": "ada.lovelace@example.com", "shipping_address": ADDRESS},
    ).json()
    order = wait_until(lambda: (o := api.get(f"/orders/{order['id']}").json())["payment"] and o, "a payment")
    assert api.post(f"/dev/payments/{order['payment']['payment_id']}/succeed").status_code == 200

    (confirmation,) = mail.wait_for_emails(order["id"], 1)
    assert confirmation["to"] == "ada.lovelace@example.com"
    assert confirmation["subject"] == f"Your order {order['id']} is confirmed"  # shop.json: en-IE
    total = f"€{order['totals']['total']['amount'] / 100:.2f}"  # 2 mugs + shipping
    assert total in confirmation["text"] and total in confirmation["html"]
    assert "&lt;script&gt;" in confirmation["html"] and "<script>" not in confirmation["html"]
    assert "\u202e" not in confirmation["text"] + confirmation["html"]

    tracking = wait_until(
        lambda: (o := api.get(f"/orders/{order['id']}").json())["fulfilment"] and o["fulfilment"], "a shipment"
    )
    for _ in ("in_transit", "out_for_delivery", "delivered"):
        assert api.post(f"/dev/shipments/{tracking['tracking_number']}/advance").status_code == 200
    emails = mail.wait_for_emails(order["id"], 3)
    mail.settled(f"order.paid:{order['id']}", f"order.shipped:{order['id']}", f"order.delivered:{order['id']}")
    assert [e["subject"].split(order["id"])[1] for e in mail.sent_to(order["id"])] == [
        " has been delivered",
        " is on its way",
        " is confirmed",
    ]  # newest first, one each
    shipped = emails[1]
    assert tracking["tracking_number"] in shipped["text"] and tracking["tracking_url"] in shipped["text"]
    assert f'href="{tracking["tracking_url"]}"' in shipped["html"]

    listed = api.get("/dev/emails").json()["items"]
    assert [e["id"] for e in listed if e["order_id"] == order["id"]] == [e["id"] for e in mail.sent_to(order["id"])]
    assert set(listed[0]) == {"id", "to", "subject", "text", "html", "order_id", "at"}
    page = api.get(f"/dev/emails/{confirmation['id']}")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.text == confirmation["html"]
    assert api.get("/dev/emails/no-such-email").status_code == 404


# ------------------------------------------------------------------ every event, once


def test_each_subscribed_event_sends_its_email_once_even_when_delivered_twice(mail: Mail) -> None:
    order_id = mail.order(
        OrderStatus.CANCELLED,
        payment={"provider": "fake", "status": "succeeded", "payment_id": "pi_1", "attempts": 1},
        refunds=[
            {
                "id": "re_1",
                "amount": {"amount": 1200, "currency": "EUR"},
                "status": "succeeded",
                "lines": [],
                "restock": False,
                "reason": "requested_by_customer",
                "created_at": datetime.now(UTC).isoformat(),
            }
        ],
        captured_amount=4190,
        refunded_amount=1200,
    )  # as the refunds write them
    event_ids = []
    for event_type in EMAIL_FOR_EVENT:
        event_ids.append(mail.publish(event_type, order_id))
        mail.publish(event_type, order_id)  # EventBridge delivers at least once: here, twice
    records = mail.settled(*event_ids)
    assert [r["status"] for r in records] == ["sent"] * len(EMAIL_FOR_EVENT)
    sent = mail.sent_to(order_id)
    assert len(sent) == len(EMAIL_FOR_EVENT), [e["subject"] for e in sent]
    assert {r["kind"] for r in records} == {kind.value for kind in EMAIL_FOR_EVENT.values()}
    refund = next(e for e in sent if "Refund" in e["subject"])
    assert "We have refunded €12.00 of your order's" in refund["text"]  # the headline, not only the refund's line
    assert mail.queued(mail.dlq_url) == 0


def test_concurrent_deliveries_of_one_message_send_one_email(mail: Mail) -> None:
    """The same event handed to the function by several invocations at once (SQS delivers a message twice;
    EventBridge puts an event twice): the conditional claim on the real table lets one send."""
    order_id = mail.order()
    body = json.dumps(
        {
            "source": "storefront",
            "detail-type": "order.shipped",
            "detail": {
                "event_id": f"order.shipped:{order_id}",
                "type": "order.shipped",
                "occurred_at": datetime.now(UTC).isoformat(),
                "order": {"id": order_id},
            },
        }
    )
    function = mail.cloud.functions["NotificationsFunction"]
    results: list[Any] = []

    def deliver(n: int) -> None:
        record = {
            "messageId": f"m-{n}",
            "receiptHandle": "r",
            "body": body,
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": mail.cloud.physical_id("NotificationsQueue", "Arn"),
            "awsRegion": "us-east-1",
        }
        results.append(function.invoke({"Records": [record]}))

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [{"batchItemFailures": []}] * 6
    assert len(mail.sent_to(order_id)) == 1
    assert mail.records.get(f"order.shipped:{order_id}")["status"] == "sent"


# ------------------------------------------------------------------ SES trouble, bounces, unknown orders


@pytest.fixture
def throttled_ses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """moto's SES answers 429 TooManyRequestsException (SES's "Maximum sending rate exceeded") while the list
    holds a truthy value; it counts the refused calls in it."""
    from moto.core.exceptions import JsonRESTError
    from moto.sesv2.responses import SESV2Response

    refused = [1, 0]  # [throttling on?, calls refused]
    original = SESV2Response.send_email

    def send_email(self: Any) -> str:
        if refused[0]:
            refused[1] += 1
            error = JsonRESTError("TooManyRequestsException", "Maximum sending rate exceeded.")
            error.code = 429
            raise error
        return original(self)

    monkeypatch.setattr(SESV2Response, "send_email", send_email)
    return refused


@pytest.mark.slow("waits")
@pytest.mark.usefixtures("fast_redelivery")
def test_a_throttled_ses_delays_the_email_and_it_is_sent_once(mail: Mail, throttled_ses: list[int]) -> None:
    order_id = mail.order()
    event_id = mail.publish("order.delivered", order_id)
    wait_until(lambda: throttled_ses[1] >= 4, "two deliveries of the event refused by SES (two attempts each)")
    assert mail.sent_to(order_id) == []
    # Each failed delivery gave the claim back (or the next one holds it right now), and the message waits for its
    # next delivery: not lost.
    assert (mail.records.get(event_id) or {"status": "sending"})["status"] == "sending"
    assert mail.queued(mail.queue_url) == 1
    throttled_ses[0] = 0  # SES has capacity again
    (record,) = mail.settled(event_id)
    assert record["status"] == "sent"
    (email,) = mail.sent_to(order_id)
    assert record["message_id"] == email["id"]
    assert mail.queued(mail.dlq_url) == 0


def test_a_hard_bounce_suppresses_the_address_and_its_next_email_is_skipped_and_counted(
    mail: Mail, capsys: pytest.CaptureFixture[str]
) -> None:
    address = f"bounce-{uuid.uuid4().hex[:8]}@example.com"
    configuration_set = mail.cloud.physical_id("NotificationsConfigurationSet")
    # What SES publishes to the default bus for a hard bounce of a mail sent with the configuration set.
    mail.events.put_events(
        Entries=[
            {
                "Source": "aws.ses",
                "DetailType": "Email Bounced",
                "Detail": json.dumps(
                    {
                        "eventType": "Bounce",
                        "bounce": {
                            "bounceType": "Permanent",
                            "bounceSubType": "General",
                            "bouncedRecipients": [{"emailAddress": address.upper(), "status": "5.1.1"}],
                        },
                        "mail": {
                            "messageId": "m-1",
                            "destination": [address],
                            "tags": {"ses:configuration-set": [configuration_set], "kind": ["order_confirmed"]},
                        },
                    }
                ),
            }
        ]
    )
    wait_until(lambda: mail.suppressions.contains(address), "the bounced address on the suppression list")

    order_id = mail.order(email=address)
    event_id = mail.publish("order.shipped", order_id)
    (record,) = mail.settled(event_id)
    assert record["status"] == "suppressed" and mail.sent_to(order_id) == []
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(m.get("EmailsSuppressed") == [1.0] or m.get("EmailsSuppressed") == 1.0 for m in metrics), metrics


def test_feedback_of_another_configuration_set_is_not_ours_to_act_on(mail: Mail) -> None:
    address = f"other-{uuid.uuid4().hex[:8]}@example.com"
    mail.events.put_events(
        Entries=[
            {
                "Source": "aws.ses",
                "DetailType": "Email Bounced",
                "Detail": json.dumps(
                    {
                        "eventType": "Bounce",
                        "bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": address}]},
                        "mail": {"tags": {"ses:configuration-set": ["someone-elses"]}},
                    }
                ),
            }
        ]
    )
    order_id = mail.order(email=address)
    (record,) = mail.settled(mail.publish("order.shipped", order_id))
    assert record["status"] == "sent" and not mail.suppressions.contains(address)


def test_an_event_for_an_unknown_order_is_dropped_not_retried(mail: Mail) -> None:
    event_id = mail.publish("order.paid", "NoSuchOrder" + secrets.token_hex(10))
    (record,) = mail.settled(event_id)
    assert record["status"] == "unknown_order"
    assert mail.queued(mail.queue_url) == 0 and mail.queued(mail.dlq_url) == 0


def test_the_handler_leaves_a_message_untried_without_time_for_it(mail: Mail) -> None:
    order_id = mail.order()
    body = json.dumps(
        {
            "source": "storefront",
            "detail-type": "order.paid",
            "detail": {
                "event_id": f"order.paid:{order_id}",
                "type": "order.paid",
                "occurred_at": datetime.now(UTC).isoformat(),
                "order": {"id": order_id},
            },
        }
    )
    function = mail.cloud.functions["NotificationsFunction"]
    assert function.module is not None
    context = LambdaContext(function.name, function.arn, function.memory, timeout_seconds=1)
    record = {
        "messageId": "m-late",
        "receiptHandle": "r",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": mail.cloud.physical_id("NotificationsQueue", "Arn"),
        "awsRegion": "us-east-1",
    }
    with pytest.raises(BatchProcessingError):  # every record of the batch failed: all of it goes back to the queue
        function.module.consume({"Records": [record]}, context)
    assert mail.records.get(f"order.paid:{order_id}") is None and mail.sent_to(order_id) == []


# ------------------------------------------------------------------ the sample events (make invoke)


def _sample(name: str) -> dict[str, Any]:
    from pathlib import Path

    return json.loads((Path(__file__).resolve().parents[2] / "events" / "notifications" / name).read_text())


def test_the_order_paid_sample_sends_the_demo_orders_confirmation_once(mail: Mail) -> None:
    from local_cloud.__main__ import run_invoke

    for _ in range(2):  # the sample delivers the event twice itself; invoked twice, still one email
        result, failed = run_invoke(mail.cloud, "NotificationsFunction", _sample("order-paid.json"))
        assert not failed and result == {"batchItemFailures": []}, result
    (email,) = [e for e in mail.sent_to(DEMO_PAID_ORDER_ID) if "confirmed" in e["subject"]]
    assert email["to"] == "ada@example.com"
    assert mail.records.get(f"order.paid:{DEMO_PAID_ORDER_ID}")["status"] == "sent"


def test_the_bounce_sample_suppresses_its_address(mail: Mail) -> None:
    from local_cloud.__main__ import run_invoke

    result, failed = run_invoke(mail.cloud, "NotificationsFunction", _sample("ses-bounce.json"))
    assert not failed and result == {"batchItemFailures": []}, result
    assert mail.suppressions.contains("gone@example.com")


@pytest.mark.slow("process")
def test_make_invoke_with_the_order_paid_sample_shows_the_email() -> None:
    """`python -m local_cloud invoke NotificationsFunction -e events/notifications/order-paid.json`, as `make invoke`
    runs it: the function's answer on stdout, the email the local SES sent on stderr."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    env.update({"PYTHONPATH": f"{root / 'layers' / 'storefront'}{os.pathsep}{root}", "PYTHONDONTWRITEBYTECODE": "1"})
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "local_cloud",
            "invoke",
            "NotificationsFunction",
            "-e",
            "events/notifications/order-paid.json",
        ],
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, f"exit {run.returncode}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    assert json.loads(run.stdout) == {"batchItemFailures": []}
    notes = [line for line in run.stderr.splitlines() if line.startswith("local_cloud invoke: the local SES sent")]
    assert notes == [
        f"local_cloud invoke: the local SES sent an email to ada@example.com: "
        f"Your order {DEMO_PAID_ORDER_ID} is confirmed"
    ], run.stderr
    assert f"Order number: {DEMO_PAID_ORDER_ID}" in run.stderr
