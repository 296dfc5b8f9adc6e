"""`python -m local_cloud invoke` (`make invoke`) with the signed webhook samples of events/payment_webhook/ and
events/fulfilment/. Their signatures were made with the local secrets at a fixed time, so they are stale; invoke
re-signs the exact body with the same secret now and says so on stderr, and the samples then do on the demo data
what they are there to show. A sample whose signature the local secret did not make is sent as it is (400)."""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from storefront.orders.models import OrderStatus, PaymentStatus, StoredOrder
from storefront.orders.repository import OrderRepository
from storefront.payments.repository import ProcessedEvents
from storefront.webhooks.signatures import sign, verify

from local_cloud.__main__ import resign_stale_webhook, run_invoke
from local_cloud.cloud import DEFAULT_WEBHOOK_SECRET, LOCAL_CARRIER_WEBHOOK_SECRET, LocalCloud
from local_cloud.demo_data import (
    DEMO_AWAITING_PAYMENT_ORDER_ID,
    DEMO_FULFILLING_ORDER_ID,
    DEMO_PAYMENT_ID,
    DEMO_SHIPMENT_ID,
    DEMO_TRACKING_NUMBER,
)

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
CARRIER_SAMPLE = "fulfilment/carrier-webhook-in-transit.json"
PAYMENT_SAMPLES = [
    "payment_webhook/webhook-payment-succeeded.json",
    "payment_webhook/webhook-payment-succeeded-base64.json",
]
NOTE = "local_cloud invoke: "  # how invoke's line on stderr begins


def _load(sample: str) -> dict[str, Any]:
    event = json.loads((EVENTS / sample).read_text())
    assert isinstance(event, dict)
    return event


def _body(event: dict[str, Any]) -> bytes:
    return base64.b64decode(event["body"]) if event["isBase64Encoded"] else event["body"].encode("utf-8")


def _response_body(response: dict[str, Any]) -> Any:
    return json.loads(base64.b64decode(response["body"]) if response.get("isBase64Encoded") else response["body"])


def _notes(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(NOTE)]


@pytest.fixture
def orders(cloud: LocalCloud) -> OrderRepository:
    return OrderRepository(cloud.client("dynamodb"), cloud.physical_id("OrdersTable"))


def _order(orders: OrderRepository, order_id: str) -> StoredOrder:
    order = orders.get(order_id)
    assert order is not None, f"the demo data has no order {order_id}"
    return order


# ---------------------------------------------------------------- the samples succeed on the demo data


def test_carrier_sample_moves_the_demo_fulfilling_order_to_shipped(
    cloud: LocalCloud, orders: OrderRepository, capsys: pytest.CaptureFixture[str]
) -> None:
    event = _load(CARRIER_SAMPLE)
    update = json.loads(_body(event))["data"]
    before = _order(orders, DEMO_FULFILLING_ORDER_ID)
    assert (update["reference"], update["shipment_id"], update["tracking_number"]) == (
        DEMO_FULFILLING_ORDER_ID,
        DEMO_SHIPMENT_ID,
        DEMO_TRACKING_NUMBER,
    ), "the sample names the demo shipment"
    assert before.status == OrderStatus.FULFILLING
    assert before.shipment_id == DEMO_SHIPMENT_ID
    assert before.fulfilment is not None and before.fulfilment.tracking_number == DEMO_TRACKING_NUMBER
    assert before.fulfilment.status == "label_created"

    response, failed = run_invoke(cloud, "FulfilmentFunction", copy.deepcopy(event))

    assert not failed and response["statusCode"] == 200, response
    assert _response_body(response) == {"received": True}
    after = _order(orders, DEMO_FULFILLING_ORDER_ID)
    assert after.status == OrderStatus.SHIPPED
    assert after.fulfilment is not None and after.fulfilment.status == "in_transit"
    assert after.fulfilment.tracking_number == DEMO_TRACKING_NUMBER
    assert [h.status for h in after.history] == ["pending", "awaiting_payment", "paid", "fulfilling", "shipped"]
    notes = _notes(capsys.readouterr().err)
    assert len(notes) == 1 and "carrier-signature" in notes[0] and "re-signed" in notes[0], notes


