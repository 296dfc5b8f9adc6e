"""Stock function: every stock movement (reserve, commit, release, return; an operator's adjust, set_threshold), the
only writer of stock levels.

A plain handler, invoked with the movement as the event: by the order workflow (Step Functions' `lambda:invoke`,
the task input), {"action": "reserve" | "commit" | "release", "order_id": ..., "lines": [{"sku", "quantity"}, ...]};
by the payment tasks function (refunds with restock, cancellations), the order admin function and the reconciler
(Lambda Invoke) with those, or with "return" (and a "return_id"); by the admin function (Lambda Invoke),
{"action": "adjust" | "set_threshold", "sku": ..., "actor": {...}, ...} (storefront.inventory.models). It answers
{"outcome": ...} (storefront.inventory.service). Errors reach the caller by class name: InvalidStockRequest and
ReturnNotAllowed (never retry), StockContention (retry with backoff), ReservationNotHeld (decide).
"""

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from storefront.audit.repository import AuditRepository
from storefront.config import StockSettings
from storefront.inventory.models import parse_stock_request
from storefront.inventory.repository import InventoryRepository
from storefront.inventory.service import StockService
from storefront.observability import lambda_handler

settings = StockSettings.from_env()
logger = Logger()
# DynamoDB refuses a transaction on a contended or throttled item with TransactionCanceledException, which the SDK
# never retries: the repository does (MAX_ATTEMPTS, jittered), then StockContention hands over to the workflow's
# Retry. A whole request throttled or failed (5xx) gets one SDK retry (standard mode, at most 1 s of jitter), not the
# legacy mode's nine (25 s for DynamoDB): the worst invocation, ~7 s, ends inside the 10 s timeout
# (docs/architecture.md, "Inventory").
dynamodb = boto3.client("dynamodb", config=Config(retries={"mode": "standard", "total_max_attempts": 2}))
service = StockService(
    InventoryRepository(dynamodb, settings.inventory_table),
    AuditRepository(dynamodb, settings.audit_table, settings.audit_retention_days),
)


def move_stock(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_stock_request(event)
    outcome = service.handle(request)
    logger.info(
        "stock movement",
        extra={"action": request.action, "outcome": outcome.outcome, "skus": len(getattr(request, "lines", ())) or 1},
    )
    return outcome.to_payload()


# The order id (the workflow's execution name too) or the SKU ties these log lines to the caller's.
handler = lambda_handler(move_stock, logger, correlation_id_path="order_id || sku")
