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
from fastapi import Header, Path, Request

from storefront.config import FulfilmentSettings
from storefront.fulfilment.carriers import HttpCarrier
from storefront.fulfilment.models import FulfilmentRequest
from storefront.fulfilment.service import FulfilmentService
from storefront.http import create_app, problem_responses
from storefront.observability import http_handler
from storefront.orders.repository import OrderRepository
from storefront.secrets import get_secret
from storefront.webhooks import WebhookReceipt
from storefront.webhooks.signatures import parse_secrets

settings = FulfilmentSettings.from_env()
logger = Logger()
service = FulfilmentService(
    OrderRepository(boto3.client("dynamodb"), settings.orders_table),
    # Three attempts of at most 5 s fit the function's 30 s timeout; after that the message goes back to
    # the queue and is retried with the same idempotency key, so never a second parcel.
    HttpCarrier(settings.carrier_name, settings.carrier_api_base, lambda: get_secret(settings.carrier_api_key_secret_id),
                timeout=5.0, max_retries=2, backoff=0.5),
    webhook_secrets=lambda: parse_secrets(get_secret(settings.carrier_webhook_secret_id)),
)
processor = BatchProcessor(event_type=EventType.SQS)

app = create_app("Storefront fulfilment", "Carrier tracking webhooks.")

RAW_EVENT_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "description": "A shipment.updated event, verified byte for byte against Carrier-Signature"}}}}}


@app.post("/webhooks/carriers/{carrier}", response_model=WebhookReceipt, openapi_extra=RAW_EVENT_BODY,
          responses=problem_responses(400, 404, 409, 413, 500))
async def receive_tracking_update(
    request: Request,
    carrier: Annotated[str, Path(description="the carrier's name (CarrierName in the template; local locally)")],
    carrier_signature: Annotated[str | None, Header(description="t=<unix seconds>,v1=<hex HMAC-SHA256>")] = None,
) -> WebhookReceipt:
    # The signature covers the raw bytes exactly as sent: verify those, never a parsed model of them.
    service.receive_tracking_webhook(carrier, await request.body(), carrier_signature)
    return WebhookReceipt()


def fulfil(record: SQSRecord) -> None:
    request = FulfilmentRequest.model_validate_json(record.body)  # a malformed body is a poison message
    logger.append_keys(order_id=request.order_id)
    outcome = service.fulfil(request.order_id)
    logger.info("fulfilment", extra={"outcome": outcome, "receive_count": record.attributes.approximate_receive_count})


@logger.inject_lambda_context
def consume_queue(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=fulfil, processor=processor, context=context)


http = http_handler(app, logger)


def handler(event: Any, context: Any) -> Any:
    if isinstance(event, dict) and "Records" in event:
        return consume_queue(event, context)
    return http(event, context)
