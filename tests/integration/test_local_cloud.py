"""The local cloud itself: the template drives it, handlers run in-process for every kind of invocation,
and moto's DynamoDB is made safe under concurrency (see local_cloud/moto_fixes.py)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from storefront.inventory.repository import InventoryRepository

from local_cloud.cloud import LocalCloud

BRIDGE_TEMPLATE = Path(__file__).resolve().parent.parent / "fixtures" / "bridge" / "template.yaml"


@pytest.fixture(scope="module")
def bridge() -> Iterator[LocalCloud]:
    with LocalCloud(BRIDGE_TEMPLATE, stack_name=f"bridge-{uuid.uuid4().hex[:6]}") as local:
        yield local


def _wait_for_execution(cloud: LocalCloud, arn: str, timeout: float = 30) -> dict[str, Any]:
    sfn = cloud.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution = sfn.describe_execution(executionArn=arn)
        if execution["status"] != "RUNNING":
            return execution
        time.sleep(0.1)
    raise AssertionError(f"execution {arn} still running after {timeout}s")


def _run_flow(cloud: LocalCloud, payload: dict[str, Any]) -> dict[str, Any]:
    started = cloud.client("stepfunctions").start_execution(
        stateMachineArn=cloud.physical_id("Flow"), name=uuid.uuid4().hex, input=json.dumps(payload)
    )
    return _wait_for_execution(cloud, started["executionArn"])


# ------------------------------------------------------------------ provisioning from the template


def test_every_resource_of_the_storefront_template_exists(cloud: LocalCloud) -> None:
    template = cloud.template
    tables = set(cloud.client("dynamodb").list_tables()["TableNames"])
    for logical_id in template.of_type("AWS::DynamoDB::Table"):
        assert cloud.physical_id(logical_id) in tables
    secrets = {s["ARN"] for s in cloud.client("secretsmanager").list_secrets()["SecretList"]}
    for logical_id in template.of_type("AWS::SecretsManager::Secret"):
        assert cloud.physical_id(logical_id) in secrets
    for logical_id in template.of_type("AWS::Serverless::Function"):
        configuration = cloud.client("lambda").get_function(FunctionName=cloud.physical_id(logical_id))["Configuration"]
        assert configuration["Runtime"] == "python3.13"
        assert cloud.functions[logical_id].module is not None  # imported at start, like Lambda's init phase


def test_table_keys_and_indexes_come_from_the_template(cloud: LocalCloud) -> None:
    declared = cloud.template.resources["CatalogTable"]["Properties"]
    table = cloud.client("dynamodb").describe_table(TableName=cloud.physical_id("CatalogTable"))["Table"]
    assert table["KeySchema"] == declared["KeySchema"]
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == [
        i["IndexName"] for i in declared["GlobalSecondaryIndexes"]
    ]


def test_topics_event_buses_and_parameters_are_created(bridge: LocalCloud) -> None:
    topics = [t["TopicArn"] for t in bridge.client("sns").list_topics()["Topics"]]
    assert bridge.physical_id("Alerts") in topics
    bus = bridge.client("events").describe_event_bus(Name=bridge.physical_id("Events"))
    assert bus["Name"] == f"{bridge.template.stack_name}-events"
    parameter = bridge.client("ssm").get_parameter(Name=bridge.physical_id("Setting"))["Parameter"]
    assert parameter["Value"] == bridge.physical_id("Alerts", "TopicName")


def test_function_environment_is_the_templates_with_globals_merged(bridge: LocalCloud) -> None:
    environment = bridge.functions["BatchFunction"].environment
    assert environment["MARKER"] == "from-globals"
    assert environment["RESULTS_TABLE"] == bridge.physical_id("ResultsTable")
    assert bridge.functions["StepFunction"].environment == {"MARKER": "from-globals", "STEP_MARKER": "from-function"}


def test_ttl_and_redrive_policy_are_applied(bridge: LocalCloud) -> None:
    ttl = bridge.client("dynamodb").describe_time_to_live(TableName=bridge.physical_id("ResultsTable"))
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"
    attributes = bridge.client("sqs").get_queue_attributes(
        QueueUrl=bridge.physical_id("WorkQueue"), AttributeNames=["RedrivePolicy"]
    )["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == bridge.physical_id("DeadLetterQueue", "Arn")
    assert int(redrive["maxReceiveCount"]) == 2


# ------------------------------------------------------------------ invocations reach the real handlers


def test_direct_invoke_runs_the_real_handler_with_its_environment(bridge: LocalCloud) -> None:
    response = bridge.client("lambda").invoke(
        FunctionName=bridge.physical_id("StepFunction"), Payload=json.dumps({"hello": "world"})
    )
    payload = json.loads(response["Payload"].read())
    assert "FunctionError" not in response
    assert payload["echo"] == {"hello": "world"}
    assert (payload["marker"], payload["step_marker"]) == ("from-globals", "from-function")
    assert payload["function_name"] == bridge.physical_id("StepFunction")
    assert 0 < payload["remaining_ms"] <= 5000


def test_direct_invoke_reports_a_raised_exception_as_a_function_error(bridge: LocalCloud) -> None:
    response = bridge.client("lambda").invoke(
        FunctionName=bridge.physical_id("StepFunction"), Payload=json.dumps({"raise": "Boom"})
    )
    assert response["FunctionError"] == "Unhandled"
    payload = json.loads(response["Payload"].read())
    assert payload["errorType"] == "RuntimeError"
    assert payload["errorMessage"] == "boom"


def test_a_function_is_invoked_through_its_alias_arn_as_the_template_references_it(cloud: LocalCloud) -> None:
    """`!Ref StockFunction.Alias` resolves to the alias the local cloud made through the Lambda API, and invoking
    that qualified ARN runs the real handler (as the workflow's tasks and the payment tasks function do)."""
    alias = cloud.template.resolve({"Ref": "StockFunction.Alias"})
    assert alias.endswith(f"function:{cloud.physical_id('StockFunction')}:live")
    described = cloud.client("lambda").get_alias(FunctionName=cloud.physical_id("StockFunction"), Name="live")
    assert described["AliasArn"] == alias
    sku = f"ALIAS-{uuid.uuid4().hex[:8]}".upper()
    InventoryRepository(cloud.client("dynamodb"), cloud.physical_id("InventoryTable")).put_level(sku, 1)
    order = {"order_id": uuid.uuid4().hex, "lines": [{"sku": sku, "quantity": 1}]}
    for action, outcome in (("reserve", "reserved"), ("release", "released")):
        response = cloud.client("lambda").invoke(FunctionName=alias, Payload=json.dumps({"action": action, **order}))
        assert json.loads(response["Payload"].read()) == {"outcome": outcome}


def test_step_functions_task_reaches_the_handler(bridge: LocalCloud) -> None:
    execution = _run_flow(bridge, {"order": 1})
    assert execution["status"] == "SUCCEEDED"
    output = json.loads(execution["output"])
    assert output["echo"] == {"order": 1}
    assert output["marker"] == "from-globals"


def test_step_functions_catch_matches_the_exception_class_name(bridge: LocalCloud) -> None:
    execution = _run_flow(bridge, {"raise": "OutOfStock"})
    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"]) == {"rejected": True, "error": "OutOfStock"}


@pytest.mark.slow("waits")
def test_step_functions_retry_matches_the_exception_class_name(bridge: LocalCloud) -> None:
    execution = _run_flow(bridge, {"flaky_until": 3, "key": uuid.uuid4().hex})
    assert execution["status"] == "SUCCEEDED"  # two Flaky failures retried, the third attempt succeeds


def test_an_uncaught_error_fails_the_execution(bridge: LocalCloud) -> None:
    execution = _run_flow(bridge, {"raise": "Boom"})
    assert execution["status"] == "FAILED"
    assert execution["error"] == "RuntimeError"


@pytest.mark.slow("waits")
def test_sqs_batches_honour_partial_failures_and_the_dead_letter_queue(bridge: LocalCloud) -> None:
    sqs, dynamodb = bridge.client("sqs"), bridge.client("dynamodb")
    run = uuid.uuid4().hex[:8]
    good = [f"{run}-{i}" for i in range(4)]
    sqs.send_message_batch(
        QueueUrl=bridge.physical_id("WorkQueue"),
        Entries=[
            *({"Id": str(i), "MessageBody": json.dumps({"id": message_id})} for i, message_id in enumerate(good)),
            {"Id": "poison", "MessageBody": json.dumps({"id": f"{run}-poison", "poison": True})},
        ],
    )
    dead_letters: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not dead_letters:
        dead_letters = sqs.receive_message(
            QueueUrl=bridge.physical_id("DeadLetterQueue"), WaitTimeSeconds=1, MaxNumberOfMessages=10
        ).get("Messages", [])
    assert [json.loads(m["Body"])["id"] for m in dead_letters] == [f"{run}-poison"]
    for message_id in good:  # each good message processed exactly once, not held back by the poison one
        item = dynamodb.get_item(TableName=bridge.physical_id("ResultsTable"), Key={"id": {"S": message_id}})["Item"]
        assert item["deliveries"] == {"N": "1"}
    poison = dynamodb.get_item(TableName=bridge.physical_id("ResultsTable"), Key={"id": {"S": f"{run}-poison"}})
    assert "Item" not in poison


# ------------------------------------------------------------------ moto's DynamoDB under concurrency


@pytest.mark.slow("race")
def test_concurrent_conditional_writes_never_oversell(cloud: LocalCloud) -> None:
    """200 concurrent transactions decrement 100 units: exactly 100 succeed and none goes below zero.
    Without local_cloud.moto_fixes.serialize_dynamodb this oversells (LOCAL_CLOUD_UNSAFE_DYNAMODB=1)."""
    dynamodb = cloud.client("dynamodb")
    table = cloud.physical_id("InventoryTable")
    sku = f"RACE-{uuid.uuid4().hex[:8].upper()}"
    key = {"pk": {"S": f"SKU#{sku}"}, "sk": {"S": "LEVEL"}}
    dynamodb.put_item(TableName=table, Item={**key, "available": {"N": "100"}})
    start = threading.Barrier(50)

    def reserve(n: int) -> str:
        if n < 50:
            start.wait()
        try:
            dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": table,
                            "Key": key,
                            "UpdateExpression": "SET available = available - :one",
                            "ConditionExpression": "available >= :one",
                            "ExpressionAttributeValues": {":one": {"N": "1"}},
                        }
                    },
                    {
                        "Put": {
                            "TableName": table,
                            "Item": {"pk": {"S": f"SKU#{sku}"}, "sk": {"S": f"RES#{n}"}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
            return "ok"
        except ClientError as error:
            return error.response["Error"]["Code"]

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(reserve, range(200)))
    remaining = int(dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]["available"]["N"])
    reservations = dynamodb.query(
        TableName=table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :res)",
        ExpressionAttributeValues={":pk": {"S": f"SKU#{sku}"}, ":res": {"S": "RES#"}},
        Select="COUNT",
    )["Count"]
    # These items are not the inventory's shape: remove them, so the inventory invariant holds for other tests.
    for n in range(200):
        dynamodb.delete_item(TableName=table, Key={"pk": {"S": f"SKU#{sku}"}, "sk": {"S": f"RES#{n}"}})
    dynamodb.delete_item(TableName=table, Key=key)
    assert outcomes.count("ok") == 100
    assert set(outcomes) == {"ok", "TransactionCanceledException"}
    assert remaining == 0
    assert reservations == 100


