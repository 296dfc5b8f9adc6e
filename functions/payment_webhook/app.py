"""Payment webhook function: POST /webhooks/payments/{provider}, the provider's signed events.

Public, so it holds as little as it can: the webhook secret, not the provider's API key, and it does not import
the provider's SDK. What needs the provider (a late payment's refund) goes to the payment tasks function.
"""

from typing import Annotated

import boto3
from aws_lambda_powertools import Logger
from fastapi import Header, Path, Request
from storefront.aws import LazyClient
from storefront.config import PaymentWebhookSettings
from storefront.http import create_app, problem_responses
from storefront.observability import http_handler
from storefront.orders.repository import OrderRepository
from storefront.payments.providers import RefundHandover, StepFunctionsWorkflow
from storefront.payments.repository import ProcessedEvents
from storefront.payments.webhooks import PaymentWebhooks
from storefront.secrets import get_secret
from storefront.webhooks import WebhookReceipt
from storefront.webhooks.signatures import parse_secrets

settings = PaymentWebhookSettings.from_env()
logger = Logger()
dynamodb = boto3.client("dynamodb")
service = PaymentWebhooks(
    OrderRepository(dynamodb, settings.orders_table),
    ProcessedEvents(dynamodb, settings.orders_table, settings.webhook_event_ttl_days),
    StepFunctionsWorkflow(boto3.client("stepfunctions")),
    webhook_secrets=lambda: parse_secrets(get_secret(settings.payment_webhook_secret_id)),
    provider=settings.payment_provider,
    max_attempts=settings.max_payment_attempts,
    finish_later=RefundHandover(LazyClient("lambda"), settings.payment_tasks_function).finish_later,  # refunds
)

app = create_app("Storefront payment webhooks", "Payment provider webhooks.")

RAW_EVENT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "A Stripe-shaped event, verified byte for byte against Stripe-Signature",
                }
            }
        },
    }
}


@app.post(
    "/webhooks/payments/{provider}",
    response_model=WebhookReceipt,
    openapi_extra=RAW_EVENT_BODY,
    responses=problem_responses(400, 404, 413, 500),
)
async def receive_webhook(
    request: Request,
    provider: Annotated[
        str,
        Path(
            description="the provider the stack is configured for: stripe, or fake (the local "
            "cloud's); any other is 404"
        ),
    ],
    # Not constrained here: a missing or malformed signature is a 400 invalid_signature, not a 422.
    stripe_signature: Annotated[str | None, Header(description="t=<unix seconds>,v1=<hex HMAC-SHA256>")] = None,
) -> WebhookReceipt:
    # The signature covers the raw bytes exactly as sent (Mangum has undone API Gateway's base64):
    # read them, never a parsed model of them. Blocking calls are fine here: one request per invocation.
    service.receive(provider, await request.body(), stripe_signature)
    return WebhookReceipt()


handler = http_handler(app, logger)
