"""Payment tasks function: the order workflow's payment steps, and settling refunds (late payments' too).

A plain handler, invoked by Step Functions (CreatePayment, WaitForPayment, CancelPayment), by the
payment webhook function and the reconciler ({"action": "finish"}). The only function holding the provider's
API key, and the one that imports its SDK. Errors reach the workflow by class name: OrderCancelled,
PaymentProviderUnavailable (retried), PaymentProviderError (not).
"""

from typing import Annotated, Any, Literal

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field
from storefront.aws import LazyClient
from storefront.config import PaymentTasksSettings
from storefront.inventory.stock_function import StockFunctionClient
from storefront.observability import lambda_handler
from storefront.orders.repository import OrderRepository
from storefront.payments.providers import StepFunctionsWorkflow
from storefront.payments.service import PaymentTasks
from storefront.payments.stripe_provider import StripeProvider
from storefront.secrets import get_secret

settings = PaymentTasksSettings.from_env()
logger = Logger()
tasks = PaymentTasks(
    OrderRepository(boto3.client("dynamodb"), settings.orders_table),
    # "fake" is the local cloud's Stripe emulator: same SDK, another base address. Two attempts of 4 s fit the
    # function's timeout; longer outages are the workflow's to retry (PaymentProviderUnavailable), with the same
    # idempotency keys, so never a second PaymentIntent or refund.
    StripeProvider(
        settings.payment_api_base,
        lambda: get_secret(settings.payment_api_key_secret_id),
        name=settings.payment_provider,
        timeout=4.0,
        max_retries=1,
    ),
    StepFunctionsWorkflow(boto3.client("stepfunctions")),
    StockFunctionClient(LazyClient("lambda"), settings.stock_function),  # returns, with refunds only
)

OrderId = Annotated[str, Field(min_length=1, max_length=64)]


class Task(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["create_payment", "cancel_payment", "finish"]
    order_id: OrderId


class AwaitTask(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["await_payment"]
    order_id: OrderId
    task_token: Annotated[str, Field(min_length=1, max_length=2048)]


def run_task(event: dict[str, Any], _context: LambdaContext) -> dict[str, Any]:
    if event.get("action") == "await_payment":
        waiting = AwaitTask.model_validate(event)
        tasks.await_payment(waiting.order_id, waiting.task_token)
        return {"registered": True}
    task = Task.model_validate(event)
    if task.action == "create_payment":
        return {"payment_id": tasks.create_payment(task.order_id).payment_id}
    if task.action == "cancel_payment":
        return {"outcome": tasks.cancel_payment(task.order_id)}
    open_refunds = tasks.finish(task.order_id)
    logger.info("refunds settled", extra={"order_id": task.order_id, "open_refunds": open_refunds})
    return {"open_refunds": open_refunds}


# Tasks are correlated by their order id (also the workflow's execution name).
handler = lambda_handler(run_task, logger, correlation_id_path="order_id")
