"""local_cloud/moto_fixes.py, fix 9: DynamoDB's item responses written with json.dumps instead of moto's generic
serializer. Every item operation the project uses, with every kind of attribute value and the optional parts of
a response (old and new values, consumed capacity, pagination keys, unprocessed items, refusals), is answered
twice, by moto's serializer and by the fast path, and the two must say the same to botocore."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.parsers
import botocore.session
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.responses import DynamoHandler
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

from local_cloud.moto_fixes import DYNAMODB_ITEM_OPERATIONS, dynamodb_item_response

ROOT = Path(__file__).resolve().parents[2]
ITEM = {
    "pk": {"S": "product#1"},
    "sk": {"S": "variant#A"},
    "gsi_pk": {"S": "category#shirts"},
    "price": {"N": "1990"},
    "ratio": {"N": "0.25"},
    "active": {"BOOL": True},
    "gone": {"NULL": True},
    "tags": {"SS": ["linen", "summer"]},
    "sizes": {"NS": ["38", "40"]},
    "digest": {"B": b"\x00\x01binary"},
    "history": {"L": [{"M": {"at": {"S": "2026-12-01T00:00:00Z"}, "units": {"N": "-2"}}}]},
    "address": {"M": {"line1": {"S": "Unter den Linden 1"}, "city": {"S": "Berlin"}}},
}


def _parsed(handler: Any, response: tuple[int, dict[str, str], str]) -> dict[str, Any]:
    """What botocore makes of a response: members its output shape does not have (moto's results carry a few,
    e.g. the legacy ConsumedCapacityUnits) are not part of the answer."""
    status, headers, body = response
    service = botocore.session.get_session().get_service_model(handler.service_name)
    parsed: dict[str, Any] = botocore.parsers.create_parser("json").parse(
        {"status_code": status, "headers": headers, "body": body.encode()},
        service.operation_model(handler._get_action()).output_shape,
    )
    parsed.pop("ResponseMetadata", None)
    return parsed


@contextlib.contextmanager
def comparing() -> Iterator[list[str]]:
    """moto's DynamoDB (and its streams) under mock_aws, answering with moto's own serializer and checking the fast
    path against it."""
    seen: list[str] = []
    with mock_aws(), pytest.MonkeyPatch.context() as patch:
        for handler_class in (DynamoHandler, DynamoDBStreamsHandler):
            moto_serialized = getattr(handler_class.serialized, "__wrapped__", handler_class.serialized)

            def both(handler: Any, action_result: Any, moto_serialized: Any = moto_serialized) -> Any:
                expected = moto_serialized(handler, action_result)
                fast = dynamodb_item_response(handler, action_result)
                if fast is not None:
                    seen.append(handler._get_action())
                    assert fast[0] == expected[0]
                    assert fast[1]["Content-Type"] == expected[1]["Content-Type"]
                    assert _parsed(handler, fast) == _parsed(handler, expected)
                return expected

            patch.setattr(handler_class, "serialized", both)
        yield seen


def _table(client: Any) -> None:
    client.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "gsi_pk")],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_category",
                "KeySchema": [{"AttributeName": "gsi_pk", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


def test_every_item_operation_says_the_same_as_motos_serializer() -> None:
    """In a process of its own: mock_aws resets every moto backend of its process, and this worker's may hold the
    session's local cloud."""
    run = subprocess.run(
        [sys.executable, "-c", "from tests.unit.test_moto_fixes import compare_every_item_operation as c; c()"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "storefront"), str(ROOT)])},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert run.stdout.strip() == "compared: " + ", ".join(sorted(DYNAMODB_ITEM_OPERATIONS))


def compare_every_item_operation() -> None:
    os.environ.pop("AWS_ENDPOINT_URL", None)
    with comparing() as compared:
        _exercise()
    assert set(compared) == DYNAMODB_ITEM_OPERATIONS, "every item operation was compared"
    sys.stdout.write("compared: " + ", ".join(sorted(set(compared))) + "\n")


