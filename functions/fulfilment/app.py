"""Fulfilment function: the fulfilment queue's consumer, and POST /webhooks/carriers/{carrier}.

One function, two kinds of event: SQS with a batch of paid orders to ship (partial batch failures:
a failing message is retried, then dead-lettered, without holding back the good ones of its batch);
API Gateway with the carrier's signed tracking updates.
"""

from typing import Annotated, Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from fastapi import Header, Path, Request
from storefront.config import FulfilmentSettings
from storefront.fulfilment.carriers import HttpCarrier
from storefront.fulfilment.models import FulfilmentRequest
from storefront.fulfilment.service import FulfilmentService
from storefront.http import create_app, problem_responses
from storefront.observability import asgi, lambda_handler
from storefront.orders.repository import OrderRepository
from storefront.secrets import get_secret
from storefront.webhooks import WebhookReceipt
from storefront.webhooks.signatures import parse_secrets

settings = FulfilmentSettings.from_env()
logger = Logger()
# Three attempts of at most 5 s each (HttpCarrier's defaults); after that the message goes back to the queue
# and is retried with the same idempotency key, so never a second parcel.
carrier = HttpCarrier(
    settings.carrier_name, settings.carrier_api_base, lambda: get_secret(settings.carrier_api_key_secret_id)
)
service = FulfilmentService(
    OrderRepository(boto3.client("dynamodb"), settings.orders_table),
    carrier,
    webhook_secrets=lambda: parse_secrets(get_secret(settings.carrier_webhook_secret_id)),
)
processor = BatchProcessor(event_type=EventType.SQS)
# The time one message may need: the slowest carrier call and a few table reads and writes. The template's
# Timeout fits a whole batch of them (tests/integration/test_template.py checks).
SECONDS_PER_MESSAGE = carrier.longest_call_seconds + 2

app = create_app("Storefront fulfilment", "Carrier tracking webhooks.")

RAW_EVENT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "A shipment.updated event, verified byte for byte against Carrier-Signature",
                }
            }
        },
    }
}


@app.post(
    "/webhooks/carriers/{carrier}",
    response_model=WebhookReceipt,
    openapi_extra=RAW_EVENT_BODY,
    responses=problem_responses(400, 404, 409, 413, 500),
)
async def receive_tracking_update(
    request: Request,
    carrier: Annotated[str, Path(description="the carrier's name (CarrierName in the template; local locally)")],
    carrier_signature: Annotated[str | None, Header(description="t=<unix seconds>,v1=<hex HMAC-SHA256>")] = None,
) -> WebhookReceipt:
    # The signature covers the raw bytes exactly as sent: verify those, never a parsed model of them.
    service.receive_tracking_webhook(carrier, await request.body(), carrier_signature)
    return WebhookReceipt()


class NotEnoughTimeLeft(Exception):
    """Raised instead of starting a message that might not finish before the function's timeout."""


def fulfil(record: SQSRecord, lambda_context: Any) -> None:
    receive_count = record.attributes.approximate_receive_count
    # A timeout would fail the whole batch, the messages already shipped included: a message that might not
    # finish in the time left goes back to the queue untried (and so do the ones after it).
    if lambda_context.get_remaining_time_in_millis() < SECONDS_PER_MESSAGE * 1000:
        raise NotEnoughTimeLeft(f"{lambda_context.get_remaining_time_in_millis()} ms left")
    order_id = None
    try:
        order_id = FulfilmentRequest.model_validate_json(record.body).order_id  # malformed: a poison message
        outcome = service.fulfil(order_id)
    except Exception:
        # Why a message is retried, and in the end dead-lettered, is in the log (the DLQ alarm points here).
        logger.exception(
            "fulfilment failed",
            extra={"order_id": order_id, "message_id": record.message_id, "receive_count": receive_count},
        )
        raise
    logger.info("fulfilment", extra={"order_id": order_id, "outcome": outcome, "receive_count": receive_count})


http = asgi(app)


def route(event: Any, context: LambdaContext) -> Any:
    if isinstance(event, dict) and "Records" in event:
        return process_partial_response(event=event, record_handler=fulfil, processor=processor, context=context)
    return http(event, context)


handler = lambda_handler(route, logger, correlation_id_path="requestContext.requestId")
