"""Notifications function: the notifications queue's consumer. Customer emails on SES, one per integration event.

The queue carries two kinds of EventBridge event: the shop's integration events (NotificationsRule: order paid,
declined, failed, expired, shipped, delivered, refunded, cancelled), each of which sends its email once, and
SES's bounce and complaint events (EmailFeedbackRule), which put addresses on the suppression list. Partial batch
failures: a failing message (SES throttled or down) goes back to the queue, is tried again after the visibility
timeout, and ends in the DLQ, without holding back the rest of its batch.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from storefront.config import NotificationsSettings
from storefront.notifications.content import EmailContent
from storefront.notifications.models import OrderEventDetail, SesFeedback
from storefront.notifications.repository import EmailRecords, MailableOrders, SuppressionList
from storefront.notifications.sender import SesSender
from storefront.notifications.service import NotificationService
from storefront.observability import lambda_handler
from storefront.shop import load_shop_config

settings = NotificationsSettings.from_env()
logger = Logger()
shop = load_shop_config()
dynamodb = boto3.client("dynamodb")
# One retry inside the call; a longer throttle or outage is the queue's to wait out (visibility timeout).
SES_CONNECT_SECONDS, SES_READ_SECONDS, SES_ATTEMPTS = 2, 5, 2
ses = boto3.client(
    "sesv2",
    config=Config(
        connect_timeout=SES_CONNECT_SECONDS,
        read_timeout=SES_READ_SECONDS,
        retries={"mode": "standard", "max_attempts": SES_ATTEMPTS},
    ),
)
service = NotificationService(
    EmailRecords(dynamodb, settings.notifications_table),
    MailableOrders(dynamodb, settings.orders_table),
    SuppressionList(dynamodb, settings.notifications_table),
    EmailContent(shop),
    SesSender(
        ses,
        from_address=settings.from_address,
        from_name=shop.name,
        reply_to=shop.support.email,
        configuration_set=settings.configuration_set,
        min_interval_seconds=settings.senders / settings.send_rate,
    ),
    lock_seconds=settings.claim_lock_seconds,
    ttl_seconds=settings.record_ttl_days * 86_400,
)
processor = BatchProcessor(event_type=EventType.SQS)
# The longest one message may take: SES's attempts at their timeouts, the pause between sends, a few reads and
# writes. A message that might not finish in the time left is not started (a timeout would fail the whole batch).
SECONDS_PER_MESSAGE = (
    SES_ATTEMPTS * (SES_CONNECT_SECONDS + SES_READ_SECONDS) + settings.senders / settings.send_rate + 2
)


class NotEnoughTimeLeft(Exception):
    """Raised instead of starting a message that might not finish before the function's timeout."""


def handle(record: SQSRecord, lambda_context: Any) -> None:
    if lambda_context.get_remaining_time_in_millis() < SECONDS_PER_MESSAGE * 1000:
        raise NotEnoughTimeLeft(f"{lambda_context.get_remaining_time_in_millis()} ms left")
    event: dict[str, Any] = {}
    try:
        event = json.loads(record.body)  # an EventBridge event, as the rules put it on the queue
        if event.get("source") == "aws.ses":
            service.record_feedback(SesFeedback.model_validate(event["detail"]))
        else:
            service.notify(OrderEventDetail.model_validate(event["detail"]))
    except Exception:
        # Why a message is retried, and in the end dead-lettered, is here (the DLQ alarm points at this log).
        logger.exception(
            "notification failed",
            extra={
                "message_id": record.message_id,
                "detail_type": event.get("detail-type"),
                "receive_count": record.attributes.approximate_receive_count,
            },
        )
        raise


def consume(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)


handler = lambda_handler(consume, logger)
