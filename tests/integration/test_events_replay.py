"""The sample events in events/<function>/*.json: consistent, complete, and accepted by the real handlers.

events/<folder>/ belongs to the function whose CodeUri folder is named <folder> (functions/catalog/ -> catalog
-> CatalogFunction). Every function has at least one sample, every HTTP route of a function has one, and each
sample is replayed through the local cloud exactly as `sam local invoke <Function> -e <file>` would hand it over.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qsl

import pytest

from local_cloud.gateway import CompiledRoute
from local_cloud.template import Route, Template

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
EVENT_FILES = sorted(EVENTS.glob("*/*.json"))
TEMPLATE = Template.load()
FUNCTIONS = sorted(TEMPLATE.of_type("AWS::Serverless::Function"))
ROUTES = sorted(TEMPLATE.routes(), key=lambda r: (r.function, r.path, r.method))

# What a sample must answer when replayed against the demo data (samples not listed: anything but a 5xx).
EXPECTED_STATUS = {
    "catalog/list-products.json": 200,
    "catalog/list-products-by-category.json": 200,
    "catalog/get-product.json": 200,
    "catalog/get-product-unknown.json": 404,
    "catalog/list-categories.json": 200,
    # get-product-if-none-match.json: 304 while the ETag in it is current, else 200 (checked below)
}
PROBLEM_FIELDS = {"type", "title", "status", "detail", "code"}


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
        f"{sorted(FOLDER_TO_FUNCTION)}")


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_every_function_has_a_sample_event(logical_id: str) -> None:
    folder = _folder_of(logical_id)
    assert list((EVENTS / folder).glob("*.json")), f"{logical_id} has no sample event in events/{folder}/"


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.function}:{r.route_key}" for r in ROUTES])
def test_every_http_route_has_a_sample_event(route: Route) -> None:
    folder = _folder_of(route.function)
    route_keys = {_load(p).get("routeKey") for p in (EVENTS / folder).glob("*.json")}
    assert route.route_key in route_keys, (
        f"no sample in events/{folder}/ for {route.function}'s route {route.route_key!r}; samples cover {route_keys}")


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
    assert event.get("queryStringParameters", {}) == query, f"{name}: queryStringParameters disagree with rawQueryString"
    assert all(k == k.lower() for k in event.get("headers", {})), f"{name}: HTTP API lower-cases header names"
    assert isinstance(context.get("requestId"), str) and context["requestId"], f"{name}: requestContext.requestId"
    if method in {"GET", "HEAD", "DELETE"}:
        assert "body" not in event, f"{name}: a {method} request has no body"


def _invoke(cloud: Any, logical_id: str, event: dict[str, Any]) -> Any:
    from local_cloud.functions import FunctionError

    try:
        return cloud.functions[logical_id].invoke(copy.deepcopy(event))
    except FunctionError as error:
        pytest.fail(f"{logical_id} raised on the sample event: {json.dumps(error.payload, indent=2)}")


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
        assert PROBLEM_FIELDS <= set(parsed), f"{name}: problem lacks {PROBLEM_FIELDS - set(parsed)}: {parsed}"
        assert parsed["status"] == status, f"{name}: problem status {parsed['status']} != statusCode {status}"
    else:
        assert content_type == "application/json", f"{name}: expected application/json, got {content_type!r}"


@pytest.mark.parametrize("path", EVENT_FILES, ids=_name)
def test_sample_event_replays(cloud: Any, path: Path) -> None:
    event = _load(path)
    name = _name(path)
    logical_id = FOLDER_TO_FUNCTION[path.parent.name]
    response = _invoke(cloud, logical_id, event)
    if "Records" in event:  # a batch (SQS, DynamoDB stream): every record processed, none reported failed
        assert response == {"batchItemFailures": []}, f"{name}: {response}"
        return
    if not _is_http(event):
        return  # reaching here means the handler accepted it without raising
    _assert_well_formed(name, response)
    status = response["statusCode"]
    if name in EXPECTED_STATUS:
        assert status == EXPECTED_STATUS[name], f"{name}: expected {EXPECTED_STATUS[name]}, got {status}: {_body(response)[:300]!r}"
    if_none_match = _header(event.get("headers", {}), "if-none-match")
    if if_none_match is not None:
        # A conditional GET: compare with the same request without the condition, as it stands right now.
        plain = copy.deepcopy(event)
        plain["headers"] = {k: v for k, v in plain["headers"].items() if k.lower() != "if-none-match"}
        baseline = _invoke(cloud, logical_id, plain)
        current = _header(baseline["headers"], "etag")
        if baseline["statusCode"] == 200 and current in {t.strip() for t in if_none_match.split(",")}:
            assert status == 304, f"{name}: If-None-Match carries the current ETag {current}, expected 304, got {status}"
            assert _header(response["headers"], "etag") == current, f"{name}: a 304 repeats the current ETag"
        else:
            assert status == baseline["statusCode"], f"{name}: a stale If-None-Match changes nothing, got {status}"


# ---------------------------------------------------------------- the documented command line


def _cli_env() -> dict[str, str]:
    """The environment `make invoke` gives the command: no AWS account, no endpoint of this test session."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    env.update({"PYTHONPATH": f"{ROOT / 'layers' / 'storefront'}{os.pathsep}{ROOT}", "SAM_CLI_TELEMETRY": "0",
                "PYTHONDONTWRITEBYTECODE": "1"})
    return env


@pytest.fixture(scope="module")
def cli_runs() -> dict[str, subprocess.CompletedProcess[str]]:
    """`python -m local_cloud invoke CatalogFunction -e <event>`, each a fresh local cloud with the demo data."""
    samples = ["events/catalog/get-product.json", "events/catalog/get-product-if-none-match.json"]
    processes = {
        sample: subprocess.Popen([sys.executable, "-m", "local_cloud", "invoke", "CatalogFunction", "-e", sample],
                                 cwd=ROOT, env=_cli_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        for sample in samples
    }
    results = {}
    try:
        for sample, process in processes.items():
            stdout, stderr = process.communicate(timeout=120)
            results[sample] = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    return results


def _cli_response(run: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert run.returncode == 0, f"exit {run.returncode}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    try:
        return json.loads(run.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"stdout is not one JSON document:\n{run.stdout}\nstderr:\n{run.stderr}")


def test_cli_invoke_get_product(cli_runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    response = _cli_response(cli_runs["events/catalog/get-product.json"])
    _assert_well_formed("CLI get-product.json", response)
    assert response["statusCode"] == 200
    assert json.loads(_body(response))["id"] == "linen-shirt"


def test_cli_invoke_if_none_match_sample_is_current(cli_runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    """The sample's ETag is the demo linen shirt's: `make invoke` with it shows the 304 it is there to show.
    If this fails after a change to the demo data or the Product shape, put the new ETag in the sample."""
    response = _cli_response(cli_runs["events/catalog/get-product-if-none-match.json"])
    _assert_well_formed("CLI get-product-if-none-match.json", response)
    fresh = _cli_response(cli_runs["events/catalog/get-product.json"])
    assert response["statusCode"] == 304, (
        f"expected 304; the demo linen shirt's ETag is now {_header(fresh['headers'], 'etag')}")
