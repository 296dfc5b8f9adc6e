"""events/payments/: the webhook samples carry genuine Stripe-style signatures over their exact bodies, made
with the local default secret. Replayed now they are stale (400 invalid_signature, as they should be); at
their own timestamp they verify, so editing a body without re-signing it is caught here."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from storefront.payments.models import PaymentIntentEvent
from storefront.payments.signatures import InvalidSignature, verify

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "events" / "payments").glob("webhook-*.json"))
LOCAL_SECRET = "whsec_local_dev_secret"


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_sample_webhook_is_signed_over_its_exact_body(path: Path) -> None:
    event = json.loads(path.read_text())
    body = base64.b64decode(event["body"]) if event["isBase64Encoded"] else event["body"].encode("utf-8")
    header = event["headers"]["stripe-signature"]
    timestamp = int(header.split(",")[0].removeprefix("t="))
    assert verify(body, header, [LOCAL_SECRET], now=timestamp) == timestamp
    with pytest.raises(InvalidSignature):
        verify(body, header, [LOCAL_SECRET])  # stale today
    assert int(event["headers"]["content-length"]) == len(body)
    assert PaymentIntentEvent.model_validate_json(body).intent.order_id


def test_there_are_webhook_samples() -> None:
    assert SAMPLES
