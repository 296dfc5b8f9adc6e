"""local_cloud/moto_fixes.py, fix 11: the SDK calls of the local cloud's own process are answered in process, not
over HTTP. Every service the stack uses is asked the same questions both ways, errors and unrouted paths
included, and botocore must make the same of both answers; and a call in process must not reach the server."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local_cloud import moto_fixes
from local_cloud.cloud import LocalCloud

NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"})


@contextlib.contextmanager
def over_http(cloud: LocalCloud) -> Iterator[None]:
    """This process's calls to the cloud go over HTTP for a while (the rest of the worker's calls too: harmless)."""
    port = int(cloud.endpoint_url.rsplit(":", 1)[1])
    moto_fixes.stop_serving_in_process(port)
    try:
        yield
    finally:
        moto_fixes.serve_in_process(port)


def answer(call: Any) -> Any:
    """What botocore made of the answer: the result without its request metadata, or the error's code, status and
    message."""
    try:
        result = call()
    except ClientError as error:
        return ("error", error.response["Error"].get("Code"), error.response["ResponseMetadata"]["HTTPStatusCode"])
    if isinstance(result, dict):
        result.pop("ResponseMetadata", None)
        if "Body" in result:
            result["Body"] = result["Body"].read()
    return result


@pytest.fixture(scope="module")
def clients(cloud: LocalCloud) -> dict[str, Any]:
    import boto3

    session = boto3.session.Session(region_name=cloud.region)
    return {
        service: session.client(service, endpoint_url=cloud.endpoint_url, config=NO_RETRIES)
        for service in ("dynamodb", "s3", "sqs", "secretsmanager", "stepfunctions", "cognito-idp", "events", "logs")
    }


def questions(cloud: LocalCloud, c: dict[str, Any]) -> dict[str, Any]:
    """Read-only calls over the stack's services and protocols (JSON, query-style, REST-XML, REST-JSON)."""
    catalog = cloud.physical_id("CatalogTable")
    queue_url = c["sqs"].get_queue_url(QueueName=cloud.physical_id("FulfilmentQueue").rsplit("/", 1)[-1])["QueueUrl"]
    bucket = cloud.physical_id("ProductImagesBucket")
    machine = cloud.physical_id("OrderWorkflow")
    pool = cloud.physical_id("AdminUserPool")
    c["s3"].put_object(Bucket=bucket, Key="images/in process/ä b.txt", Body=b"same either way")
    return {
        "dynamodb query": lambda: c["dynamodb"].query(
            TableName=catalog,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "no-such-partition"}},
        ),
        "dynamodb scan": lambda: c["dynamodb"].scan(TableName=catalog, Limit=3),
        "dynamodb missing table": lambda: c["dynamodb"].get_item(TableName="missing", Key={"pk": {"S": "x"}}),
        "sqs attributes": lambda: c["sqs"].get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"]),
        "sqs missing queue": lambda: c["sqs"].get_queue_url(QueueName="missing"),
        "s3 get a key with spaces and ümlauts": lambda: c["s3"].get_object(
            Bucket=bucket, Key="images/in process/ä b.txt"
        ),
        "s3 head": lambda: c["s3"].head_object(Bucket=bucket, Key="images/in process/ä b.txt")["ContentLength"],
        "s3 list": lambda: [o["Key"] for o in c["s3"].list_objects_v2(Bucket=bucket, Prefix="images/in")["Contents"]],
        "s3 missing key": lambda: c["s3"].get_object(Bucket=bucket, Key="images/missing"),
        "secret": lambda: c["secretsmanager"].get_secret_value(SecretId=cloud.physical_id("PaymentWebhookSecret"))[
            "SecretString"
        ],
        "state machine": lambda: c["stepfunctions"].describe_state_machine(stateMachineArn=machine)["definition"],
        "user pool": lambda: c["cognito-idp"].describe_user_pool(UserPoolId=pool)["UserPool"]["Name"],
        "events buses": lambda: sorted(b["Name"] for b in c["events"].list_event_buses()["EventBuses"]),
        "log group": lambda: c["logs"].describe_log_groups(logGroupNamePrefix="/aws/lambda/no-such")["logGroups"],
    }


def test_in_process_answers_are_the_http_answers(cloud: LocalCloud, clients: dict[str, Any]) -> None:
    asked = questions(cloud, clients)
    in_process = {name: answer(call) for name, call in asked.items()}
    with over_http(cloud):
        over_the_wire = {name: answer(call) for name, call in asked.items()}
    assert in_process == over_the_wire
    assert in_process["dynamodb missing table"] == ("error", "ResourceNotFoundException", 400)
    assert in_process["s3 get a key with spaces and ümlauts"]["Body"] == b"same either way"
    assert in_process["s3 missing key"] == ("error", "NoSuchKey", 404)


def test_a_call_in_process_never_reaches_the_server(
    cloud: LocalCloud, clients: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    served = []  # the operations moto's server answered (the worker's pollers may call it too, meanwhile)
    serve = DomainDispatcherApplication.__call__
    monkeypatch.setattr(
        DomainDispatcherApplication,
        "__call__",
        lambda self, env, start: served.append(env.get("HTTP_X_AMZ_TARGET")) or serve(self, env, start),
    )
    describe_table = "DynamoDB_20120810.DescribeTable"
    clients["dynamodb"].describe_table(TableName=cloud.physical_id("CatalogTable"))
    assert served.count(describe_table) == 0
    with over_http(cloud):
        clients["dynamodb"].describe_table(TableName=cloud.physical_id("CatalogTable"))
    assert served.count(describe_table) == 1


def test_a_path_moto_has_no_route_for_is_a_404_not_an_exception(cloud: LocalCloud, clients: dict[str, Any]) -> None:
    """moto's Flask app answers an unrouted path with 404; in process the same, not a Python error in the caller."""
    from botocore.awsrequest import AWSPreparedRequest

    request = AWSPreparedRequest(
        "GET",
        f"{cloud.endpoint_url}/no/such/route",
        {"Authorization": "AWS4-HMAC-SHA256 Credential=local/20261201/us-east-1/lambda/aws4_request, x"},
        b"",
        False,
    )
    response = moto_fixes._InProcessServer.instance().answer(request)
    assert response.status_code == 404