@pytest.mark.parametrize("sample", PAYMENT_SAMPLES)
def test_payment_sample_records_the_demo_orders_payment_as_succeeded(
    cloud: LocalCloud, orders: OrderRepository, capsys: pytest.CaptureFixture[str], sample: str
) -> None:
    event = _load(sample)
    intent = json.loads(_body(event))["data"]["object"]
    provider = event["pathParameters"]["provider"]
    order = _order(orders, DEMO_AWAITING_PAYMENT_ORDER_ID)
    assert order.status == OrderStatus.AWAITING_PAYMENT
    assert order.payment is not None and order.payment.payment_id == intent["id"] == DEMO_PAYMENT_ID
    assert intent["metadata"]["order_id"] == order.id
    assert (intent["amount"], intent["currency"].upper()) == (order.totals.total.amount, order.totals.total.currency)
    # Each sample starts from the demo order as seeded: its payment pending (another sample may have run first).
    orders.update_fields(
        order.id,
        condition_status={OrderStatus.AWAITING_PAYMENT},
        payment=order.payment.model_copy(update={"status": PaymentStatus.PENDING}).model_dump(
            mode="json", exclude_none=True
        ),
    )
    events = ProcessedEvents(cloud.client("dynamodb"), cloud.physical_id("OrdersTable"), ttl_days=30)
    payload = json.loads(_body(event))
    assert not events.seen(provider, payload["id"])

    response, failed = run_invoke(cloud, "PaymentWebhookFunction", copy.deepcopy(event))

    assert not failed and response["statusCode"] == 200, response
    after = _order(orders, order.id)
    # No workflow waits for this demo order (it has no task token), so the order itself stays awaiting payment.
    assert after.status == OrderStatus.AWAITING_PAYMENT
    assert after.payment is not None and after.payment.status == "succeeded"
    assert after.payment.payment_id == DEMO_PAYMENT_ID
    assert events.seen(provider, payload["id"]), "the event was processed, not ignored"
    notes = _notes(capsys.readouterr().err)
    assert len(notes) == 1 and "stripe-signature" in notes[0] and "re-signed" in notes[0], notes


# ---------------------------------------------------------------- what invoke leaves alone


def _edited_body(event: dict[str, Any]) -> dict[str, Any]:
    edited = json.loads(_body(event))
    edited["data"]["status"] = "delivered"
    body = json.dumps(edited)
    event["body"], event["headers"]["content-length"] = body, str(len(body.encode()))
    return event


def _altered_signature(event: dict[str, Any]) -> dict[str, Any]:
    header = event["headers"]["carrier-signature"]
    event["headers"]["carrier-signature"] = header[:-1] + ("0" if header[-1] != "0" else "1")
    return event


def _another_secret(event: dict[str, Any]) -> dict[str, Any]:
    header = event["headers"]["stripe-signature"]
    timestamp = int(header.split(",")[0].removeprefix("t="))
    event["headers"]["stripe-signature"] = sign(_body(event), "whsec_not_the_local_one", timestamp)
    return event