def test_a_cancelled_transaction_changes_nothing(cloud: LocalCloud) -> None:
    """The item-level rollback (moto_fixes.roll_back_transactions_item_by_item) undoes every write of a
    transaction whose later condition fails, including items the transaction created."""
    dynamodb = cloud.client("dynamodb")
    table = cloud.physical_id("CartTable")
    run = uuid.uuid4().hex
    existing = {"pk": {"S": f"ROLLBACK#{run}"}, "sk": {"S": "A"}}
    dynamodb.put_item(TableName=table, Item={**existing, "n": {"N": "1"}})
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": table,
                        "Key": existing,
                        "UpdateExpression": "SET n = n + :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
                {"Put": {"TableName": table, "Item": {"pk": {"S": f"ROLLBACK#{run}"}, "sk": {"S": "B"}}}},
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": {"pk": {"S": f"ROLLBACK#{run}"}, "sk": {"S": "MISSING"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    items = dynamodb.query(
        TableName=table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": f"ROLLBACK#{run}"}}
    )["Items"]
    assert items == [{**existing, "n": {"N": "1"}}]


def test_the_gateway_serves_the_shop_and_the_admin_page_beside_the_api(api: Any) -> None:
    """web/ for GETs no route claims: a folder's address is its index.html (the admin page at /manage/, whose
    relative links need the slash), nothing outside web/ is reachable, and the API keeps /admin/* to itself."""
    assert api.get("/").headers["content-type"].startswith("text/html")
    redirected = api.get("/manage")
    assert (redirected.status_code, redirected.headers["location"]) == (301, "/manage/")
    page = api.get("/manage/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="app.js">' in page.text
    assert (
        api.get("/manage/session.js").headers["content-type"].startswith(("text/javascript", "application/javascript"))
    )
    for outside in ("/../pyproject.toml", "/%2e%2e/pyproject.toml", "/manage/%2e%2e/%2e%2e/template.yaml"):
        assert api.get(outside).status_code == 404, outside
    unauthorized = api.get("/admin/products")
    assert (unauthorized.status_code, unauthorized.json()) == (401, {"message": "Unauthorized"})
