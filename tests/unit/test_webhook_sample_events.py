"""events/payment_webhook/ and events/fulfilment/: the webhook samples carry genuine signatures over their exact
bodies, made with the local secrets. Replayed as they are now they are stale (400 invalid_signature, as they
should be; `python -m local_cloud invoke` re-signs them, tests/integration/test_invoke_samples.py); at their own
timestamp they verify, so editing a body without re-signing it is caught here."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from pydantic import BaseModel
from storefront.fulfilment.models import TrackingEvent
from storefront.payments.models import PaymentIntentEvent
from storefront.webhooks.signatures import InvalidSignature, verify

from local_cloud.cloud import DEFAULT_WEBHOOK_SECRET, LOCAL_CARRIER_WEBHOOK_SECRET
from tests.samples import sample_events

# (sample, signature header, the local secret that signs it, the event model its body is)
SAMPLES: list[tuple[Path, str, str, type[BaseModel]]] = [
    *(
        (p, "stripe-signature", DEFAULT_WEBHOOK_SECRET, PaymentIntentEvent)
        for p in sample_events("payment_webhook/webhook-*.json")
    ),
    *(
        (p, "carrier-signature", LOCAL_CARRIER_WEBHOOK_SECRET, TrackingEvent)
        for p in sample_events("fulfilment/carrier-webhook-*.json")
    ),
]


@pytest.mark.parametrize(("path", "header_name", "secret", "model"), SAMPLES, ids=lambda v: getattr(v, "name", ""))
def test_sample_webhook_is_signed_over_its_exact_body(
    path: Path, header_name: str, secret: str, model: type[BaseModel]
) -> None:
    event = json.loads(path.read_text())
    body = base64.b64decode(event["body"]) if event["isBase64Encoded"] else event["body"].encode("utf-8")
    header = event["headers"][header_name]
    timestamp = int(header.split(",")[0].removeprefix("t="))
    assert verify(body, header, [secret], now=timestamp) == timestamp
    with pytest.raises(InvalidSignature):
        verify(body, header, [secret])  # stale today
    assert int(event["headers"]["content-length"]) == len(body)
    model.model_validate_json(body)


def test_there_are_webhook_samples_for_payments_and_carriers() -> None:
    assert {path.parent.name for path, *_ in SAMPLES} == {"payment_webhook", "fulfilment"}