TAMPERED = {
    "carrier-body-edited-after-signing": (
        CARRIER_SAMPLE,
        "FulfilmentFunction",
        DEMO_FULFILLING_ORDER_ID,
        "carrier-signature",
        _edited_body,
    ),
    "carrier-signature-altered": (
        CARRIER_SAMPLE,
        "FulfilmentFunction",
        DEMO_FULFILLING_ORDER_ID,
        "carrier-signature",
        _altered_signature,
    ),
    "payment-signed-with-another-secret": (
        PAYMENT_SAMPLES[0],
        "PaymentWebhookFunction",
        DEMO_AWAITING_PAYMENT_ORDER_ID,
        "stripe-signature",
        _another_secret,
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_a_sample_the_local_secret_did_not_sign_is_not_resigned(
    cloud: LocalCloud, orders: OrderRepository, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    sample, function, order_id, header_name, tamper = TAMPERED[case]
    event = tamper(_load(sample))
    sent = copy.deepcopy(event)
    before = _order(orders, order_id)

    # What invoke hands the function: the event unchanged, and nothing said about it.
    assert resign_stale_webhook(copy.deepcopy(event), cloud.secret_values) == (sent, None)
    assert header_name in sent["headers"]

    response, failed = run_invoke(cloud, function, event)

    assert not failed and response["statusCode"] == 400, response
    assert _response_body(response)["code"] == "invalid_signature"
    assert _order(orders, order_id) == before, "a rejected webhook changed the order"
    assert _notes(capsys.readouterr().err) == []


def test_only_stale_signatures_made_with_the_local_secret_are_resigned() -> None:
    secrets = {"PaymentWebhookSecret": DEFAULT_WEBHOOK_SECRET, "CarrierWebhookSecret": LOCAL_CARRIER_WEBHOOK_SECRET}
    now = int(time.time())
    carrier = _load(CARRIER_SAMPLE)
    body = _body(carrier)

    resigned, note = resign_stale_webhook(copy.deepcopy(carrier), secrets, now=now)
    assert note is not None and note.startswith(NOTE) and "\n" not in note
    assert resigned["headers"]["carrier-signature"] == sign(body, LOCAL_CARRIER_WEBHOOK_SECRET, now)
    assert {**resigned, "headers": {}} == {**carrier, "headers": {}}, "only the signature changes"
    assert {k: v for k, v in resigned["headers"].items() if k != "carrier-signature"} == {
        k: v for k, v in carrier["headers"].items() if k != "carrier-signature"
    }
    assert verify(body, resigned["headers"]["carrier-signature"], [LOCAL_CARRIER_WEBHOOK_SECRET]) == now

    fresh = copy.deepcopy(carrier)
    fresh["headers"]["carrier-signature"] = sign(body, LOCAL_CARRIER_WEBHOOK_SECRET, now - 10)
    assert resign_stale_webhook(copy.deepcopy(fresh), secrets, now=now) == (fresh, None)

    # A payment secret of another value (PAYMENT_WEBHOOK_SECRET set, say) did not make the sample's signature.
    payment = _load(PAYMENT_SAMPLES[0])
    assert resign_stale_webhook(
        copy.deepcopy(payment), {**secrets, "PaymentWebhookSecret": "whsec_other"}, now=now
    ) == (payment, None)
    # Several local secrets (a rotation): the one that made the signature signs again.
    resigned, note = resign_stale_webhook(
        copy.deepcopy(payment), {**secrets, "PaymentWebhookSecret": f"whsec_other,{DEFAULT_WEBHOOK_SECRET}"}, now=now
    )
    assert note is not None
    assert resigned["headers"]["stripe-signature"] == sign(_body(payment), DEFAULT_WEBHOOK_SECRET, now)

    for not_a_signed_webhook in (
        {},
        {"Records": []},
        _load("catalog/get-product.json"),
        {**carrier, "headers": {"content-type": "application/json"}},
    ):
        assert resign_stale_webhook(copy.deepcopy(not_a_signed_webhook), secrets, now=now) == (
            not_a_signed_webhook,
            None,
        )


# ---------------------------------------------------------------- the documented command line


@pytest.mark.slow("process")
def test_make_invoke_with_the_carrier_sample_answers_200() -> None:
    """`python -m local_cloud invoke FulfilmentFunction -e events/fulfilment/carrier-webhook-in-transit.json`, as
    `make invoke` runs it: a fresh local cloud with the demo data, the response alone on stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_", "PAYMENT_WEBHOOK_SECRET"))}
    env.update({"PYTHONPATH": f"{ROOT / 'layers' / 'storefront'}{os.pathsep}{ROOT}", "PYTHONDONTWRITEBYTECODE": "1"})
    run = subprocess.run(
        [sys.executable, "-m", "local_cloud", "invoke", "FulfilmentFunction", "-e", f"events/{CARRIER_SAMPLE}"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, f"exit {run.returncode}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    response = json.loads(run.stdout)
    assert response["statusCode"] == 200, response
    notes = _notes(run.stderr)
    assert len(notes) == 1 and "carrier-signature" in notes[0], run.stderr


@pytest.mark.slow("process")
def test_make_invoke_prints_only_json_and_decodes_bodies_on_request() -> None:
    """`make invoke ... | jq .` works: stdout is the function's result alone (setup and logs go to stderr), with
    DECODE_BODY=1 the HTTP body parsed; a REPORT line on stderr; a missing EVENT is a usage error, not a traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_", "PAYMENT_WEBHOOK_SECRET"))}
    decoded = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "invoke",
            "FUNCTION=CatalogFunction",
            "EVENT=events/catalog/get-product.json",
            "DECODE_BODY=1",
        ],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert decoded.returncode == 0, decoded.stderr
    product = json.loads(decoded.stdout)
    assert product["id"] == "linen-shirt" and product["variants"]
    report = [line for line in decoded.stderr.splitlines() if line.startswith("REPORT RequestId: ")]
    assert len(report) == 1 and "\tDuration: " in report[0] and "\tMemory Size: 1024 MB" in report[0], decoded.stderr

    usage = subprocess.run(
        ["make", "--no-print-directory", "invoke", "FUNCTION=CatalogFunction"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert usage.returncode == 2
    assert usage.stdout == "" and "usage: make invoke FUNCTION=" in usage.stderr and "Traceback" not in usage.stderr
