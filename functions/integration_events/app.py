"""Integration events function: the orders' and stock levels' DynamoDB streams in, EventBridge events out.

Records are published in stream order. At the first failure the batch stops and reports that record, so
Lambda retries from there and nothing after it is published ahead of it (Powertools' BatchProcessor would
carry on with the later records: fine for a queue, wrong for an ordered stream).
"""

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from storefront.config import IntegrationEventsSettings
from storefront.integration_events import EventBridgePublisher, events_for
from storefront.observability import lambda_handler

settings = IntegrationEventsSettings.from_env()
logger = Logger()
publisher = EventBridgePublisher(boto3.client("events"), settings.event_bus_name)


def publish(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    for record in event["Records"]:
        try:
            events = events_for(record)
            publisher.publish(events)
        except Exception:
            logger.exception(
                "integration events not published; the stream retries from this record",
                extra={"sequence_number": record["dynamodb"]["SequenceNumber"]},
            )
            return {"batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]}
        for published in events:
            logger.info("integration event", extra={"type": published.type, "event_id": published.detail["event_id"]})
    return {"batchItemFailures": []}


handler = lambda_handler(publish, logger)
