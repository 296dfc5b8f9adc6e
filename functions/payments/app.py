"""Payments function: POST /webhooks/payments/{provider}, and the order workflow's payment tasks.

One function, two kinds of event: Step Functions invokes it with {"action": ...} (CreatePayment,
WaitForPayment); API Gateway with an HTTP request (the provider's webhook).
"""

from typing import Annotated, Any

import boto3
from aws_lambda_powertools import Logger
from fastapi import Header, Path, Request
from pydantic import BaseModel, ConfigDict

from storefront.config import PaymentsSettings
from storefront.http import create_app, problem_responses
from storefront.observability import asgi, lambda_handler
from storefront.orders.repository import OrderRepository
from storefront.webhooks import WebhookReceipt
from storefront.payments.providers import StepFunctionsWorkflow, StripeProvider
from storefront.payments.repository import ProcessedEvents
from storefront.payments.service import PaymentsService
from storefront.webhooks.signatures import parse_secrets
from storefront.secrets import get_secret

settings = PaymentsSettings.from_env()
logger = Logger()
dynamodb = boto3.client("dynamodb")
stepfunctions = boto3.client("stepfunctions")
service = PaymentsService(
    OrderRepository(dynamodb, settings.orders_table),
    ProcessedEvents(dynamodb, settings.orders_table, settings.webhook_event_ttl_days),
    # "fake" is the local cloud's Stripe emulator: same adapter, another base URL.
    # Two attempts of 4 s fit the function's 10 s timeout; longer outages are the workflow's to retry
    # (PaymentProviderUnavailable), with the same idempotency key, so never a second PaymentIntent.
    StripeProvider(settings.payment_api_base, lambda: get_secret(settings.payment_api_key_secret_id),
                   name=settings.payment_provider, timeout=4.0, max_retries=1, backoff=0.5),
    StepFunctionsWorkflow(stepfunctions),
    webhook_secrets=lambda: parse_secrets(get_secret(settings.payment_webhook_secret_id)),
)

app = create_app("Storefront payments", "Payment provider webhooks.")


RAW_EVENT_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "description": "A Stripe-shaped event, verified byte for byte against Stripe-Signature"}}}}}


@app.post("/webhooks/payments/{provider}", response_model=WebhookReceipt, openapi_extra=RAW_EVENT_BODY,
          responses=problem_responses(400, 404, 413, 500))
async def receive_webhook(
    request: Request,
    provider: Annotated[str, Path(description="stripe, or fake (the local cloud's provider)")],
    # Not constrained here: a missing or malformed signature is a 400 invalid_signature, not a 422.
    stripe_signature: Annotated[str | None, Header(description="t=<unix seconds>,v1=<hex HMAC-SHA256>")] = None,
) -> WebhookReceipt:
    # The signature covers the raw bytes exactly as sent (Mangum has undone API Gateway's base64):
    # read them, never a parsed model of them. Blocking calls are fine here: one request per invocation.
    service.receive_webhook(provider, await request.body(), stripe_signature)
    return WebhookReceipt()


# ---------------------------------------------------------------- Step Functions tasks


class CreatePaymentTask(BaseModel):
    model_config = ConfigDict(extra="forbid")
    order_id: str


class AwaitPaymentTask(BaseModel):
    model_config = ConfigDict(extra="forbid")
    order_id: str
    task_token: str


def run_task(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    action, arguments = event["action"], {k: v for k, v in event.items() if k != "action"}
    if action == "create_payment":
        payment = service.create_payment(CreatePaymentTask.model_validate(arguments).order_id)
        return {"payment_id": payment.payment_id}
    if action == "await_payment":
        task = AwaitPaymentTask.model_validate(arguments)
        service.await_payment(task.order_id, task.task_token)
        return {"registered": True}
    raise ValueError(f"unknown action {action!r}")


http = asgi(app)


def route(event: Any, context: Any) -> Any:
    if isinstance(event, dict) and "action" in event:
        return run_task(event, context)
    return http(event, context)


# Tasks are correlated by their order id (also the workflow's execution name), webhooks by the request id.
handler = lambda_handler(route, logger, correlation_id_path="order_id || requestContext.requestId")
