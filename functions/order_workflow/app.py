"""Order workflow steps: the status moves Step Functions makes (rejected, paid, payment_failed, expired,
cancelled), and handing an order to the reconciler when a step failed for good (needs_repair). A plain handler:
its events come from the state machine, never from HTTP."""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field
from storefront.config import OrderWorkflowSettings
from storefront.limits.repository import ClientHoldRepository
from storefront.observability import lambda_handler
from storefront.orders.models import OrderStatus, Reason
from storefront.orders.repository import OrderRepository
from storefront.orders.service import OrderSteps

settings = OrderWorkflowSettings.from_env()
logger = Logger()
dynamodb = boto3.client("dynamodb")
steps = OrderSteps(
    OrderRepository(dynamodb, settings.orders_table),
    ClientHoldRepository(dynamodb, settings.orders_table),
    now=lambda: datetime.now(UTC),
)

MOVES = {
    "mark_rejected": OrderStatus.REJECTED,
    "mark_paid": OrderStatus.PAID,
    "mark_payment_failed": OrderStatus.PAYMENT_FAILED,
    "mark_expired": OrderStatus.EXPIRED,
    "mark_cancelled": OrderStatus.CANCELLED,
}


class Step(BaseModel):
    action: Literal["mark_rejected", "mark_paid", "mark_payment_failed", "mark_expired", "mark_cancelled"]
    order_id: Annotated[str, Field(min_length=1, max_length=64)]
    reason: Reason | None = None


class Repair(BaseModel):
    action: Literal["needs_repair"]
    order_id: Annotated[str, Field(min_length=1, max_length=64)]
    step: Literal["commit", "release", "status", "enqueue"]
    error: Annotated[str, Field(max_length=32768)]


def run_step(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("action") == "needs_repair":
        repair = Repair.model_validate(event)
        logger.error(
            "workflow step failed for good: the reconciler repairs it",
            extra={"order_id": repair.order_id, "step": repair.step, "error": repair.error},
        )
        return steps.needs_repair(repair.order_id, repair.step, repair.error)
    step = Step.model_validate(event)
    result = steps.move(step.order_id, MOVES[step.action], step.reason)
    logger.info("order step", extra={"order_id": step.order_id, "action": step.action, **result})
    return result


handler = lambda_handler(run_step, logger, correlation_id_path="order_id")
