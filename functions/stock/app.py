"""Stock function: every stock movement of an order (reserve, commit, release, return); the only writer of stock.

A plain handler: Step Functions calls it through `lambda:invoke` with the task input as the event,
{"action": "reserve" | "commit" | "release", "order_id": ..., "lines": [{"sku", "quantity"}, ...]},
and gets {"outcome": ...} back (storefront.inventory.service); the payment tasks function (refunds with restock,
cancellations) and the reconciler invoke it the same way, with "return" (and a "return_id") among the actions.
Errors reach the caller by class name: InvalidStockRequest and ReturnNotAllowed (never retry), StockContention
(retry with backoff), ReservationNotHeld (decide).
"""

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.config import Config

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
service = StockService(InventoryRepository(dynamodb, settings.inventory_table))


def move_stock(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = parse_stock_request(event)
    outcome = service.handle(request)
    logger.info("stock movement", extra={"action": request.action, "outcome": outcome.outcome,
                                         "lines": len(request.lines)})
    return outcome.to_payload()


# The order id is the workflow's execution name too: it ties these log lines to the order's other functions.
handler = lambda_handler(move_stock, logger, correlation_id_path="order_id")
