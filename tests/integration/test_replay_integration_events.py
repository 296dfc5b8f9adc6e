"""ops/replay_integration_events.py on the local cloud: integration events whose stream records ended in
IntegrationEventsDeadLetterQueue are published once the cause is fixed, exactly once, and only then is the
message deleted; a dry run, a function that still fails and records gone from the stream all keep it."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from storefront.integration_events import IntegrationEvent, PublishFailed
from storefront.inventory.repository import InventoryRepository
from storefront.orders.models import HistoryEntry, OrderStatus, StoredOrder
from storefront.orders.repository import OrderRepository

from local_cloud.cloud import LAMBDA_ROLE, LocalCloud
from local_cloud.demo_data import DEMO_PAID_ORDER_ID
from local_cloud.functions import StreamPoller
from ops.replay_integration_events import main, replay
from tests.tool_output import tool_stdout
from tests.waiting import wait_until

pytestmark = pytest.mark.slow("waits")

FUNCTION = "IntegrationEventsFunction"


def statuses(output: str) -> list[str]:
    """The status column of the tool's per-message lines."""
    return [
        status
        for line in output.splitlines()
        for status in ("replayed", "would replay", "expired", "failed")
        if line.startswith(status + " ")
    ]


class Outage:
    """EventBridge refuses the events of the orders and SKUs in `refused`, so their stream records end in the
    dead-letter queue. Only this test's own: the session's cloud serves other tests' records meanwhile."""

    def __init__(self, cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> None:
        self.cloud = cloud
        self.refused: set[str] = set()
        self.sqs = cloud.client("sqs")
        self.dlq_url = cloud.physical_id("IntegrationEventsDeadLetterQueue")
        self.function_name = cloud.physical_id(FUNCTION)
        app = cloud.functions[FUNCTION].module
        real_publish = app.publisher.publish

        def publish(events: list[IntegrationEvent]) -> None:
            if any(self._concerns(e) for e in events):
                raise PublishFailed("EventBridge refused 1 of 1 events: ['InternalFailure']")
            real_publish(events)

        monkeypatch.setattr(app.publisher, "publish", publish)
        # The template retries a record 50 times (10 s locally); 2 is enough to reach the dead-letter queue.
        for poller in cloud.pollers:
            if isinstance(poller, StreamPoller) and poller._function is cloud.functions[FUNCTION]:
                monkeypatch.setattr(poller, "_max_retries", 2)

    def _concerns(self, event: IntegrationEvent) -> bool:
        return bool({event.detail.get("order", {}).get("id"), event.detail.get("sku")} & self.refused)

    def place_order(self) -> str:
        """A new order written as checkout writes it: its stream record means order.placed."""
        orders = OrderRepository(self.cloud.client("dynamodb"), self.cloud.physical_id("OrdersTable"))
        template = orders.get(DEMO_PAID_ORDER_ID)
        assert template is not None
        order_id, now = secrets.token_urlsafe(24), datetime.now(UTC)
        self.refused.add(order_id)
        orders.create(
            StoredOrder.model_validate(
                {
                    **template.model_dump(),
                    "id": order_id,
                    "cart_id": uuid.uuid4().hex,
                    "status": OrderStatus.PENDING,
                    "created_at": now,
                    "updated_at": now,
                    "payment": None,
                    "fulfilment": None,
                    "history": [HistoryEntry(status=OrderStatus.PENDING, at=now)],
                }
            )
        )
        return order_id

    def run_low_on_stock(self) -> str:
        """A SKU whose reservation takes it below its threshold: its level's stream record means stock.low."""
        sku = f"REPLAY-{uuid.uuid4().hex[:8].upper()}"
        self.refused.add(sku)
        InventoryRepository(self.cloud.client("dynamodb"), self.cloud.physical_id("InventoryTable")).put_level(
            sku, 8, low_stock_threshold=5
        )
        result = self.cloud.functions["StockFunction"].invoke(
            {"action": "reserve", "order_id": secrets.token_urlsafe(24), "lines": [{"sku": sku, "quantity": 4}]}
        )
        assert result["outcome"] == "reserved", result
        return sku

    def fix(self) -> None:
        self.refused.clear()

    def queued(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.dlq_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def visible(self) -> int:
        return int(
            self.sqs.get_queue_attributes(QueueUrl=self.dlq_url, AttributeNames=["ApproximateNumberOfMessages"])[
                "Attributes"
            ]["ApproximateNumberOfMessages"]
        )

    def wait_for_dead_letters(self, count: int) -> None:
        wait_until(lambda: self.queued() >= count, f"{count} messages in the dead-letter queue")
        time.sleep(0.5)
        assert self.queued() == count, "only this test's records may fail"

    def events(self, key: str) -> list[str]:
        """The event ids published for an order id or a SKU."""
        return [
            e["detail"]["event_id"]
            for e in self.cloud.integration_events()
            if key in (e["detail"].get("order", {}).get("id"), e["detail"].get("sku"))
        ]

    def args(self, *extra: str) -> list[str]:
        return [
            "--queue-url",
            self.dlq_url,
            "--function-name",
            self.function_name,
            "--endpoint-url",
            self.cloud.endpoint_url,
            "--region",
            self.cloud.region,
            *extra,
        ]


@pytest.fixture
def outage(cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> Iterator[Outage]:
    broken = Outage(cloud, monkeypatch)
    assert broken.queued() == 0, "IntegrationEventsDeadLetterQueue is not empty before the test"
    yield broken
    broken.fix()  # monkeypatch puts the publisher and the retries back after this
    # Whatever a failed test left there (not PurgeQueue: once a minute only).
    while messages := broken.sqs.receive_message(
        QueueUrl=broken.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=30
    ).get("Messages", []):
        for message in messages:
            broken.sqs.delete_message(QueueUrl=broken.dlq_url, ReceiptHandle=message["ReceiptHandle"])


def take_dead_letters(outage: Outage, count: int) -> list[dict[str, Any]]:
    """Remove the queue's `count` messages; their failure records."""
    bodies: list[dict[str, Any]] = []
    while len(bodies) < count:
        for message in outage.sqs.receive_message(
            QueueUrl=outage.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", []):
            bodies.append(json.loads(message["Body"]))
            outage.sqs.delete_message(QueueUrl=outage.dlq_url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def send_as_lambda_does(outage: Outage, record: dict[str, Any], **batch: Any) -> None:
    """A failure record as Lambda writes it on AWS: with the shard's id, the arrival times, requestContext and
    responseContext (the local stand-in leaves some of that out)."""
    info = {**record["DDBStreamBatchInfo"], **batch}
    streams = outage.cloud.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=info["streamArn"])["StreamDescription"]["Shards"][0]
    now = datetime.now(UTC).isoformat()
    outage.sqs.send_message(
        QueueUrl=outage.dlq_url,
        MessageBody=json.dumps(
            {
                "requestContext": {
                    "requestId": str(uuid.uuid4()),
                    "functionArn": record["requestContext"]["functionArn"],
                    "condition": "RetryAttemptsExhausted",
                    "approximateInvokeCount": 3,
                },
                "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": ""},
                "version": "1.0",
                "timestamp": now,
                "DDBStreamBatchInfo": {
                    **info,
                    "shardId": shard["ShardId"],
                    "approximateArrivalOfFirstRecord": now,
                    "approximateArrivalOfLastRecord": now,
                },
            }
        ),
    )


# ------------------------------------------------------------------ the recovery


@pytest.mark.parametrize("sent_by", ["local cloud", "lambda"])
def test_replay_publishes_the_missing_events_once_and_empties_the_queue(
    outage: Outage, sent_by: str, capsys: pytest.CaptureFixture[str]
) -> None:
    order_id, sku = outage.place_order(), outage.run_low_on_stock()
    outage.wait_for_dead_letters(2)  # one record of each stream
    assert outage.events(order_id) == [] and outage.events(sku) == []
    if sent_by == "lambda":
        for record in take_dead_letters(outage, 2):
            send_as_lambda_does(outage, record)

    outage.fix()
    assert main(outage.args()) == 0
    output = tool_stdout(capsys)
    assert statuses(output) == ["replayed", "replayed"], output
    assert output.rstrip().endswith("2 messages: 2 replayed"), output
    assert outage.events(order_id) == [f"order.placed:{order_id}"]
    [stock_low] = outage.events(sku)
    assert outage.queued() == 0

    # Again: nothing left to do, nothing published twice.
    assert main(outage.args()) == 0
    output = tool_stdout(capsys)
    assert statuses(output) == [] and output.rstrip().endswith("0 messages: nothing to replay"), output
    time.sleep(0.5)
    assert outage.events(order_id) == [f"order.placed:{order_id}"] and outage.events(sku) == [stock_low]


def test_a_batch_of_several_records_is_read_to_its_end_sequence_number(
    outage: Outage, capsys: pytest.CaptureFixture[str]
) -> None:
    """Lambda dead-letters whole batches; the local stand-in one record at a time: make one batch of two."""
    first, second = outage.place_order(), outage.place_order()
    outage.wait_for_dead_letters(2)
    records = sorted(take_dead_letters(outage, 2), key=lambda r: int(r["DDBStreamBatchInfo"]["startSequenceNumber"]))
    start, end = (r["DDBStreamBatchInfo"]["startSequenceNumber"] for r in records)
    streams = outage.cloud.client("dynamodbstreams")  # how many records lie between (the second's cart claim, ...)
    shard = streams.describe_stream(StreamArn=records[0]["DDBStreamBatchInfo"]["streamArn"])["StreamDescription"]
    iterator = streams.get_shard_iterator(
        StreamArn=shard["StreamArn"],
        ShardId=shard["Shards"][0]["ShardId"],
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        SequenceNumber=start,
    )["ShardIterator"]
    batch_size = sum(
        int(r["dynamodb"]["SequenceNumber"]) <= int(end)
        for r in streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
    )
    assert batch_size >= 3
    send_as_lambda_does(outage, records[0], endSequenceNumber=end, batchSize=batch_size)

    outage.fix()
    assert main(outage.args()) == 0
    assert f"{batch_size} records republished" in tool_stdout(capsys)
    assert outage.events(first) == [f"order.placed:{first}"] and outage.events(second) == [f"order.placed:{second}"]
    assert outage.queued() == 0


def test_dry_run_lists_the_batches_and_changes_nothing(outage: Outage, capsys: pytest.CaptureFixture[str]) -> None:
    order_id, sku = outage.place_order(), outage.run_low_on_stock()
    outage.wait_for_dead_letters(2)
    outage.fix()

    assert main(outage.args("--dry-run")) == 0
    output = tool_stdout(capsys)
    assert statuses(output) == ["would replay", "would replay"], output
    assert "2 messages: 2 would replay (dry run" in output
    time.sleep(0.5)
    assert outage.events(order_id) == [] and outage.events(sku) == []
    assert outage.visible() == 2  # kept, and visible again for the real run

    assert main(outage.args("--max-messages", "1")) == 0  # one at a time, if the operator wants
    assert tool_stdout(capsys).rstrip().endswith("1 message: 1 replayed")
    assert outage.visible() == 1


def test_a_function_that_still_fails_keeps_the_message(outage: Outage, capsys: pytest.CaptureFixture[str]) -> None:
    order_id = outage.place_order()
    outage.wait_for_dead_letters(1)

    assert main(outage.args()) == 1  # the cause is not fixed yet
    output = tool_stdout(capsys)
    assert statuses(output) == ["failed"] and "could not publish record" in output, output
    assert output.rstrip().endswith("1 message: 1 failed")
    assert outage.events(order_id) == []
    assert outage.visible() == 1  # kept, and at once visible again: the next run need not wait

    outage.fix()
    assert main(outage.args()) == 0
    assert outage.events(order_id) == [f"order.placed:{order_id}"]
    assert outage.queued() == 0


class GoneStream:
    """The local cloud's stream as DynamoDB Streams answers after the 24 hours (moto never trims), or with
    an iterator older than its 15 minutes."""

    def __init__(self, streams: Any, how: str) -> None:
        self._streams = streams
        self._how = how

    def __getattr__(self, name: str) -> Any:
        return getattr(self._streams, name)

    def get_shard_iterator(self, **request: Any) -> dict[str, Any]:
        if self._how in ("TrimmedDataAccessException", "ResourceNotFoundException"):
            raise ClientError({"Error": {"Code": self._how, "Message": "gone"}}, "GetShardIterator")
        return self._streams.get_shard_iterator(**request)

    def get_records(self, **request: Any) -> dict[str, Any]:
        if self._how == "ExpiredIteratorException":
            raise ClientError({"Error": {"Code": self._how, "Message": "expired"}}, "GetRecords")
        page = self._streams.get_records(**request)
        return {**page, "Records": page["Records"][1:]}  # "records missing": the batch's first is gone


@pytest.mark.parametrize("how", ["TrimmedDataAccessException", "ResourceNotFoundException", "records missing"])
def test_records_gone_from_the_stream_keep_the_message_and_say_so(
    outage: Outage, how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    order_id = outage.place_order()
    outage.wait_for_dead_letters(1)
    outage.fix()
    cloud = outage.cloud

    code = replay(
        outage.sqs,
        GoneStream(cloud.client("dynamodbstreams"), how),
        cloud.client("lambda"),
        outage.dlq_url,
        outage.function_name,
    )
    output = tool_stdout(capsys)
    assert code == 1
    assert statuses(output) == ["expired"], output
    assert "24 hours" in output and "rebuild these events from the table" in output
    assert output.rstrip().endswith("1 message: 1 expired"), output
    assert outage.events(order_id) == []
    assert outage.visible() == 1


def test_an_expired_iterator_is_not_expired_records(outage: Outage, capsys: pytest.CaptureFixture[str]) -> None:
    """A shard iterator lasts 15 minutes, records 24 hours: ExpiredIteratorException means "run again"."""
    outage.place_order()
    outage.wait_for_dead_letters(1)
    outage.fix()
    cloud = outage.cloud

    code = replay(
        outage.sqs,
        GoneStream(cloud.client("dynamodbstreams"), "ExpiredIteratorException"),
        cloud.client("lambda"),
        outage.dlq_url,
        outage.function_name,
    )
    output = tool_stdout(capsys)
    assert code == 1
    assert statuses(output) == ["failed"] and "ExpiredIteratorException" in output and "run again" in output, output
    assert outage.visible() == 1


def test_the_stack_names_the_queue_and_the_function(cloud: LocalCloud, capsys: pytest.CaptureFixture[str]) -> None:
    """--stack finds both by their logical ids with DescribeStackResource (moto's CloudFormation; the local
    cloud itself creates no stack, hence --queue-url and --function-name above)."""
    cloudformation, stack = cloud.client("cloudformation"), f"replay-{uuid.uuid4().hex[:8]}"
    cloudformation.create_stack(
        StackName=stack,
        TemplateBody=json.dumps(
            {
                "Resources": {
                    "IntegrationEventsDeadLetterQueue": {"Type": "AWS::SQS::Queue"},
                    FUNCTION: {
                        "Type": "AWS::Lambda::Function",
                        "Properties": {
                            "Runtime": "python3.13",
                            "Handler": "index.handler",
                            "Code": {"ZipFile": "def handler(e, c): pass"},
                            "Role": LAMBDA_ROLE,
                        },
                    },
                }
            }
        ),
    )
    try:
        resources = {
            r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in cloudformation.list_stack_resources(StackName=stack)["StackResourceSummaries"]
        }
        assert main(["--stack", stack, "--endpoint-url", cloud.endpoint_url, "--region", cloud.region]) == 0
        output = tool_stdout(capsys)
        assert f"queue {resources['IntegrationEventsDeadLetterQueue']}\n" in output
        assert f"function {resources[FUNCTION]}\n" in output
        assert output.rstrip().endswith("0 messages: nothing to replay")

        assert main(["--stack", "no-such-stack", "--endpoint-url", cloud.endpoint_url, "--region", cloud.region]) == 1
    finally:
        cloudformation.delete_stack(StackName=stack)
