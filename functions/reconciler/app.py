"""Reconciler function: run by a schedule (template.yaml, ReconcilerFunction's ScheduleV2 event), every sweep of
storefront.reconciler.service once. A plain handler; it moves stock through the stock function and money through
the payment tasks function, so it holds neither the inventory's write rights nor the provider's key."""

import json
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from storefront.config import ReconcilerSettings
from storefront.inventory.repository import InventoryRepository
from storefront.inventory.stock_function import StockFunctionClient
from storefront.observability import lambda_handler
from storefront.orders.repository import OrderRepository
from storefront.orders.workflow import OrderWorkflow
from storefront.reconciler.service import Reconciler

settings = ReconcilerSettings.from_env()
logger = Logger()
dynamodb = boto3.client("dynamodb")
lambda_client = boto3.client("lambda")
sqs = boto3.client("sqs")


class PaymentTasksFunction:
    """The payment tasks function's finish, invoked synchronously: it settles an order's refunds."""

    def finish(self, order_id: str) -> int:
        response = lambda_client.invoke(
            FunctionName=settings.payment_tasks_function,
            Payload=json.dumps({"action": "finish", "order_id": order_id}).encode(),
        )
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            raise RuntimeError(f"finish {order_id}: {payload.get('errorType')}: {payload.get('errorMessage')}")
        return int(payload["open_refunds"])


class FulfilmentQueue:
    def send(self, order_id: str) -> None:
        sqs.send_message(QueueUrl=settings.fulfilment_queue_url, MessageBody=json.dumps({"order_id": order_id}))


reconciler = Reconciler(
    OrderRepository(dynamodb, settings.orders_table),
    InventoryRepository(dynamodb, settings.inventory_table),
    StockFunctionClient(lambda_client, settings.stock_function),
    PaymentTasksFunction(),
    OrderWorkflow(
        boto3.client("stepfunctions"),
        settings.order_workflow_arn,
        settings.payment_timeout_seconds,
        settings.payment_grace_seconds,
    ),
    FulfilmentQueue(),
)


def reconcile(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    fixes = reconciler.run()
    logger.info("reconciled", extra={"fixes": fixes})
    return fixes


handler = lambda_handler(reconcile, logger)
