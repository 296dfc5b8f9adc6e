"""local_cloud/moto_fixes.py, fix 9: DynamoDB's item responses written with json.dumps instead of moto's generic
serializer. Every item operation the project uses, with every kind of attribute value and the optional parts of
a response (old and new values, consumed capacity, pagination keys, unprocessed items, refusals), is answered
twice, by moto's serializer and by the fast path, and the two must say the same to botocore.

Fix 12: queries that read only the partition (or, for an index, skip moto's first sort) answer every page of
every kind of query exactly as moto does."""

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

from local_cloud.moto_fixes import DYNAMODB_ITEM_OPERATIONS, dynamodb_item_response, query_only_what_can_match

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


def in_a_process_of_its_own(comparison: str) -> str:
    """Runs one of this module's comparisons and returns what it printed. In a process of its own: mock_aws resets
    every moto backend of its process, and this worker's may hold the session's local cloud."""
    run = subprocess.run(
        [sys.executable, "-c", f"from tests.unit.test_moto_fixes import {comparison}; {comparison}()"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "storefront"), str(ROOT)])},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    return run.stdout.strip()


def test_every_item_operation_says_the_same_as_motos_serializer() -> None:
    compared = in_a_process_of_its_own("compare_every_item_operation")
    assert compared == "compared: " + ", ".join(sorted(DYNAMODB_ITEM_OPERATIONS))


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


def test_queries_of_one_partition_answer_every_page_as_moto_does() -> None:
    compared = in_a_process_of_its_own("compare_queries")
    assert compared == "the same pages for 16 queries; moto's whole-table listing used 0 times"


def compare_queries() -> None:
    from moto.dynamodb.models.table import Table

    os.environ.pop("AWS_ENDPOINT_URL", None)
    with mock_aws(), pytest.MonkeyPatch.context() as patch:
        client = boto3.client("dynamodb", region_name="us-east-1")
        _query_tables(client)
        queries = _queries()
        as_moto_answers = [_every_page(client, query) for query in queries]
        whole_table_listings = []
        moto_listing = Table.all_items
        patch.setattr(Table, "all_items", lambda table: whole_table_listings.append(table.name) or moto_listing(table))
        query_only_what_can_match()  # on top of the counting listing: it counts what the fix still lists whole
        fixed_answers = [_every_page(client, query) for query in queries]
    for query, expected, fixed in zip(queries, as_moto_answers, fixed_answers, strict=True):
        assert fixed == expected, query
        assert expected[0][0], f"a query that finds nothing compares nothing: {query}"
    listed = len(whole_table_listings)
    sys.stdout.write(f"the same pages for {len(queries)} queries; moto's whole-table listing used {listed} times\n")


def _query_tables(client: Any) -> None:
    """A table with a sort key and two indexes (one with a sort key, one without), and one without a sort key; items
    over several partitions, written in no particular order."""
    client.create_table(
        TableName="sorted",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "status", "AttributeType": "S"},
            {"AttributeName": "created", "AttributeType": "N"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_status",
                "KeySchema": [
                    {"AttributeName": "status", "KeyType": "HASH"},
                    {"AttributeName": "created", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": "by_status_only",
                "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.create_table(
        TableName="plain",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for n in range(90):
        partition, position = (n * 7) % 5, (n * 37) % 90  # interleaved partitions, sort keys out of order
        item = {"pk": {"S": f"P#{partition}"}, "sk": {"S": f"S#{position:03}"}, "units": {"N": str(n % 9)}}
        if n % 4:  # a quarter of the items are not in the indexes
            item |= {"status": {"S": ("paid", "shipped")[n % 2]}, "created": {"N": str(1000 - (n * 13) % 50)}}
        client.put_item(TableName="sorted", Item=item)
        client.put_item(TableName="plain", Item={"pk": {"S": f"K#{n}"}, "units": {"N": str(n % 9)}})


def _queries() -> list[dict[str, Any]]:
    def on(table: str, condition: str, values: dict[str, Any], **more: Any) -> dict[str, Any]:
        return {"TableName": table, "KeyConditionExpression": condition, "ExpressionAttributeValues": values} | more

    partition = {":p": {"S": "P#3"}}
    paid = {":s": {"S": "paid"}}
    return [
        on("sorted", "pk = :p", partition),
        on("sorted", "pk = :p", partition, ScanIndexForward=False),
        on("sorted", "pk = :p", partition, Limit=4),
        on("sorted", "pk = :p", partition, Limit=5, ScanIndexForward=False),
        on("sorted", "pk = :p AND begins_with(sk, :s)", partition | {":s": {"S": "S#0"}}, Limit=3),
        on("sorted", "pk = :p AND sk BETWEEN :a AND :b", partition | {":a": {"S": "S#020"}, ":b": {"S": "S#070"}}),
        on("sorted", "pk = :p AND sk > :a", partition | {":a": {"S": "S#050"}}, Limit=2, ScanIndexForward=False),
        on("sorted", "pk = :p", partition | {":n": {"N": "4"}}, FilterExpression="units > :n", Limit=3),
        on("sorted", "pk = :p", partition, ProjectionExpression="sk", Select="SPECIFIC_ATTRIBUTES"),
        on("sorted", "status = :s", paid, IndexName="by_status"),
        on("sorted", "status = :s", paid, IndexName="by_status", Limit=6, ScanIndexForward=False),
        on("sorted", "status = :s AND created > :c", paid | {":c": {"N": "970"}}, IndexName="by_status", Limit=4),
        on("sorted", "status = :s", paid, IndexName="by_status_only", Limit=7),
        on("sorted", "status = :s", paid | {":n": {"N": "2"}}, IndexName="by_status", FilterExpression="units < :n"),
        on("plain", "pk = :p", {":p": {"S": "K#17"}}),
        on("plain", "pk = :p", {":p": {"S": "K#17"}}, Select="COUNT"),
    ]


def _every_page(client: Any, query: dict[str, Any]) -> list[tuple[Any, Any]]:
    """Each page's items (or count) and where the next one starts."""
    pages = []
    request = dict(query)
    while True:
        page = client.query(**request)
        pages.append((page.get("Items", page["Count"]), page.get("LastEvaluatedKey")))
        if "LastEvaluatedKey" not in page:
            return pages
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