def _exercise() -> None:
    client = boto3.client("dynamodb", region_name="us-east-1")
    _table(client)
    key = {"pk": ITEM["pk"], "sk": ITEM["sk"]}
    total = {"ReturnConsumedCapacity": "INDEXES"}

    client.put_item(TableName="t", Item=ITEM, **total)
    client.put_item(TableName="t", Item={**ITEM, "price": {"N": "2090"}}, ReturnValues="ALL_OLD", **total)
    for n in range(5):
        client.put_item(TableName="t", Item={**ITEM, "sk": {"S": f"variant#{n}"}})
    assert client.get_item(TableName="t", Key=key, ConsistentRead=True, **total)["Item"]["digest"]["B"]
    client.get_item(TableName="t", Key={"pk": {"S": "nothing"}, "sk": {"S": "here"}})
    client.get_item(
        TableName="t", Key=key, ProjectionExpression="price, #a.city", ExpressionAttributeNames={"#a": "address"}
    )
    client.update_item(
        TableName="t",
        Key=key,
        UpdateExpression="SET price = price + :one, history = list_append(history, :entry) REMOVE gone",
        ExpressionAttributeValues={":one": {"N": "1"}, ":entry": {"L": [{"M": {"units": {"N": "3"}}}]}},
        ReturnValues="ALL_NEW",
        **total,
    )
    client.update_item(
        TableName="t",
        Key=key,
        UpdateExpression="ADD sizes :s",
        ExpressionAttributeValues={":s": {"NS": ["42"]}},
        ReturnValues="UPDATED_OLD",
    )
    page = client.query(
        TableName="t",
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": ITEM["pk"]},
        Limit=2,
        ScanIndexForward=False,
        **total,
    )
    client.query(
        TableName="t",
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": ITEM["pk"]},
        ExclusiveStartKey=page["LastEvaluatedKey"],
    )
    client.query(
        TableName="t",
        IndexName="by_category",
        KeyConditionExpression="gsi_pk = :c",
        FilterExpression="price > :min",
        ExpressionAttributeValues={":c": ITEM["gsi_pk"], ":min": {"N": "1000"}},
    )
    client.scan(TableName="t", Limit=3)
    client.scan(TableName="t", Select="COUNT")
    client.batch_get_item(
        RequestItems={
            "t": {"Keys": [key, {"pk": ITEM["pk"], "sk": {"S": "variant#0"}}, {"pk": {"S": "x"}, "sk": {"S": "y"}}]}
        },
        **total,
    )
    client.batch_write_item(
        RequestItems={
            "t": [
                {"PutRequest": {"Item": {**ITEM, "sk": {"S": "variant#9"}}}},
                {"DeleteRequest": {"Key": {"pk": ITEM["pk"], "sk": {"S": "variant#4"}}}},
            ]
        },
        ReturnConsumedCapacity="TOTAL",
    )
    client.transact_get_items(TransactItems=[{"Get": {"TableName": "t", "Key": key}}], ReturnConsumedCapacity="TOTAL")
    client.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": "t",
                    "Key": key,
                    "UpdateExpression": "SET active = :f",
                    "ExpressionAttributeValues": {":f": {"BOOL": False}},
                }
            },
            {
                "ConditionCheck": {
                    "TableName": "t",
                    "Key": {"pk": ITEM["pk"], "sk": {"S": "variant#0"}},
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
        ],
        ReturnConsumedCapacity="TOTAL",
    )
    # Refusals are errors, which moto's serializer still writes; the fast path must leave them alone.
    with pytest.raises(ClientError, match="ConditionalCheckFailed") as refused:
        client.put_item(
            TableName="t",
            Item=ITEM,
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    assert refused.value.response["Item"]["price"] == {"N": "2091"}
    with pytest.raises(ClientError, match="TransactionCanceled"):
        client.transact_write_items(
            TransactItems=[
                {
                    "ConditionCheck": {
                        "TableName": "t",
                        "Key": key,
                        "ConditionExpression": "price < :p",
                        "ExpressionAttributeValues": {":p": {"N": "1"}},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            ]
        )
    client.delete_item(TableName="t", Key=key, ReturnValues="ALL_OLD", **total)
    streams = boto3.client("dynamodbstreams", region_name="us-east-1")
    stream = streams.describe_stream(StreamArn=client.describe_table(TableName="t")["Table"]["LatestStreamArn"])
    shard = stream["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=stream["StreamDescription"]["StreamArn"], ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator, Limit=1000)
    assert {r["eventName"] for r in records["Records"]} == {"INSERT", "MODIFY", "REMOVE"}
    assert records["Records"][0]["dynamodb"]["ApproximateCreationDateTime"]
    streams.get_records(ShardIterator=records["NextShardIterator"])  # nothing new: an empty page
