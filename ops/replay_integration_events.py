"""Republish the integration events of DynamoDB stream batches that ended in IntegrationEventsDeadLetterQueue.

    python -m ops.replay_integration_events --stack <stack name> [--region R] [--endpoint-url URL]
                                            [--dry-run] [--max-messages N]
    python -m ops.replay_integration_events --queue-url URL --function-name NAME ...   # without CloudFormation

Run it once the cause is fixed. The queue holds Lambda's "stream batch failure" records, not the records
themselves: each names a stream, a shard and a sequence number range. For each message this reads that range
from the stream again, invokes IntegrationEventsFunction with the event Lambda would have sent, and deletes
the message only when every record was published. Republishing is safe: events keep their `event_id`, on
which consumers deduplicate. A stream keeps records for 24 hours; a message whose records are gone is kept
and reported as expired, and its events must be rebuilt from the table.

Exit code 0 when every message was replayed (or, with --dry-run, could be), 1 otherwise.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

QUEUE_LOGICAL_ID = "IntegrationEventsDeadLetterQueue"
FUNCTION_LOGICAL_ID = "IntegrationEventsFunction"
STREAM_RETENTION = "24 hours"
# What DynamoDB Streams answers when the records, or their whole stream, are no longer there to read.
GONE = {
    "TrimmedDataAccessException": "records trimmed from the stream",
    "ResourceNotFoundException": "the stream or its shard no longer exists",
}
# DynamoDB Streams may answer empty pages before reaching records; this bounds the walk when they are missing.
MAX_EMPTY_PAGES = 20
# Messages stay invisible to other readers while this run holds them; those it keeps are released at the end.
VISIBILITY_SECONDS = 300


class Expired(Exception):
    """The batch's records are no longer (all) in the stream."""


@dataclass(frozen=True)
class Outcome:
    status: str  # replayed | would replay | expired | failed
    detail: str

    @property
    def ok(self) -> bool:
        return self.status in {"replayed", "would replay"}


# ---------------------------------------------------------------- reading the stream


def read_batch(streams: Any, info: dict[str, Any]) -> list[dict[str, Any]]:
    """The records startSequenceNumber..endSequenceNumber of the batch, as GetRecords returns them;
    Expired when any of them is no longer in the stream."""
    stream_arn = info["streamArn"]
    start, end = int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
    expected = int(info.get("batchSize") or 0)
    try:
        shard_id = info.get("shardId") or _shard_holding(streams, stream_arn, start)
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn,
            ShardId=shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=info["startSequenceNumber"],
        )["ShardIterator"]
        records: list[dict[str, Any]] = []
        empty_pages = 0
        while iterator and empty_pages < MAX_EMPTY_PAGES:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            iterator = page.get("NextShardIterator")  # none: a closed shard, read to its end
            empty_pages = 0 if page["Records"] else empty_pages + 1
            for record in page["Records"]:
                if int(record["dynamodb"]["SequenceNumber"]) > end:  # numbers grow, but not by one: compare
                    iterator = None
                    break
                records.append(record)
            if records and int(records[-1]["dynamodb"]["SequenceNumber"]) == end:
                break
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code in GONE:
            raise Expired(f"{GONE[code]} ({code})") from error
        raise  # ExpiredIteratorException included: that is the iterator's 15 minutes, not the records' 24 hours
    sequence = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    if not sequence or sequence[0] != start or sequence[-1] != end or len(records) < expected:
        raise Expired(f"only {len(records)} of {plural(expected or '?', 'record')} still in the stream")
    return records


def _shard_holding(streams: Any, stream_arn: str, sequence_number: int) -> str:
    """The shard whose range holds the sequence number, for a failure record that does not name it (Lambda's
    and the local cloud's do; a hand-made one may not)."""
    request: dict[str, Any] = {"StreamArn": stream_arn}
    while True:
        description = streams.describe_stream(**request)["StreamDescription"]
        for shard in description["Shards"]:
            span = shard["SequenceNumberRange"]
            first, last = int(span["StartingSequenceNumber"]), span.get("EndingSequenceNumber")  # last: none if open
            if first <= sequence_number and (last is None or sequence_number <= int(last)):
                return str(shard["ShardId"])
        if not description.get("LastEvaluatedShardId"):
            raise Expired(f"no shard of the stream holds sequence number {sequence_number} any more")
        request["ExclusiveStartShardId"] = description["LastEvaluatedShardId"]


def lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record as Lambda's event source mapping hands it to the function."""
    change = dict(record["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        change["ApproximateCreationDateTime"] = int(created.timestamp())  # Lambda sends epoch seconds
    return {
        **record,
        "eventSource": "aws:dynamodb",
        "awsRegion": stream_arn.split(":")[3],
        "dynamodb": change,
        "eventSourceARN": stream_arn,
    }


def plural(count: int | str, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _json_bytes(value: Any) -> str:
    if isinstance(value, bytes):  # binary attributes (B, BS): base64 in Lambda's JSON, as in DynamoDB's
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# ---------------------------------------------------------------- one message


def replay_message(
    streams: Any, lambda_client: Any, function_name: str, body: str, *, dry_run: bool
) -> tuple[str, Outcome]:
    """What the message names, and what became of it."""
    try:
        info = json.loads(body)["DDBStreamBatchInfo"]
        label = (
            f"{info['streamArn'].split('/')[1]} {info['startSequenceNumber']}..{info['endSequenceNumber']} "
            f"({plural(info.get('batchSize', '?'), 'record')})"
        )
    except (ValueError, KeyError, TypeError, IndexError):
        return "?", Outcome("failed", "not a DynamoDB stream batch failure record; message kept")
    try:
        records = read_batch(streams, info)
    except Expired as gone:
        return label, Outcome(
            "expired",
            f"{gone} (a stream keeps records {STREAM_RETENTION}): message kept, rebuild these events from the table",
        )
    except ClientError as error:
        return label, Outcome("failed", f"reading the stream: {error}; message kept, run again")
    if dry_run:
        kinds = Counter(r["eventName"] for r in records)
        return label, Outcome(
            "would replay", "still in the stream: " + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
        )
    # One invocation per message: Lambda sent this very batch once, so it fits in one payload.
    event = {"Records": [lambda_record(r, info["streamArn"]) for r in records]}
    try:
        response = lambda_client.invoke(
            FunctionName=function_name,
            InvocationType="RequestResponse",
            Payload=json.dumps(event, default=_json_bytes).encode(),
        )
    except ClientError as error:
        return label, Outcome("failed", f"invoking {function_name}: {error}; message kept")
    payload = response["Payload"].read()
    result = json.loads(payload) if payload else None
    if response.get("FunctionError"):
        error = result if isinstance(result, dict) else {}
        return label, Outcome(
            "failed", f"{function_name} raised {error.get('errorType')}: {error.get('errorMessage')}; message kept"
        )
    # The function reports the record it stopped at (ReportBatchItemFailures) rather than raising.
    failures = (result or {}).get("batchItemFailures") if isinstance(result, dict) else None
    if failures:
        return label, Outcome(
            "failed",
            f"{function_name} could not publish record "
            f"{failures[0].get('itemIdentifier')} (those before it were); "
            "message kept, see the function's log",
        )
    return label, Outcome(
        "replayed", f"{plural(len(records), 'record')} republished through {function_name}; message deleted"
    )


# ---------------------------------------------------------------- the queue


def replay(
    sqs: Any,
    streams: Any,
    lambda_client: Any,
    queue_url: str,
    function_name: str,
    *,
    dry_run: bool = False,
    max_messages: int | None = None,
) -> int:
    """Replay the queue's messages (at most max_messages); prints a line per message and a total; the exit code."""
    outcomes: list[Outcome] = []
    kept: list[str] = []  # receipt handles of messages left in the queue
    try:
        while max_messages is None or len(outcomes) < max_messages:
            want = 10 if max_messages is None else min(10, max_messages - len(outcomes))
            # Long polling asks every SQS server, so an empty answer means an empty queue.
            messages = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=want, WaitTimeSeconds=1, VisibilityTimeout=VISIBILITY_SECONDS
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                label, outcome = replay_message(streams, lambda_client, function_name, message["Body"], dry_run=dry_run)
                if outcome.status == "replayed":
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                else:
                    kept.append(message["ReceiptHandle"])
                outcomes.append(outcome)
                print(f"{outcome.status:<12} {label}: {outcome.detail}", flush=True)
    finally:
        # Kept messages were invisible only so this run would not read them twice: show them again now.
        for handle in kept:
            sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
    counts = Counter(o.status for o in outcomes)
    total = ", ".join(f"{counts[s]} {s}" for s in ("replayed", "would replay", "expired", "failed") if counts[s])
    print(
        f"{plural(len(outcomes), 'message')}: {total or 'nothing to replay'}"
        + (" (dry run: nothing invoked, nothing deleted)" if dry_run else "")
    )
    return 0 if all(o.ok for o in outcomes) else 1


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.replay_integration_events",
        description=("Republish the integration events of stream batches in IntegrationEventsDeadLetterQueue."),
    )
    parser.add_argument("--stack", help="the stack's name: finds the queue and the function by their logical ids")
    parser.add_argument("--queue-url", help=f"the {QUEUE_LOGICAL_ID} URL (instead of --stack)")
    parser.add_argument("--function-name", help=f"the {FUNCTION_LOGICAL_ID} name (instead of --stack)")
    parser.add_argument("--region")
    parser.add_argument("--endpoint-url", help="another AWS endpoint, e.g. the local cloud's")
    parser.add_argument("--dry-run", action="store_true", help="list what would be replayed; invoke and delete nothing")
    parser.add_argument("--max-messages", type=int, metavar="N", help="handle at most N messages")
    args = parser.parse_args(argv)
    if not args.stack and not (args.queue_url and args.function_name):
        parser.error("give --stack, or both --queue-url and --function-name")
    if args.max_messages is not None and args.max_messages < 1:
        parser.error("--max-messages must be at least 1")

    session = boto3.Session(region_name=args.region)
    config = Config(retries={"mode": "standard"}, read_timeout=900)  # a synchronous invoke lasts up to 15 minutes

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=args.endpoint_url, config=config)

    try:
        queue_url = args.queue_url or _physical_id(client("cloudformation"), args.stack, QUEUE_LOGICAL_ID)
        function_name = args.function_name or _physical_id(client("cloudformation"), args.stack, FUNCTION_LOGICAL_ID)
    except ClientError as error:
        print(f"cannot find the stack's resources: {error}", file=sys.stderr)
        return 1
    print(f"queue {queue_url}\nfunction {function_name}")
    return replay(
        client("sqs"),
        client("dynamodbstreams"),
        client("lambda"),
        queue_url,
        function_name,
        dry_run=args.dry_run,
        max_messages=args.max_messages,
    )


def _physical_id(cloudformation: Any, stack: str, logical_id: str) -> str:
    detail = cloudformation.describe_stack_resource(StackName=stack, LogicalResourceId=logical_id)
    return str(detail["StackResourceDetail"]["PhysicalResourceId"])  # a queue's URL, a function's name


if __name__ == "__main__":
    sys.exit(main())
