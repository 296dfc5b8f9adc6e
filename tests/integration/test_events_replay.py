"""The sample events in events/<function>/*.json: consistent, complete, and answered as their response files say.

events/<folder>/ belongs to the function whose CodeUri folder is named <folder> (functions/catalog/ -> catalog
-> CatalogFunction). Every function has at least one sample, every HTTP route of a function has one, and each
sample has its expected response beside it (<sample>.response.json, events/README.md) and a line in its folder's
README.md saying what it does to the demo data. Each sample is invoked as `make invoke` invokes it: on the demo data
as seeded (a local cloud of this module's own, its tables put back between samples), with what `make invoke`
prints on stdout parsed as JSON and compared with the response file.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qsl

import pytest
from storefront.orders.models import OrderStatus
from storefront.orders.repository import OrderRepository

from local_cloud.__main__ import LOCAL_DEV_URL, printed_result, run_invoke
from local_cloud.cloud import LocalCloud
from local_cloud.demo_data import seed
from local_cloud.gateway import CompiledRoute
from local_cloud.template import Route, Template
from tests.samples import EVENTS, RESPONSE_SUFFIX, response_file, sample_events

EVENT_FILES = sample_events()
TEMPLATE = Template.load()
FUNCTIONS = sorted(TEMPLATE.of_type("AWS::Serverless::Function"))
ROUTES = sorted(TEMPLATE.routes(), key=lambda r: (r.function, r.path, r.method))
PROBLEM_FIELDS = {"type", "title", "status", "detail", "code"}
# Values that differ on every run, left out of response files: when a cart expires, when an order moved, which days
# a delivery is expected (they follow today's date), a page's cursor (signed with the stack's random cursor key), and
# the length of a body that holds them. (New ids and a listing's ETag, which covers its cursor, are left out by hand.)
VOLATILE_KEYS = {"expires_at", "created_at", "updated_at", "at", "earliest", "latest", "next_cursor", "content-length"}


def _folder_of(logical_id: str) -> str:
    code_uri = TEMPLATE.function_properties(logical_id)["CodeUri"]
    return PurePosixPath(str(code_uri).rstrip("/")).name


FOLDER_TO_FUNCTION = {_folder_of(logical_id): logical_id for logical_id in FUNCTIONS}


def _name(path: Path) -> str:
    return path.relative_to(EVENTS).as_posix()


def _load(path: Path) -> dict[str, Any]:
    event = json.loads(path.read_text())
    assert isinstance(event, dict), f"{_name(path)}: an event is a JSON object"
    return event


def _is_http(event: dict[str, Any]) -> bool:
    return event.get("version") == "2.0" and "routeKey" in event


def _header(headers: dict[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


# ---------------------------------------------------------------- the set of samples


def test_there_are_sample_events() -> None:
    assert EVENT_FILES, "events/<function>/*.json holds no sample events"


@pytest.mark.parametrize("folder", sorted({p.parent.name for p in EVENT_FILES}))
def test_event_folder_names_a_function(folder: str) -> None:
    assert folder in FOLDER_TO_FUNCTION, (
        f"events/{folder}/ matches no function's CodeUri folder; folders of template.yaml's functions: "
        f"{sorted(FOLDER_TO_FUNCTION)}"
    )


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_every_function_has_a_sample_event(logical_id: str) -> None:
    folder = _folder_of(logical_id)
    assert sample_events(f"{folder}/*.json"), f"{logical_id} has no sample event in events/{folder}/"


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.function}:{r.route_key}" for r in ROUTES])
def test_every_http_route_has_a_sample_event(route: Route) -> None:
    folder = _folder_of(route.function)
    route_keys = {_load(p).get("routeKey") for p in sample_events(f"{folder}/*.json")}
    assert route.route_key in route_keys, (
        f"no sample in events/{folder}/ for {route.function}'s route {route.route_key!r}; samples cover {route_keys}"
    )


# ---------------------------------------------------------------- each sample


@pytest.mark.parametrize("path", EVENT_FILES, ids=_name)
def test_sample_event_is_consistent(path: Path) -> None:
    """A payload-v2 event as API Gateway would build it for that route: every copy of a fact agrees."""
    event = _load(path)
    logical_id = FOLDER_TO_FUNCTION.get(path.parent.name)
    assert logical_id is not None, f"{_name(path)}: no function for events/{path.parent.name}/"
    if not _is_http(event):
        return  # not an API Gateway event (SQS, Step Functions, ...): replayed below, nothing more to compare
    name = _name(path)
    context = event["requestContext"]
    method, route_path = event["routeKey"].split(" ", 1)
    routes = [r for r in TEMPLATE.routes() if r.function == logical_id and r.route_key == event["routeKey"]]
    assert routes, f"{name}: routeKey {event['routeKey']!r} is not a route of {logical_id} in template.yaml"
    assert context["routeKey"] == event["routeKey"], f"{name}: requestContext.routeKey != routeKey"
    assert context["http"]["method"] == method, f"{name}: requestContext.http.method != the routeKey's method"
    assert context["http"]["path"] == event["rawPath"], f"{name}: requestContext.http.path != rawPath"
    matched = CompiledRoute.of(routes[0]).pattern.match(event["rawPath"])
    assert matched, f"{name}: rawPath {event['rawPath']!r} does not match the route {route_path!r}"
    assert event.get("pathParameters", {}) == matched.groupdict(), f"{name}: pathParameters disagree with rawPath"
    query: dict[str, str] = {}
    for key, value in parse_qsl(event.get("rawQueryString", ""), keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    assert event.get("queryStringParameters", {}) == query, (
        f"{name}: queryStringParameters disagree with rawQueryString"
    )
    assert all(k == k.lower() for k in event.get("headers", {})), f"{name}: HTTP API lower-cases header names"
    assert isinstance(context.get("requestId"), str) and context["requestId"], f"{name}: requestContext.requestId"
    if method in {"GET", "HEAD", "DELETE"}:
        assert "body" not in event, f"{name}: a {method} request has no body"


def _body(response: dict[str, Any]) -> bytes:
    body = response.get("body") or ""
    return base64.b64decode(body) if response.get("isBase64Encoded") else body.encode("utf-8")


def _assert_well_formed(name: str, response: Any) -> None:
    assert isinstance(response, dict) and "statusCode" in response, f"{name}: not a payload-v2 response: {response!r}"
    status = response["statusCode"]
    assert isinstance(status, int) and not isinstance(status, bool), f"{name}: statusCode {status!r} is not an int"
    assert 200 <= status < 500, f"{name}: status {status}: {response.get('body')!r}"
    headers = response.get("headers")
    assert isinstance(headers, dict) and headers, f"{name}: no response headers"
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()), f"{name}: headers {headers}"
    body = _body(response)
    if status in (204, 304):
        assert body == b"", f"{name}: a {status} has no body, got {body[:200]!r}"
        return
    content_type = (_header(headers, "content-type") or "").split(";")[0].strip()
    parsed = json.loads(body)  # every response of this API is JSON
    if status >= 400:
        assert content_type == "application/problem+json", f"{name}: a {status} is problem+json, got {content_type!r}"
        assert set(parsed) >= PROBLEM_FIELDS, f"{name}: problem lacks {PROBLEM_FIELDS - set(parsed)}: {parsed}"
        assert parsed["status"] == status, f"{name}: problem status {parsed['status']} != statusCode {status}"
    else:
        assert content_type == "application/json", f"{name}: expected application/json, got {content_type!r}"


# ---------------------------------------------------------------- the response files


def readable(printed: Any) -> Any:
    """What `make invoke` printed, as a response file holds it: an HTTP response's body parsed (as DECODE_BODY=1
    prints it) beside its status and headers, and the VOLATILE_KEYS left out."""
    if isinstance(printed, dict) and "statusCode" in printed:
        body = _body(printed)
        printed = {
            "statusCode": printed["statusCode"],
            "headers": printed.get("headers", {}),
            "body": json.loads(body) if body else None,
        }
    return _without_volatile(printed)


def _without_volatile(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_volatile(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_without_volatile(item) for item in value]
    return value


def mismatches(expected: Any, actual: Any, where: str = "") -> list[str]:
    """How `actual` departs from `expected` (events/README.md): every key of an expected object is in the actual one
    with a matching value (the actual object may have more keys); lists match item by item and have the same
    length; anything else is equal."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where or '.'}: expected an object, got {actual!r}"]
        return [
            problem
            for key, value in expected.items()
            for problem in (
                mismatches(value, actual[key], f"{where}.{key}") if key in actual else [f"{where}.{key}: missing"]
            )
        ]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where or '.'}: expected a list of {len(expected)}, got {actual!r}"]
        return [
            problem
            for index, (e, a) in enumerate(zip(expected, actual, strict=True))
            for problem in mismatches(e, a, f"{where}[{index}]")
        ]
    if expected != actual or type(expected) is not type(actual):
        return [f"{where or '.'}: expected {expected!r}, got {actual!r}"]
    return []


