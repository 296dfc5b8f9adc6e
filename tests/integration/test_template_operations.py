"""template.yaml's operations: alarms, the dashboard and the throttles cover whatever the template holds. Written
for ANY function, table, queue and route, so that one added later fails here until it is watched too."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
from storefront.observability import BUSINESS_DIMENSIONS

from local_cloud.template import Template, load_yaml

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "docs" / "observability.md"
CUSTOM_NAMESPACE = {"Fn::Sub": "Storefront/${AWS::StackName}"}


@pytest.fixture(scope="module")
def template() -> Template:
    return Template(load_yaml((ROOT / "template.yaml").read_text()))


def _ref(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1:
        ((name, arg),) = value.items()
        if name == "Ref":
            return str(arg)
        if name == "Fn::GetAtt":
            return str(arg[0] if isinstance(arg, list) else arg.split(".", 1)[0])
    return None


def _watched(alarm: dict[str, Any]) -> list[tuple[Any, str, dict[str, str | None]]]:
    """(namespace, metric, {dimension: the logical id it refers to, or its literal}) of every metric an alarm reads."""
    props = alarm["Properties"]
    metrics = (
        [props]
        if "MetricName" in props
        else [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]
    )
    return [
        (m["Namespace"], m["MetricName"], {d["Name"]: _ref(d["Value"]) or d["Value"] for d in m.get("Dimensions", [])})
        for m in metrics
    ]


def _alarms(template: Template) -> dict[str, dict[str, Any]]:
    return template.of_type("AWS::CloudWatch::Alarm")


def _alarmed(template: Template, namespace: str, metric: str, dimension: str) -> set[str]:
    return {
        dims.get(dimension)
        for alarm in _alarms(template).values()
        for ns, name, dims in _watched(alarm)
        if ns == namespace and name == metric
    } - {None}  # type: ignore[return-value]


def test_every_function_has_an_errors_and_a_throttles_alarm(template: Template) -> None:
    functions = set(template.of_type("AWS::Serverless::Function"))
    assert functions
    assert not functions - _alarmed(template, "AWS/Lambda", "Errors", "FunctionName"), "functions without Errors alarm"
    assert not functions - _alarmed(template, "AWS/Lambda", "Throttles", "FunctionName"), "without a Throttles alarm"


def test_every_table_has_a_throttling_alarm(template: Template) -> None:
    tables = set(template.of_type("AWS::DynamoDB::Table"))
    for metric in ("ReadThrottleEvents", "WriteThrottleEvents"):
        assert not tables - _alarmed(template, "AWS/DynamoDB", metric, "TableName"), f"tables without {metric}"


def test_every_dead_letter_queue_alarms_when_not_empty_and_every_other_queue_when_old(template: Template) -> None:
    queues = template.of_type("AWS::SQS::Queue")
    resources = template.data["Resources"]
    dead_letter = {
        _ref(q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        for q in queues.values()
        if "RedrivePolicy" in q["Properties"]
    }
    dead_letter |= {
        _ref(r["Properties"].get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"))
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
    }
    dead_letter |= {
        _ref(t.get("DeadLetterConfig", {}).get("Arn"))
        for r in resources.values()
        if r["Type"] == "AWS::Events::Rule"
        for t in r["Properties"].get("Targets", [])
    }
    dead_letter |= {
        _ref(r["Properties"].get("RedrivePolicy", {}).get("deadLetterTargetArn"))
        for r in resources.values()
        if r["Type"] == "AWS::SNS::Subscription"
    }
    dead_letter -= {None}
    assert dead_letter and dead_letter <= set(queues)
    assert dead_letter <= _alarmed(template, "AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName")
    for logical_id, alarm in _alarms(template).items():
        for _, metric, _dims in _watched(alarm):
            if metric == "ApproximateNumberOfMessagesVisible":
                props = alarm["Properties"]
                assert (props["Threshold"], props["ComparisonOperator"]) == (0, "GreaterThanThreshold"), logical_id
    working = set(queues) - dead_letter
    assert working and not working - _alarmed(template, "AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName")


def test_the_api_saga_and_business_alarms_exist(template: Template) -> None:
    watched = {
        (ns if isinstance(ns, str) else "custom", metric)
        for alarm in _alarms(template).values()
        for ns, metric, _ in _watched(alarm)
    }
    assert {
        ("AWS/ApiGateway", "5xx"),
        ("AWS/ApiGateway", "Count"),
        ("AWS/ApiGateway", "Latency"),
        ("AWS/States", "ExecutionsFailed"),
        ("AWS/States", "ExecutionsTimedOut"),
        ("AWS/States", "ExecutionThrottled"),
        ("custom", "WebhookSignaturesInvalid"),
        ("custom", "OrdersPaid"),
        ("custom", "PaymentsDeclined"),
        ("custom", "CheckoutsBusy"),
    } <= watched
    rate = _alarms(template)["PaymentSuccessRateAlarm"]["Properties"]
    expression = next(m["Expression"] for m in rate["Metrics"] if "Expression" in m)
    assert expression.startswith("IF(") and ">=" in expression, "the rate needs a minimum volume to mean something"


def test_every_alarm_reaches_the_topic_says_what_missing_data_means_and_has_a_runbook(template: Template) -> None:
    runbooks = RUNBOOKS.read_text()
    anchors = set(re.findall(r'<a id="([a-z0-9-]+)"></a>', runbooks))
    # The doc names most alarms, and the per-function ones by a pattern: `<Function>ErrorsAlarm`.
    patterns = [
        re.compile(
            "("
            + "|".join(f.removesuffix("Function") for f in template.of_type("AWS::Serverless::Function"))
            + ")"
            + suffix
        )
        for suffix in re.findall(r"`<Function>(\w+)`", runbooks)
    ]
    for logical_id, alarm in _alarms(template).items():
        props = alarm["Properties"]
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}], logical_id
        assert props["OKActions"] == [{"Ref": "AlarmTopic"}], logical_id
        assert props.get("TreatMissingData") in {"notBreaching", "breaching", "ignore", "missing"}, logical_id
        linked = re.findall(r"docs/observability\.md#([a-z0-9-]+)", props["AlarmDescription"])
        assert linked, f"{logical_id}: the description names no runbook"
        assert set(linked) <= anchors, f"{logical_id}: docs/observability.md has no runbook {linked}"
        assert f"`{logical_id}`" in runbooks or any(p.fullmatch(logical_id) for p in patterns), (
            f"{logical_id} is not listed in docs/observability.md"
        )


def _counted_metrics() -> set[str]:
    """Every business metric the code counts: literal names passed to count()/milliseconds(), and the values of
    the dicts of metric names the services keep (ORDER_ENDED_METRICS, STATUS_METRICS)."""
    names: set[str] = set()
    for path in (ROOT / "layers" / "storefront" / "storefront").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) in {"count", "milliseconds"}
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names.add(node.args[0].value)
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "").endswith("_METRICS") for t in node.targets):
                names |= {v.value for v in getattr(node.value, "values", []) if isinstance(v, ast.Constant)}
    for path in (ROOT / "functions").rglob("app.py"):
        names |= set(re.findall(r'(?:count|milliseconds)\("(\w+)"', path.read_text()))
    return names


def test_business_alarms_and_widgets_read_metrics_the_code_counts_where_it_counts_them(template: Template) -> None:
    namespace = template.data["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    assert namespace == CUSTOM_NAMESPACE
    counted = _counted_metrics()
    assert {"OrdersPlaced", "OrdersPaid", "PaymentsDeclined", "CheckoutsRateLimited"} <= counted
    for logical_id, alarm in _alarms(template).items():
        for ns, metric, dims in _watched(alarm):
            if ns == CUSTOM_NAMESPACE:
                assert metric in counted, f"{logical_id} watches {metric}, which nothing counts"
                assert dims == BUSINESS_DIMENSIONS, f"{logical_id}: business metrics carry {BUSINESS_DIMENSIONS}"
    body = _dashboard(template)
    for widget in body["widgets"]:
        for row in widget.get("properties", {}).get("metrics", []):
            if row and row[0] == "Storefront/${AWS::StackName}":
                assert row[1] in counted and row[2:4] == [*next(iter(BUSINESS_DIMENSIONS.items()))], row


def _dashboard_source(template: Template) -> str:
    dashboards = template.of_type("AWS::CloudWatch::Dashboard")
    assert len(dashboards) == 1
    return next(iter(dashboards.values()))["Properties"]["DashboardBody"]["Fn::Sub"]


def _dashboard(template: Template) -> dict[str, Any]:
    return json.loads(_dashboard_source(template))  # ${...} placeholders sit inside JSON strings


def test_every_dashboard_metric_row_is_what_put_dashboard_accepts(template: Template) -> None:
    """PutDashboard refuses a metrics row that is not strings with at most one options object, last (a row nested
    in another once rolled a whole stack back at deploy; no linter looks inside DashboardBody)."""
    for widget in _dashboard(template)["widgets"]:
        for row in widget.get("properties", {}).get("metrics", []):
            where = f"{widget['properties'].get('title')}: {row}"
            assert isinstance(row, list) and row, where
            *names, last = row
            assert all(isinstance(name, str) for name in names), where
            assert isinstance(last, (str, dict)), where
            if isinstance(last, dict) and "expression" in last:
                assert names == [], where  # an expression row holds the options object alone


def test_the_dashboard_shows_every_function_table_queue_and_route_group(template: Template) -> None:
    source = _dashboard_source(template)
    body = _dashboard(template)
    assert len(body["widgets"]) >= 15
    for logical_id in template.of_type("AWS::Serverless::Function"):
        assert source.count("${" + logical_id + "}") >= 3, f"{logical_id}: errors, throttles, concurrency"
    for logical_id in template.of_type("AWS::DynamoDB::Table"):
        assert "${" + logical_id + "}" in source, f"no throttling widget line for {logical_id}"
    for logical_id in template.of_type("AWS::SQS::Queue"):
        assert "${" + logical_id + ".QueueName}" in source, f"{logical_id} is not on the dashboard"
    # Every route falls in a route group: one of the groups' Route= terms is a word of its path.
    terms = set(re.findall(r"Route=(\w+)", source)) - {"admin"}
    for route in template.routes():
        words = set(re.findall(r"\w+", route.path.replace("-", " ")))
        assert words & (terms | {"admin"}), f"{route.route_key} is in no route group of the dashboard"
    for name in re.findall(r"\$\{([A-Za-z0-9:.]+)\}", source):
        target = name.split(".", 1)[0]
        assert target.startswith("AWS::") or target in template.data["Resources"], f"unknown ${{{name}}}"


def test_throttled_routes_keep_the_detailed_metrics_setting(template: Template) -> None:
    """A route's settings replace the stage's defaults whole: each must repeat DetailedMetricsEnabled."""
    api = template.of_type("AWS::Serverless::HttpApi")["HttpApi"]["Properties"]
    default = api["DefaultRouteSettings"]["DetailedMetricsEnabled"]
    for route_key, settings in api["RouteSettings"].items():
        assert settings.get("DetailedMetricsEnabled") == default, route_key
        assert {"ThrottlingBurstLimit", "ThrottlingRateLimit"} <= set(settings), route_key
