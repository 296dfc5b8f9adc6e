"""The local stand-in for Lambda's DynamoDB stream event source mapping (local_cloud.functions.StreamPoller):
in-order batches, retry from the first failed record, bounded retries, then the on-failure destination."""

from __future__ import annotations

import json
from typing import Any

from local_cloud.functions import FunctionError, StreamPoller

STREAM = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026"


class FakeStreams:
    def __init__(self, count: int) -> None:
        self.records = [{"eventID": str(n), "dynamodb": {"SequenceNumber": str(100 + n)}} for n in range(count)]

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:  # noqa: N803 - boto3's names
        start = int(ShardIterator)
        return {"Records": self.records[start : start + Limit], "NextShardIterator": str(len(self.records))}


class FakeSqs:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_message(self, QueueUrl: str, MessageBody: str) -> None:  # noqa: N803
        self.sent.append(json.loads(MessageBody))


class FlakyFunction:
    """Fails on the records in `fail_on` (reporting the first, or raising) a number of times each."""

    logical_id, arn = "Events", "arn:aws:lambda:us-east-1:123456789012:function:events"

    def __init__(self, fail_on: dict[str, int], raise_instead: bool = False) -> None:
        self.fail_on = dict(fail_on)
        self.raise_instead = raise_instead
        self.processed: list[str] = []

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        for record in event["Records"]:
            sequence = record["dynamodb"]["SequenceNumber"]
            if self.fail_on.get(sequence, 0) > 0:
                self.fail_on[sequence] -= 1
                if self.raise_instead:
                    raise FunctionError(RuntimeError("throttled"))
                return {"batchItemFailures": [{"itemIdentifier": sequence}]}
            self.processed.append(sequence)
        return {"batchItemFailures": []}


def poller(function: FlakyFunction, records: int, max_retries: int, sqs: FakeSqs | None = None) -> StreamPoller:
    stream = StreamPoller(
        FakeStreams(records),
        sqs or FakeSqs(),
        function,
        STREAM,
        batch_size=3,  # type: ignore[arg-type]
        max_retries=max_retries,
        on_failure_queue_url="dlq" if sqs else None,
    )
    stream._iterator = "0"  # start() would ask describe_stream and get_shard_iterator for TRIM_HORIZON
    return stream


def drain(stream: StreamPoller, polls: int = 50) -> None:
    for _ in range(polls):
        stream.poll_once()


def test_a_failing_record_is_retried_and_nothing_after_it_overtakes_it() -> None:
    function = FlakyFunction({"104": 2})
    drain(poller(function, 7, max_retries=10))
    assert function.processed == [str(100 + n) for n in range(7)]  # each once, in stream order


def test_a_handler_that_raises_retries_the_whole_batch_from_its_first_record() -> None:
    function = FlakyFunction({"101": 1}, raise_instead=True)
    stream = poller(function, 4, max_retries=-1)
    drain(stream)
    # 100 was handled before 101 raised; an error reports nothing, so the whole batch comes again (at least once)
    assert function.processed == ["100", "100", "101", "102", "103"]


def test_a_record_out_of_retries_goes_to_the_on_failure_queue_and_the_rest_flows() -> None:
    sqs = FakeSqs()
    function = FlakyFunction({"102": 1000})
    drain(poller(function, 5, max_retries=2, sqs=sqs))
    assert function.processed == ["100", "101", "103", "104"]
    assert [m["DDBStreamBatchInfo"]["startSequenceNumber"] for m in sqs.sent] == ["102"]
    assert sqs.sent[0]["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert sqs.sent[0]["DDBStreamBatchInfo"]["streamArn"] == STREAM