def test_mismatches_follow_the_rules_events_readme_states() -> None:
    actual = {"statusCode": 200, "body": {"id": "x", "lines": [{"sku": "A", "quantity": 1}], "total": 5}}
    assert mismatches({"statusCode": 200, "body": {"lines": [{"sku": "A"}]}}, actual) == []
    assert mismatches({"body": {"lines": []}}, actual) == [
        ".body.lines: expected a list of 0, got [{'sku': 'A', 'quantity': 1}]"
    ]
    assert mismatches({"body": {"total": 6}}, actual) == [".body.total: expected 6, got 5"]
    assert mismatches({"body": {"total": 5.0}}, actual) == [".body.total: expected 5.0, got 5"]
    assert mismatches({"body": {"missing": None}}, actual) == [".body.missing: missing"]
    assert mismatches({"body": {"lines": [{"quantity": True}]}}, actual) == [
        ".body.lines[0].quantity: expected True, got 1"
    ]


class DemoData:
    """A local cloud of this module's own with the demo data, put back as seeded before each sample: `make invoke`
    starts a fresh cloud for every sample, so each answers on the demo data as seeded, whatever ran before it."""

    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud
        self._dynamodb = cloud.client("dynamodb")
        self._tables = {
            self.cloud.physical_id(t): self._key_names(self.cloud.physical_id(t))
            for t in cloud.template.of_type("AWS::DynamoDB::Table")
        }
        self._seeded = {table: self._items(table) for table in self._tables}
        self._orders = OrderRepository(self._dynamodb, cloud.physical_id("OrdersTable"))
        self._workflow = cloud.physical_id("OrderWorkflow")

    def _key_names(self, table: str) -> list[str]:
        return [key["AttributeName"] for key in self._dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]]

    def _items(self, table: str) -> dict[str, dict[str, Any]]:
        items: dict[str, dict[str, Any]] = {}
        request: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
        while True:
            page = self._dynamodb.scan(**request)
            for item in page["Items"]:
                items[json.dumps([item[k] for k in self._tables[table]], sort_keys=True)] = item
            if "LastEvaluatedKey" not in page:
                return items
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def restore(self) -> None:
        """Every table holds exactly its seeded items again (only what differs is written)."""
        for table, seeded in self._seeded.items():
            current = self._items(table)
            for key, item in current.items():
                if key not in seeded:
                    self._dynamodb.delete_item(TableName=table, Key={k: item[k] for k in self._tables[table]})
            for key, item in seeded.items():
                if current.get(key) != item:
                    self._dynamodb.put_item(TableName=table, Item=item)

    def settle(self, seconds: float = 30) -> None:
        """Wait until every order workflow a sample started stands still (its order awaiting payment, or ended), so
        that nothing it does lands on the next sample's demo data."""
        stepfunctions = self.cloud.client("stepfunctions")
        deadline = time.monotonic() + seconds
        for execution in stepfunctions.list_executions(stateMachineArn=self._workflow, statusFilter="RUNNING")[
            "executions"
        ]:
            while (order := self._orders.get(execution["name"])) is not None and order.status == OrderStatus.PENDING:
                assert time.monotonic() < deadline, f"the workflow of order {order.id} is still pending"
                time.sleep(0.05)


@pytest.fixture(scope="module")
def demo_data() -> Iterator[DemoData]:
    with LocalCloud(
        stack_name="samples",
        poll_queues=False,
        parameter_overrides={"AllowedOrigins": "http://localhost:*,http://127.0.0.1:*", "ImageBaseUrl": LOCAL_DEV_URL},
    ) as cloud:  # as `make invoke` runs it
        seed(cloud)
        yield DemoData(cloud)


@pytest.mark.parametrize("path", EVENT_FILES, ids=_name)
def test_sample_answers_as_its_response_file_says(
    demo_data: DemoData, path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = _name(path)
    event = _load(path)
    demo_data.restore()

    result, failed = run_invoke(demo_data.cloud, FOLDER_TO_FUNCTION[path.parent.name], event)
    demo_data.settle()
    capsys.readouterr()  # the function's logs and the REPORT line: stderr under `make invoke`

    assert not failed, f"{name}: the function raised: {json.dumps(result, indent=2)}"
    printed = json.loads(printed_result(result, failed, decode_body=False))  # stdout of `make invoke`
    if _is_http(event):
        _assert_well_formed(name, printed)
        json.loads(printed_result(result, failed, decode_body=True))  # stdout of `make invoke ... DECODE_BODY=1`
    expected_file = response_file(path)
    paste = json.dumps(readable(printed), indent=2, ensure_ascii=False)
    assert expected_file.is_file(), (
        f"{name} has no {expected_file.name}; what it answers now (check it, then trim what a reader needs):\n{paste}"
    )
    problems = mismatches(json.loads(expected_file.read_text()), readable(printed))
    assert not problems, (
        f"{name} answers otherwise than {expected_file.name} says:\n"
        + "\n".join(problems)
        + f"\nwhat it answers now:\n{paste}"
    )


@pytest.mark.parametrize("folder", sorted({p.parent.name for p in EVENT_FILES}))
def test_each_folder_says_what_its_samples_do_to_the_demo_data(folder: str) -> None:
    readme = EVENTS / folder / "README.md"
    assert readme.is_file(), f"events/{folder}/README.md is missing: a line per sample, what it does to the demo data"
    text = readme.read_text()
    for sample in sample_events(f"{folder}/*.json"):
        assert f"`{sample.name}`" in text, f"events/{folder}/README.md does not mention `{sample.name}`"


def test_every_response_file_belongs_to_a_sample() -> None:
    for response in sorted(EVENTS.glob(f"*/*{RESPONSE_SUFFIX}")):
        sample = response.with_name(response.name.removesuffix(RESPONSE_SUFFIX) + ".json")
        assert sample.is_file(), f"{_name(response)} answers no sample: {_name(sample)} does not exist"
