"""Black Friday capacity model: the load a peak puts on every AWS quota the stack meets, the first one it hits,
and the stack's ceiling as deployed.

    PYTHONPATH=layers/storefront:. .venv/bin/python -m benchmarks.capacity --orders-per-second 100 \\
        --views-per-second 2000 [--hit-ratio 0.9] [--region us-east-1] [--json]

What it reads, every run (nothing about the stack's shape is written here):
  template.yaml       functions (memory, timeout, reserved and provisioned concurrency, the secrets their policies
                      name), HTTP API routes and their throttles, tables (billing mode, indexes, streams, warm and
                      maximum throughput), queues and event source mappings (batch size, window, maximum
                      concurrency), the state machine and its DefinitionSubstitutions
  statemachines/*     the order workflow's ASL: each path (PATHS below) is walked as Step Functions runs it, so
                      its state transitions, Lambda tasks, retries, callbacks and queue messages are counted
                      (benchmarks/capacity_asl.py); a path that no longer fits the ASL stops the model
  capacity_profile.json  what one unit of work costs (DynamoDB units per table, index and hot item, items written,
                      AWS calls, duration), measured on the local cloud by benchmarks/capacity_profile.py
  capacity_quotas.py  the quotas, by region, each with its source

What it assumes (declared below, each with why): how a shopper goes from cart to order (JOURNEY), what a catalog
view is (VIEW_MIX), how orders end (--mix), how much of the peak is one doorbuster SKU (--hot-sku-share), how long
things take on AWS (durations), and the catalog's CDN hit ratio (--hit-ratio; the template has no CDN today).
docs/capacity.md explains the model, its sources and the ceiling.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from storefront.integration_events import ORDER_EVENT_TYPES
from storefront.inventory.repository import MAX_ATTEMPTS
from storefront.secrets import SECRET_CACHE_SECONDS

from benchmarks.capacity_asl import Path as WorkflowPath
from benchmarks.capacity_asl import PathError, PathSpec, invocations_on_error, walk
from benchmarks.capacity_quotas import CHECKED, QUOTAS, TRANSACTION_HOLD_MS, TRANSACTIONS_COST_DOUBLE, Quota
from local_cloud.template import TEMPLATE_PATH, Template

ROOT = Path(__file__).resolve().parent.parent
PROFILE_PATH = Path(__file__).with_name("capacity_profile.json")  # written by benchmarks/capacity_profile.py


class ModelError(Exception):
    """The model's declarations no longer fit the template, the ASL or the profile: fix them, don't guess."""


# ---------------------------------------------------------------- the order workflow's paths

PATHS = [
    PathSpec(
        "paid",
        "reserved, paid, committed and enqueued for fulfilment",
        facts={"$.stock.outcome": ["reserved"]},
        must_run=("reserve", "create_payment", "await_payment", "commit", "mark_paid", "sqs:sendMessage"),
    ),
    PathSpec(
        "declined",
        "reserved, declined MaxPaymentAttempts times, the payment cancelled, the stock released",
        facts={"$.stock.outcome": ["reserved"], "$.marked.Payload.paid": [False]},
        failures={"await_payment": ["PaymentFailed"]},
        must_run=("reserve", "cancel_payment", "mark_payment_failed", "release"),
        must_not_run=("commit",),
    ),
    PathSpec(
        "expired",
        "reserved, nobody paid in time, the payment cancelled, the stock released",
        facts={
            "$.stock.outcome": ["reserved"],
            "$.cancel.outcome": ["canceled", "canceled"],
            "$.marked.Payload.paid": [False],
        },
        failures={"await_payment": ["States.Timeout"]},
        must_run=("reserve", "cancel_payment", "mark_expired", "release"),
        must_not_run=("commit",),
    ),
    PathSpec(
        "rejected",
        "not enough stock at reservation",
        facts={"$.stock.outcome": ["rejected"]},
        must_run=("reserve", "mark_rejected"),
        must_not_run=("create_payment",),
    ),
]
# How orders end on the day (an assumption: measure yours). A flash sale rejects more.
DEFAULT_MIX = {"paid": 0.85, "declined": 0.05, "expired": 0.07, "rejected": 0.03}
# How long an execution stays open, by path: the shopper pays or is declined within minutes (an assumption);
# an expired one waits the template's PaymentTimeoutSeconds; a rejected one ends at once.
CUSTOMER_SECONDS = 120
OPEN_SECONDS = {"paid": CUSTOMER_SECONDS, "declined": CUSTOMER_SECONDS, "expired": None, "rejected": 1}
# The HTTP route that completes each callback task (the provider's webhook sends SendTaskSuccess/Failure).
CALLBACK_ROUTES = {"await_payment": "POST /webhooks/payments/{provider}"}
# The integration events each path publishes within the peak (storefront/integration_events.py: one per status the
# order enters). A paid order ships within the hour, as the fulfilment mapping drains; order.delivered comes days
# later and is left out. Which of them reach a queue (and an email) is the template's rules' business.
EVENTS = {
    "paid": ("order.placed", "order.paid", "order.shipped"),
    "declined": ("order.placed", "order.payment_failed"),
    "expired": ("order.placed", "order.expired"),
    "rejected": ("order.placed", "order.rejected"),
}
# One hot item: the share of orders that may run out of the stock function's and the workflow's retries on
# TransactionConflict before the model calls the item full (docs/capacity.md, "One hot SKU").
ORDERS_LOST_TO_CONTENTION = 0.001
# ... and the share of stock invocations that may run out of their own retries (MAX_ATTEMPTS) and wait seconds for
# the workflow's Retry: past it, reservations of the hot SKU slow down (a note, not a limit).
INVOCATIONS_RETRIED_BY_THE_WORKFLOW = 0.01

# ---------------------------------------------------------------- what shoppers do (declared)

# Requests per order besides the workflow: the cart, checkout, and the frontend's order reads (two, as
# benchmarks/order_cost.py measures: one for the client_secret, one for the result). One line per order, as the
# profile measures; the carrier's tracking webhooks come days later and are not part of the peak.
JOURNEY = {
    "POST /carts": 1,
    "POST /carts/{cart_id}/items": 1,
    "GET /carts/{cart_id}": 1,
    "GET /shipping-methods": 1,
    "PUT /carts/{cart_id}/shipping": 1,
    "POST /checkout": 1,
    "GET /orders/{order_id}": 2,
}
# A catalog view is one of these requests (an assumption: most views are product pages).
VIEW_MIX = {"GET /products/{product_id}": 0.70, "GET /products": 0.25, "GET /categories": 0.05}
# The doorbuster: a share of orders and of product pages is one SKU, and it is on every listing page.
DEFAULT_HOT_SKU_SHARE = 0.2
# The catalog's cache hit ratio at a sale's peak behind the optional edge (Edge=true): docs/observability.md, "The
# edge", derives it (about 50 cacheable catalog URLs, 30 s max-age, 13 regional edge caches).
EDGE_HIT_RATIO = 0.9

# ---------------------------------------------------------------- how long work takes on AWS (an estimate)

# The profile's durations are in-process on the local cloud, where an AWS call costs moto's time, not a network
# round trip. On AWS: the local time, plus AWS_CALL_MS for each AWS call the work makes (DynamoDB's single-digit
# milliseconds, Step Functions' and EventBridge's some more), plus the external API it waits for. Replace any with
# --duration "<Function>: <kind>=<ms>" once you have CloudWatch's Duration p99.
AWS_CALL_MS = 10
EXTERNAL_MS = {
    "PaymentTasksFunction: create_payment": 400,  # the payment provider creates a PaymentIntent (assumed p50)
    "FulfilmentFunction: SQS batch": 500,  # the carrier creates a shipment, per message (assumed p50)
    "NotificationsFunction: SQS batch": 100,  # SES SendEmail, per message (assumed p50)
}
BATCH_KINDS = ("SQS batch", "DynamoDB stream batch")
# What the payments adapter asks Stripe per unit of work (storefront/payments/stripe_provider.py), when the template's
# PaymentProvider is stripe. Stripe counts each named operation as an endpoint with its own limit.
STRIPE_CALLS = {"PaymentTasksFunction: create_payment": {"POST /v1/payment_intents": 1}}


# ---------------------------------------------------------------- the stack, from template.yaml


@dataclass
class Function:
    logical_id: str
    memory_mb: int
    timeout_s: float
    reserved: int | None
    provisioned: int | None
    secrets: int  # secrets its policy lets it read (each cached per execution environment)


@dataclass
class Route:
    key: str
    function: str
    rate: float | None  # the route's throttle (requests/s), None: only the account's
    burst: float | None


@dataclass
class Table:
    logical_id: str
    billing: str
    indexes: list[str]
    stream: bool
    warm_rru: float | None  # WarmThroughput, if the template sets it
    warm_wru: float | None
    max_rru: float | None  # OnDemandThroughput, if the template sets it
    max_wru: float | None


@dataclass
class Mapping:
    logical_id: str
    function: str
    source: str  # logical id of the queue or table
    kind: str  # "SQS batch" | "DynamoDB stream batch"
    batch_size: int
    max_concurrency: int | None


@dataclass
class Stack:
    functions: dict[str, Function]
    routes: dict[str, Route]
    tables: dict[str, Table]
    mappings: list[Mapping]
    workflow: dict[str, Any]  # the order workflow's ASL
    substitutions: dict[str, str]  # ${Name} in the ASL -> logical id
    payment_timeout_s: float
    has_cdn: bool
    payment_provider: str = "stripe"
    event_queues: dict[str, set[str]] = field(default_factory=dict)  # queue -> event types its rules send it
    email_queues: set[str] = field(default_factory=set)  # queues whose consumer sends an email per message
    email_send_rate: float | None = None  # the template's EmailSendRate (SES's sending rate for the account)

    def resource_of(self, target: str) -> str:
        name = target.removeprefix("${").removesuffix("}")
        if name not in self.substitutions:
            raise ModelError(f"the ASL names {target}, which DefinitionSubstitutions does not define")
        return self.substitutions[name]


def load_stack(template: Template | None = None) -> Stack:
    template = template or Template.load(TEMPLATE_PATH)
    resources = template.resources

    def number(value: Any) -> float | None:
        resolved = template.resolve(value) if value is not None else None
        return float(resolved) if resolved not in (None, "") else None

    functions = {}
    for logical_id in template.of_type("AWS::Serverless::Function"):
        props = template.function_properties(logical_id)
        # An !If on ProvisionedConcurrency: resolved with the parameters (AWS::NoValue drops the key)
        config = template.resolve({"config": props.get("ProvisionedConcurrencyConfig")}).get("config") or {}
        provisioned = config.get("ProvisionedConcurrentExecutions")
        functions[logical_id] = Function(
            logical_id,
            int(number(props.get("MemorySize", 128)) or 128),
            number(props.get("Timeout", 3)) or 3,
            _int(number(props.get("ReservedConcurrentExecutions"))),
            _int(number(provisioned)),
            _secrets(props.get("Policies", [])),
        )

    routes = {}
    api_settings = {lid: r["Properties"] for lid, r in resources.items() if r["Type"] == "AWS::Serverless::HttpApi"}
    for logical_id in template.of_type("AWS::Serverless::Function"):
        for event in resources[logical_id]["Properties"].get("Events", {}).values():
            if event["Type"] != "HttpApi":
                continue
            props = event["Properties"]
            key = f"{props['Method'].upper()} {props['Path']}"
            api = api_settings.get(_ref(props.get("ApiId")) or "", {})
            settings = {**api.get("DefaultRouteSettings", {}), **api.get("RouteSettings", {}).get(key, {})}
            routes[key] = Route(
                key,
                logical_id,
                number(settings.get("ThrottlingRateLimit")),
                number(settings.get("ThrottlingBurstLimit")),
            )

    tables = {}
    for logical_id, resource in template.of_type("AWS::DynamoDB::Table").items():
        props = resource["Properties"]
        warm, maximum = props.get("WarmThroughput", {}), props.get("OnDemandThroughput", {})
        tables[logical_id] = Table(
            logical_id,
            props.get("BillingMode", "PROVISIONED"),
            [i["IndexName"] for i in template.resolve(props.get("GlobalSecondaryIndexes", []))],
            "StreamSpecification" in props,
            number(warm.get("ReadUnitsPerSecond")),
            number(warm.get("WriteUnitsPerSecond")),
            number(maximum.get("MaxReadRequestUnits")),
            number(maximum.get("MaxWriteRequestUnits")),
        )

    mappings = [
        _mapping(lid, r["Properties"], template, number)
        for lid, r in template.of_type("AWS::Lambda::EventSourceMapping").items()
    ]
    for logical_id in template.of_type("AWS::Serverless::Function"):
        for name, event in resources[logical_id]["Properties"].get("Events", {}).items():
            if event["Type"] in ("SQS", "DynamoDB"):
                props = {
                    **event["Properties"],
                    "FunctionName": {"Ref": logical_id},
                    "EventSourceArn": event["Properties"].get("Queue") or event["Properties"].get("Stream"),
                }
                mappings.append(_mapping(f"{logical_id}.{name}", props, template, number))

    event_queues: dict[str, set[str]] = defaultdict(set)
    for rule in template.of_type("AWS::Events::Rule").values():
        types = rule["Properties"].get("EventPattern", {}).get("detail-type", [])
        for target in rule["Properties"].get("Targets", []):
            queue = _ref(target.get("Arn"))
            if queue in resources and resources[queue]["Type"] == "AWS::SQS::Queue":
                event_queues[queue].update(types)
    # A queue's consumer sends email when its environment carries SES's sending rate (EMAIL_SEND_RATE).
    email_queues = {
        m.source
        for m in mappings
        if "EMAIL_SEND_RATE" in template.function_properties(m.function).get("Environment", {}).get("Variables", {})
    }
    send_rate = template.parameter("EmailSendRate") if "EmailSendRate" in template.data.get("Parameters", {}) else None

    machines = {lid: r["Properties"] for lid, r in template.of_type("AWS::Serverless::StateMachine").items()}
    workflows = {lid: p for lid, p in machines.items() if "DefinitionUri" in p}
    if len(workflows) != 1:
        raise ModelError(f"expected one state machine with a DefinitionUri, found {sorted(workflows)}")
    (machine,) = workflows.values()
    definition = json.loads((ROOT / machine["DefinitionUri"]).read_text())
    substitutions = {name: _ref(value) or "" for name, value in machine.get("DefinitionSubstitutions", {}).items()}
    return Stack(
        functions,
        routes,
        tables,
        mappings,
        definition,
        substitutions,
        float(template.parameter("PaymentTimeoutSeconds")),
        bool(template.of_type("AWS::CloudFront::Distribution")),
        str(template.parameter("PaymentProvider")),
        dict(event_queues),
        email_queues,
        None if send_rate is None else float(send_rate),
    )


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def _ref(value: Any) -> str | None:
    """The logical id a !Ref, !GetAtt or ${X.Arn} points at (a function's, for SAM's `!Ref X.Alias`)."""
    if isinstance(value, dict) and len(value) == 1:
        ((name, arg),) = value.items()
        if name == "Ref":
            return str(arg).removesuffix(".Alias")
        if name == "Fn::GetAtt":
            return str(arg[0] if isinstance(arg, list) else arg.split(".")[0])
        if name == "Fn::Sub" and isinstance(arg, str) and arg.startswith("${") and arg.endswith("}"):
            return arg[2:-1].split(".")[0]
    return None


def _secrets(policies: list[Any]) -> int:
    count = 0
    for policy in policies:
        if not isinstance(policy, dict):
            continue
        if "AWSSecretsManagerGetSecretValuePolicy" in policy:
            count += 1
        for statement in policy.get("Statement", []):
            actions = statement.get("Action", [])
            if "secretsmanager:GetSecretValue" in (actions if isinstance(actions, list) else [actions]):
                resources = statement.get("Resource", [])
                count += len(resources) if isinstance(resources, list) else 1
    return count


def _mapping(logical_id: str, props: dict[str, Any], template: Template, number: Any) -> Mapping:
    source = _ref(props.get("EventSourceArn"))
    function = _ref(props.get("FunctionName"))
    if source is None or function is None:
        raise ModelError(f"{logical_id}: cannot tell its function and source")
    kind = "SQS batch" if template.resources[source]["Type"] == "AWS::SQS::Queue" else "DynamoDB stream batch"
    default_batch = 10 if kind == "SQS batch" else 100
    return Mapping(
        logical_id,
        function,
        source,
        kind,
        int(number(props.get("BatchSize")) or default_batch),
        _int(number((props.get("ScalingConfig") or {}).get("MaximumConcurrency"))),
    )


# ---------------------------------------------------------------- what one order and one view do


@dataclass
class Demand:
    """Counts per order (or per view): units of work, API requests, and the workflow's calls."""

    work: Counter[str] = field(default_factory=Counter)  # "<Function>: <kind>" -> invocations (records for batches)
    routes: Counter[str] = field(default_factory=Counter)
    executions: float = 0.0
    transitions: float = 0.0
    send_task_success: float = 0.0
    send_task_failure: float = 0.0
    messages: Counter[str] = field(default_factory=Counter)  # queue -> messages sent
    hot: Counter[str] = field(default_factory=Counter)  # work that touches the hot SKU -> count
    emails: float = 0.0

    def add(self, other: Demand, weight: float) -> None:
        for mine, theirs in (
            (self.work, other.work),
            (self.routes, other.routes),
            (self.messages, other.messages),
            (self.hot, other.hot),
        ):
            for key, value in theirs.items():
                mine[key] += value * weight
        self.executions += other.executions * weight
        self.transitions += other.transitions * weight
        self.send_task_success += other.send_task_success * weight
        self.send_task_failure += other.send_task_failure * weight
        self.emails += other.emails * weight


def workflow_paths(stack: Stack, specs: list[PathSpec] = PATHS) -> dict[str, WorkflowPath]:
    return {spec.name: walk(stack.workflow, spec) for spec in specs}


def order_demand(stack: Stack, path: WorkflowPath, profile: dict[str, Any]) -> Demand:
    demand = Demand(executions=1, transitions=path.transitions)
    for route, count in JOURNEY.items():
        _request(stack, demand, route, count)
    for task in path.tasks:
        if task.integration == "lambda:invoke":
            function = stack.resource_of(task.target or "")
            demand.work[f"{function}: {task.action}"] += 1 + task.retries
        elif task.integration == "sqs:sendMessage":
            queue = stack.resource_of(task.target or "")
            demand.messages[queue] += 1
            for mapping in (m for m in stack.mappings if m.source == queue):
                demand.work[f"{mapping.function}: {mapping.kind}"] += 1
        else:
            raise ModelError(
                f"path {path.name!r}: task {task.state!r} uses {task.integration}, which the model "
                "does not count yet (add it to order_demand)"
            )
    for task in path.callbacks:
        if task.action not in CALLBACK_ROUTES:
            raise ModelError(
                f"callback task {task.state!r} ({task.action}): CALLBACK_ROUTES does not say which request completes it"
            )
        _request(stack, demand, CALLBACK_ROUTES[task.action], 1)
        if task.error is None:
            demand.send_task_success += 1
        else:
            demand.send_task_failure += 1
    demand.hot.update(demand.work)  # every unit of an order on the hot SKU touches it as far as its profile says
    _stream_records(stack, demand, profile)
    _events(stack, demand, path.name)
    return demand


def _events(stack: Stack, demand: Demand, path: str) -> None:
    """The path's integration events that the template's rules put on a queue: a message each (an email each when
    the queue's consumer sends email)."""
    if path not in EVENTS:
        raise ModelError(f"EVENTS does not say which integration events path {path!r} publishes")
    unknown = set(EVENTS[path]) - set(ORDER_EVENT_TYPES.values())
    if unknown:
        raise ModelError(f"EVENTS names {sorted(unknown)}, which storefront/integration_events.py does not publish")
    for event in EVENTS[path]:
        for queue, types in stack.event_queues.items():
            if event not in types:
                continue
            demand.messages[queue] += 1
            demand.emails += queue in stack.email_queues
            for mapping in (m for m in stack.mappings if m.source == queue):
                demand.work[f"{mapping.function}: {mapping.kind}"] += 1


def view_demand(stack: Stack, hot_share: float) -> Demand:
    demand = Demand()
    for route, share in VIEW_MIX.items():
        _request(stack, demand, route, share)
    for work, count in demand.work.items():
        # a product page is the hot SKU's for hot_share of views; every listing page shows it
        demand.hot[work] = count * (hot_share if work.endswith("{product_id}") else 1.0)
    return demand


def _request(stack: Stack, demand: Demand, route: str, count: float) -> None:
    if route not in stack.routes:
        raise ModelError(f"the model sends {route}, which template.yaml has no route for")
    demand.routes[route] += count
    demand.work[f"{stack.routes[route].function}: {route}"] += count


def _stream_records(stack: Stack, demand: Demand, profile: dict[str, Any]) -> None:
    """Each item written to a table with a stream is a record for the stream's consumers."""
    records: Counter[str] = Counter()
    for work, count in demand.work.items():
        for table, units in _profile_entry(profile, work)["tables"].items():
            if table in stack.tables and stack.tables[table].stream:
                records[table] += units["items_written"] * count
    for table, count in records.items():
        for mapping in (m for m in stack.mappings if m.source == table):
            demand.work[f"{mapping.function}: {mapping.kind}"] += count


def _profile_entry(profile: dict[str, Any], work: str) -> dict[str, Any]:
    if work not in profile["work"]:
        raise ModelError(f"the profile has no figures for {work!r}: rerun python -m benchmarks.capacity_profile")
    return profile["work"][work]


# ---------------------------------------------------------------- the load at a peak


@dataclass
class Peak:
    orders_per_second: float
    views_per_second: float
    hit_ratio: float = 0.0  # of catalog GETs served by a CDN in front of the API (EDGE_HIT_RATIO with Edge=true)
    region: str = "us-east-1"
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    hot_sku_share: float = DEFAULT_HOT_SKU_SHARE


@dataclass
class Row:
    service: str
    quota: str
    scope: str
    load: float
    limit: float | None
    unit: str
    adjustable: str
    to_raise: str
    source: str
    note: str = ""
    effect: str = "throttled"  # past the limit requests fail or are throttled; "queued": work waits, none is lost
    fixed: bool = False  # set by the template, not by the load
    waits: str = ""  # for "queued" rows, what waits past the limit: "shipping" or "email"

    @property
    def utilization(self) -> float:
        return self.load / self.limit if self.limit else 0.0


@dataclass
class Model:
    stack: Stack
    profile: dict[str, Any]
    paths: dict[str, WorkflowPath]
    quotas: dict[str, Quota]
    durations: dict[str, float]  # work -> ms on AWS (per invocation; per record for batches)
    transaction_hold_ms: float = TRANSACTION_HOLD_MS
    # How often the workflow invokes the stock function for a reservation that keeps meeting StockContention.
    reserve_invocations: int = 1

    @classmethod
    def build(
        cls,
        stack: Stack | None = None,
        profile: dict[str, Any] | None = None,
        quotas: dict[str, Quota] | None = None,
        duration_overrides: dict[str, float] | None = None,
        specs: list[PathSpec] | None = None,
        transaction_hold_ms: float = TRANSACTION_HOLD_MS,
    ) -> Model:
        stack = stack or load_stack()
        profile = profile or json.loads(PROFILE_PATH.read_text())
        paths = workflow_paths(stack, specs or PATHS)
        model = cls(
            stack,
            profile,
            paths,
            quotas or QUOTAS,
            {},
            transaction_hold_ms,
            invocations_on_error(stack.workflow, "reserve", "StockContention"),
        )
        for name, entry in profile["work"].items():
            calls = sum(n for call, n in entry["calls"].items() if not call.startswith("secretsmanager:"))
            model.durations[name] = entry["duration_ms"] + calls * AWS_CALL_MS + EXTERNAL_MS.get(name, 0)
        model.durations.update(duration_overrides or {})
        return model

    def demand(self, peak: Peak) -> tuple[Demand, Demand]:
        """(all the work per second, the part of it that touches the hot SKU)."""
        unknown = set(peak.mix) - set(self.paths)
        if unknown or abs(sum(peak.mix.values()) - 1) > 1e-6:
            raise ModelError(f"the mix must share 1 between the paths {sorted(self.paths)}: {peak.mix}")
        total, hot = Demand(), Demand()
        for name, share in peak.mix.items():
            order = order_demand(self.stack, self.paths[name], self.profile)
            total.add(order, peak.orders_per_second * share)
            hot.add(Demand(work=order.hot), peak.orders_per_second * share * peak.hot_sku_share)
        views = view_demand(self.stack, peak.hot_sku_share)
        origin = peak.views_per_second * (1 - peak.hit_ratio)
        total.add(views, origin)
        hot.add(Demand(work=views.hot), origin)
        return total, hot

    def open_seconds(self, path: str) -> float:
        seconds = OPEN_SECONDS[path]
        return self.stack.payment_timeout_s if seconds is None else seconds

    def rows(self, peak: Peak) -> list[Row]:
        total, hot = self.demand(peak)
        quota = self.quotas
        region = peak.region
        rows: list[Row] = []

        def add(
            key: str,
            scope: str,
            load: float,
            note: str = "",
            limit: float | None = None,
            to_raise: str = "",
            fixed: bool = False,
            effect: str = "throttled",
            waits: str = "",
        ) -> None:
            q = quota[key]
            rows.append(
                Row(
                    q.service,
                    q.name,
                    scope,
                    load,
                    q.value(region) if limit is None else limit,
                    q.unit,
                    q.adjustable,
                    to_raise or q.how_to_raise,
                    q.source.cite(),
                    note or q.burst,
                    effect=effect,
                    fixed=fixed,
                    waits=waits,
                )
            )

        # API Gateway
        add("apigw_account_rps", "all routes", sum(total.routes.values()))
        for key, route in sorted(self.stack.routes.items()):
            if total.routes[key] and route.rate is not None:
                rows.append(
                    Row(
                        "API Gateway",
                        "Route throttle (template.yaml)",
                        key,
                        total.routes[key],
                        route.rate,
                        "requests/s",
                        "yes: it is the template's",
                        "template.yaml: the HttpApi's "
                        "DefaultRouteSettings (or RouteSettings for this route) ThrottlingRateLimit",
                        "template.yaml",
                        f"burst {route.burst:g}" if route.burst else "",
                    )
                )

        # Lambda
        concurrency = self._concurrency(total)
        add(
            "lambda_concurrency",
            "all functions (account, per region)",
            sum(concurrency.values()),
            note="rate x duration per function: "
            + ", ".join(f"{f} {c:.0f}" for f, c in sorted(concurrency.items(), key=lambda i: -i[1]) if c),
        )
        for function in self.stack.functions.values():
            if function.reserved is not None:
                rows.append(
                    Row(
                        "Lambda",
                        "Reserved concurrency (template.yaml)",
                        function.logical_id,
                        concurrency.get(function.logical_id, 0),
                        function.reserved,
                        "executions",
                        "yes: it is the template's",
                        "template.yaml: ReservedConcurrentExecutions",
                        "template.yaml",
                    )
                )
        longest: dict[str, tuple[float, str]] = {}
        for work, rate in total.work.items():
            function = work.split(": ", 1)[0]
            if rate and not work.endswith(BATCH_KINDS):  # a batch's time grows with its size; per record here
                longest[function] = max(longest.get(function, (0.0, "")), (self._seconds(work), work))
        for function, (seconds, work) in sorted(longest.items()):
            rows.append(
                Row(
                    "Lambda",
                    "Function timeout (template.yaml)",
                    work,
                    seconds,
                    self.stack.functions[function].timeout_s,
                    "s per invocation",
                    "yes: it is the template's",
                    "template.yaml: the function's Timeout",
                    "template.yaml",
                    f"{self.stack.functions[function].memory_mb} MB; the estimated duration on AWS",
                    fixed=True,
                )
            )
        burst = {f: max(0.0, c - (self.stack.functions[f].provisioned or 0)) for f, c in concurrency.items()}
        if burst:
            busiest = max(burst, key=lambda f: burst[f])
            add(
                "lambda_scaling",
                busiest,
                burst[busiest],
                note="a step from idle to this peak within 10 s; provisioned concurrency is subtracted",
            )
        for mapping in self.stack.mappings:
            if mapping.kind == "SQS batch" and mapping.max_concurrency:
                needed = total.work[f"{mapping.function}: {mapping.kind}"] * self._seconds(
                    f"{mapping.function}: {mapping.kind}"
                )
                email = mapping.source in self.stack.email_queues
                rows.append(
                    Row(
                        "Lambda",
                        "SQS event source mapping MaximumConcurrency (template.yaml)",
                        f"{mapping.logical_id} -> {mapping.function}",
                        needed,
                        mapping.max_concurrency,
                        "executions",
                        "yes: it is the template's",
                        "template.yaml: the mapping's ScalingConfig.MaximumConcurrency (and "
                        + ("SES's sending rate)" if email else "the carrier's own rate limit)"),
                        "template.yaml",
                        "past it the queue grows and "
                        + ("mail goes out later" if email else "orders ship later")
                        + "; nothing fails",
                        effect="queued",
                        waits="email" if email else "shipping",
                    )
                )

        # Step Functions
        add("sfn_start_execution", "order workflow", total.executions)
        add(
            "sfn_state_transition",
            "order workflow",
            total.transitions,
            note=f"{quota['sfn_state_transition'].burst}; per order: "
            + ", ".join(f"{name} {path.transitions}" for name, path in self.paths.items()),
        )
        if total.send_task_success:
            add("sfn_send_task_success", "payment webhooks", total.send_task_success)
        if total.send_task_failure:
            add("sfn_send_task_failure", "payment webhooks", total.send_task_failure)
        open_executions = sum(
            peak.orders_per_second * share * self.open_seconds(name) for name, share in peak.mix.items()
        )
        add(
            "sfn_open_executions",
            "order workflow",
            open_executions,
            note=f"orders/s x how long each stays open (paid/declined {CUSTOMER_SECONDS} s assumed, expired "
            f"{self.stack.payment_timeout_s:g} s = PaymentTimeoutSeconds)",
        )

        # DynamoDB
        units = self._units(total)
        for table in self.stack.tables.values():
            rru, wru = units[table.logical_id]["rru"], units[table.logical_id]["wru"]
            if not rru and not wru:
                continue
            if table.billing == "PAY_PER_REQUEST":
                add(
                    "ddb_table_rru",
                    table.logical_id,
                    rru,
                    limit=min(filter(None, [quota["ddb_table_rru"].value(region), table.max_rru])),
                )
                add(
                    "ddb_table_wru",
                    table.logical_id,
                    wru,
                    limit=min(filter(None, [quota["ddb_table_wru"].value(region), table.max_wru])),
                )
                add(
                    "ddb_warm_rru",
                    table.logical_id,
                    rru,
                    limit=table.warm_rru,
                    note="what a table that never served more takes at once; the template sets no WarmThroughput"
                    if table.warm_rru is None
                    else "the template's WarmThroughput",
                )
                add(
                    "ddb_warm_wru",
                    table.logical_id,
                    wru,
                    limit=table.warm_wru,
                    note="what a table that never served more takes at once; the template sets no WarmThroughput"
                    if table.warm_wru is None
                    else "the template's WarmThroughput",
                )
            for index, rru_index in units[table.logical_id]["indexes"].items():
                add(
                    "ddb_partition_rcu",
                    f"{table.logical_id} index {index}, one partition",
                    rru_index,
                    note="every listing queries the same index partition key (listing_pk = PRODUCTS, "
                    "storefront/catalog/repository.py)",
                    to_raise="no quota: shard the listing key, or cache listings (a CDN)",
                )
        level, partition = self._hot(hot)
        add(
            "ddb_item_transactions",
            "hot SKU: its level item",
            level["transactions"],
            limit=self.item_transaction_limit(ORDERS_LOST_TO_CONTENTION),
            note=f"every reserve, commit and release of the SKU is a transaction on this item; held "
            f"{self.transaction_hold_ms:g} ms each (assumed), one that finds it held is cancelled "
            f"(TransactionConflict) and retried: {MAX_ATTEMPTS} attempts per stock invocation, "
            f"{self.reserve_invocations} invocations per reservation (the ASL's Retry). At this limit "
            f"{ORDERS_LOST_TO_CONTENTION:.1%} of the orders run out of them; past "
            f"{self.item_transaction_limit(INVOCATIONS_RETRIED_BY_THE_WORKFLOW, MAX_ATTEMPTS):.0f}/s already "
            f"{INVOCATIONS_RETRIED_BY_THE_WORKFLOW:.0%} of the invocations wait seconds for the workflow's Retry",
        )
        add(
            "ddb_partition_wcu",
            "hot SKU: its level item",
            level["wru"],
            note="every reserve, commit and release of the SKU writes this one item, transactionally (2 units)",
            to_raise="no quota: split the SKU's stock over shards (issue 14 item 3)",
        )
        add(
            "ddb_partition_rcu",
            "hot SKU: its level item",
            level["rru"],
            note="product pages, listings, carts and checkouts read its availability",
            to_raise="no quota: cache catalog reads (a CDN), or read availability from a shard",
        )
        add(
            "ddb_partition_wcu",
            "hot SKU: its partition key (level + reservation lines)",
            partition["wru"],
            note="one partition until DynamoDB splits it by sort key; the level item alone is the floor",
            to_raise="no quota: split the SKU's stock over shards",
        )
        streams = Counter(m.source for m in self.stack.mappings if m.kind == "DynamoDB stream batch")
        for table, readers in sorted(streams.items()):
            add(
                "ddb_stream_readers", f"{table} stream", readers, note="event source mappings on the stream", fixed=True
            )

        # the payment provider
        if self.stack.payment_provider == "stripe":
            endpoints: Counter[str] = Counter()
            for work, calls in STRIPE_CALLS.items():
                for endpoint, count in calls.items():
                    endpoints[endpoint] += total.work[work] * count
            for endpoint, load in sorted(endpoints.items()):
                add("stripe_endpoint", endpoint, load)
            add(
                "stripe_global",
                "all requests to Stripe",
                sum(endpoints.values()),
                note="only the requests the workflow makes; the shoppers' own (Stripe.js) come on top",
            )

        # SES
        if self.stack.email_send_rate is not None and total.emails:
            mails = ", ".join(f"{name} {self._emails(name):g}" for name in self.paths)
            add(
                "ses_send_rate",
                "customer emails",
                total.emails,
                limit=self.stack.email_send_rate,
                note=f"emails per order: {mails} (EVENTS and the template's rules); the notifications function "
                "paces itself to EmailSendRate, so past it mail waits in its queue, nothing fails",
                effect="queued",
                waits="email",
            )

        # SQS, EventBridge, Secrets Manager
        for mapping in self.stack.mappings:
            if mapping.kind == "SQS batch":
                in_flight = (mapping.max_concurrency or 1_000) * mapping.batch_size
                add(
                    "sqs_in_flight",
                    mapping.source,
                    in_flight,
                    note="at most MaximumConcurrency x BatchSize messages are in flight",
                    fixed=True,
                )
        put_events = sum(self._per_unit(work, "events:PutEvents") * count for work, count in total.work.items())
        add(
            "eventbridge_put_events",
            "integration events",
            put_events,
            note="one PutEvents per record that yields an event (storefront/integration_events.py)",
        )
        steady, scaling = self._secrets(concurrency)
        add(
            "secrets_get_secret_value",
            "steady state",
            steady,
            note=f"each execution environment reads each secret its policy names once per "
            f"{SECRET_CACHE_SECONDS} s (storefront/secrets.py)",
        )
        add(
            "secrets_get_secret_value",
            "while scaling up",
            scaling,
            note="new environments (1,000 per 10 s per function at most) each read their secrets once",
        )
        return rows

    # ------------------------------------------------------------ helpers

    def _seconds(self, work: str) -> float:
        if work not in self.durations:
            raise ModelError(f"no duration for {work!r}: rerun python -m benchmarks.capacity_profile")
        return self.durations[work] / 1000

    def _concurrency(self, total: Demand) -> dict[str, float]:
        concurrency: dict[str, float] = defaultdict(float)
        for work, rate in total.work.items():
            concurrency[work.split(": ", 1)[0]] += rate * self._seconds(work)
        return dict(concurrency)

    def _per_unit(self, work: str, call: str) -> float:
        return float(_profile_entry(self.profile, work)["calls"].get(call, 0))

    def _units(self, total: Demand) -> dict[str, dict[str, Any]]:
        units: dict[str, dict[str, Any]] = {
            t: {"rru": 0.0, "wru": 0.0, "indexes": Counter()} for t in self.stack.tables
        }
        for work, rate in total.work.items():
            entry = _profile_entry(self.profile, work)
            for table, figures in entry["tables"].items():
                if table not in units:
                    raise ModelError(f"the profile's {work!r} uses {table}, which template.yaml does not have")
                units[table]["rru"] += figures["rru"] * rate
                units[table]["wru"] += figures["wru"] * rate
            for index, rru in entry["indexes"].items():
                table, name = index.split("/", 1)
                if name not in self.stack.tables[table].indexes:
                    raise ModelError(f"the profile's {work!r} queries {index}, which template.yaml does not have")
                units[table]["indexes"][name] += rru * rate
        return units

    def _hot(self, hot: Demand) -> tuple[dict[str, float], dict[str, float]]:
        level = {"rru": 0.0, "wru": 0.0, "transactions": 0.0}
        partition = {"rru": 0.0, "wru": 0.0}
        for work, rate in hot.work.items():
            entry = _profile_entry(self.profile, work)
            for figures, item in ((level, entry["one_level_item"]), (partition, entry["one_sku_partition"])):
                figures["rru"] += item["rru"] * rate
                figures["wru"] += item["wru"] * rate
            if entry["one_level_item"]["wru"]:  # work that writes the level does so in a transaction
                level["transactions"] += entry["calls"].get("dynamodb:TransactWriteItems", 0) * rate
        return level, partition

    def _emails(self, path: str) -> int:
        """Emails an order on `path` sends: its events that a rule puts on a queue whose consumer sends email."""
        return sum(
            event in self.stack.event_queues.get(queue, set())
            for event in EVENTS[path]
            for queue in self.stack.email_queues
        )

    def item_transaction_limit(self, exhausted: float, attempts: int | None = None) -> float:
        """Transactions/s on one item at which `exhausted` of the reservations run out of their attempts (all of
        them, the stock function's times the workflow's, unless `attempts` says otherwise). An attempt conflicts when
        another transaction holds the item: with probability p = rate x hold (the item's busy share); all attempts
        conflict with p ** attempts, so p = exhausted ** (1 / attempts)."""
        attempts = attempts or MAX_ATTEMPTS * self.reserve_invocations
        return exhausted ** (1 / attempts) / (self.transaction_hold_ms / 1000)

    def _secrets(self, concurrency: dict[str, float]) -> tuple[float, float]:
        steady = scaling = 0.0
        for function in self.stack.functions.values():
            environments = concurrency.get(function.logical_id, 0.0)
            if function.secrets and environments:
                steady += math.ceil(environments) * function.secrets / SECRET_CACHE_SECONDS
                scaling += min(environments, QUOTAS["lambda_scaling"].default) / 10 * function.secrets
        return steady, scaling


def first_limit(rows: list[Row], effect: str = "throttled") -> Row:
    """The quota closest to (or furthest past) its limit: the one a growing peak hits first. Limits past which
    work only queues (effect "queued") are ranked apart from those past which requests fail."""
    limited = [r for r in rows if r.limit and r.effect == effect]
    if not limited:
        raise ModelError(f"no {effect} row has a limit")
    return max(limited, key=lambda r: r.utilization)


def ceiling(rows_at: Any, effect: str = "throttled", start: float = 1.0) -> tuple[float, Row, list[Row]]:
    """The largest x for which no row of rows_at(x) is over its limit, the row that limits it, and all the rows at
    that x (what comes next)."""
    low, high = 0.0, start
    while first_limit(rows_at(high), effect).utilization <= 1:
        low, high = high, high * 2
        if high > 1e8:
            raise ModelError("no limit found below 100 million per second")
    for _ in range(50):
        middle = (low + high) / 2
        if first_limit(rows_at(middle), effect).utilization <= 1:
            low = middle
        else:
            high = middle
    return low, first_limit(rows_at(high), effect), rows_at(low)


@dataclass
class Ceilings:
    orders: tuple[float, Row, list[Row]]
    orders_on_aws: tuple[float, Row, list[Row]]  # with the payment provider's limits raised out of the way
    orders_shipped_without_backlog: tuple[float, Row, list[Row]]
    orders_mailed_without_backlog: tuple[float, Row, list[Row]] | None  # None: no function sends email
    views: tuple[float, Row, list[Row]]
    views_with_cdn: tuple[float, Row, list[Row]]
    hot_sku_orders: tuple[float, Row, list[Row]]  # every order on one SKU, the payment provider's limits included
    hot_sku_orders_on_aws: tuple[float, Row, list[Row]]  # the same on AWS alone, like orders_on_aws


def ceilings(model: Model, peak: Peak, cdn_hit_ratio: float) -> Ceilings:
    def at(orders: float = 0.0, views: float = 0.0, hit: float = 0.0, hot: float = 0.0) -> list[Row]:
        return model.rows(Peak(orders, views, hit, peak.region, peak.mix, hot))

    return Ceilings(
        orders=ceiling(lambda n: at(orders=n)),
        orders_on_aws=ceiling(lambda n: [r for r in at(orders=n) if r.service != "Stripe"]),
        orders_shipped_without_backlog=ceiling(lambda n: [r for r in at(orders=n) if r.waits != "email"], "queued"),
        orders_mailed_without_backlog=ceiling(lambda n: [r for r in at(orders=n) if r.waits != "shipping"], "queued")
        if model.stack.email_queues
        else None,
        views=ceiling(lambda m: at(views=m)),
        views_with_cdn=ceiling(lambda m: at(views=m, hit=cdn_hit_ratio)),
        hot_sku_orders=ceiling(lambda n: at(orders=n, hot=1.0)),
        hot_sku_orders_on_aws=ceiling(lambda n: [r for r in at(orders=n, hot=1.0) if r.service != "Stripe"]),
    )


# ---------------------------------------------------------------- report


def _amount(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:,.1f}" if value >= 1 else f"{value:.2f}"


def _headroom(row: Row) -> str:
    if not row.limit:
        return "-"
    if not row.load:
        return "unused"
    return f"{row.limit / row.load:.1f}x" if row.load <= row.limit else f"OVER by {row.utilization - 1:.0%}"


def print_report(model: Model, peak: Peak, rows: list[Row], limits: Ceilings, cdn_hit_ratio: float) -> None:
    print(
        f"Capacity at {_amount(peak.orders_per_second)} orders/s and {_amount(peak.views_per_second)} catalog "
        f"views/s ({peak.hit_ratio:.0%} of them served by a CDN), {peak.region}; orders end "
        + ", ".join(f"{k} {v:.0%}" for k, v in peak.mix.items())
        + f"; {peak.hot_sku_share:.0%} of orders and product pages on one SKU.\n"
    )
    print("| service | quota | scope | load | limit | headroom | past it | adjustable | to raise |")
    print("|---|---|---|---:|---:|---:|---|---|---|")
    for row in sorted(rows, key=lambda r: -r.utilization):
        limit = f"{_amount(row.limit)} {row.unit}" if row.limit else "none"
        print(
            f"| {row.service} | {row.quota} | {row.scope} | {_amount(row.load)} | {limit} | {_headroom(row)} | "
            f"{row.effect} | {row.adjustable} | {row.to_raise} |"
        )
    for effect, what in (("throttled", "First limit"), ("queued", "First backlog")):
        first = first_limit(rows, effect)
        verdict = "hit" if first.utilization > 1 else "nearest"
        print(
            f"\n{what} {verdict}: {first.service} {first.quota} ({first.scope}): {_amount(first.load)} of "
            f"{_amount(first.limit or 0)} {first.unit} ({_headroom(first)}). To raise: {first.to_raise}"
            f" (adjustable: {first.adjustable})."
        )
        if first.note:
            print(f"  {first.note}")
    print(f"\nThe stack's ceiling as deployed ({peak.region}; each alone, the others at zero):")
    for label, found in [
        ("orders/s (spread over many SKUs)", limits.orders),
        ("orders/s on AWS alone (the payment provider's limits raised)", limits.orders_on_aws),
        ("orders/s shipped as fast as they come (no fulfilment backlog)", limits.orders_shipped_without_backlog),
        ("orders/s mailed as fast as they come (no email backlog)", limits.orders_mailed_without_backlog),
        ("catalog views/s, no CDN", limits.views),
        (f"catalog views/s, CDN hit ratio {cdn_hit_ratio:.0%} (Edge=true)", limits.views_with_cdn),
        ("orders/s of one hot SKU (every order on it)", limits.hot_sku_orders),
        ("orders/s of one hot SKU on AWS alone", limits.hot_sku_orders_on_aws),
    ]:
        if found is None:
            continue
        value, row, at_ceiling = found
        print(
            f"- {label}: {_amount(value)}; first limit: {row.service} {row.quota} ({row.scope}); to raise: "
            f"{row.to_raise}"
        )
        following = [
            r
            for r in sorted(at_ceiling, key=lambda r: -r.utilization)
            if r.effect == row.effect
            and not r.fixed
            and r.utilization >= 0.5
            and (r.quota, r.scope) != (row.quota, row.scope)
        ]
        if following:
            print(
                "  then, at that rate: "
                + "; ".join(f"{r.service} {r.quota} ({r.scope}) {r.utilization:.0%}" for r in following[:4])
            )
    if peak.hit_ratio and not model.stack.has_cdn:
        print(
            f"\nNote: a hit ratio of {peak.hit_ratio:.0%} assumes a CDN in front of the catalog that template.yaml "
            "does not have yet."
        )
    print(
        "\nWorkflow paths (from the ASL): "
        + "; ".join(
            f"{name}: {path.transitions} transitions ({' > '.join(path.states)})" for name, path in model.paths.items()
        )
    )
    print(
        f"Per-request costs: {PROFILE_PATH.name}, measured {model.profile['measured']} at commit "
        f"{model.profile['commit']} ({model.profile['command']}). Quota sources (checked {CHECKED}):"
    )
    for source in sorted({r.source for r in rows if r.source != "template.yaml"} | {TRANSACTIONS_COST_DOUBLE.cite()}):
        print(f"- {source}")


def to_json(model: Model, peak: Peak, rows: list[Row], limits: Ceilings) -> dict[str, Any]:
    def row_json(row: Row) -> dict[str, Any]:
        return {**asdict(row), "utilization": row.utilization}

    return {
        "peak": asdict(peak),
        "paths": {name: {"transitions": p.transitions, "states": list(p.states)} for name, p in model.paths.items()},
        "rows": [row_json(r) for r in sorted(rows, key=lambda r: -r.utilization)],
        "first_limit": row_json(first_limit(rows)),
        "first_backlog": row_json(first_limit(rows, "queued")),
        "ceilings": {
            name: {"value": found[0], "first_limit": row_json(found[1])}
            for name, found in ((f.name, getattr(limits, f.name)) for f in fields(limits))
            if found is not None
        },
        "durations_ms": model.durations,
        "profile": {k: model.profile[k] for k in ("measured", "commit", "command", "machine")},
        "quotas_checked": CHECKED,
    }


def _pairs(values: list[str], what: str) -> dict[str, float]:
    pairs = {}
    for value in values:
        name, _, number = value.rpartition("=")
        if not name:
            raise SystemExit(f"{what}: expected NAME=NUMBER, got {value!r}")
        pairs[name.strip()] = float(number)
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders-per-second", type=float, required=True)
    parser.add_argument("--views-per-second", type=float, required=True, help="catalog views (GETs) per second")
    parser.add_argument(
        "--hit-ratio",
        type=float,
        default=None,
        help=f"share of catalog views the edge answers (default {EDGE_HIT_RATIO:g} with --parameter Edge=true, else 0)",
    )
    parser.add_argument(
        "--cdn-hit-ratio", type=float, default=EDGE_HIT_RATIO, help="the hit ratio of the 'with the edge' views ceiling"
    )
    parser.add_argument(
        "--transaction-hold-ms",
        type=float,
        default=TRANSACTION_HOLD_MS,
        help="how long a DynamoDB transaction holds its items (an assumption; docs/capacity.md)",
    )
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument(
        "--mix",
        default=",".join(f"{k}={v}" for k, v in DEFAULT_MIX.items()),
        help="how orders end: paid=...,declined=...,expired=...,rejected=... (sums to 1)",
    )
    parser.add_argument(
        "--hot-sku-share",
        type=float,
        default=DEFAULT_HOT_SKU_SHARE,
        help="share of orders and product pages on one SKU",
    )
    parser.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a template parameter other than its default",
    )
    parser.add_argument(
        "--quota",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="your account's value of a quota (keys: " + ", ".join(QUOTAS) + ")",
    )
    parser.add_argument(
        "--duration",
        action="append",
        default=[],
        metavar="'<Function>: <kind>=MS'",
        help="a measured duration on AWS, per invocation (per record for batches)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args(argv)

    quotas = dict(QUOTAS)
    for key, value in _pairs(args.quota, "--quota").items():
        if key not in quotas:
            raise SystemExit(f"--quota: no quota {key!r}; known: {', '.join(quotas)}")
        quotas[key] = replace(quotas[key], default=value, by_region={})
    overrides = dict(p.split("=", 1) for p in args.parameter if "=" in p)
    if len(overrides) != len(args.parameter):
        raise SystemExit("--parameter: expected NAME=VALUE")
    try:
        model = Model.build(
            load_stack(Template.load(TEMPLATE_PATH, parameter_overrides=overrides)),
            quotas=quotas,
            duration_overrides=_pairs(args.duration, "--duration"),
            transaction_hold_ms=args.transaction_hold_ms,
        )
        hit_ratio = args.hit_ratio if args.hit_ratio is not None else EDGE_HIT_RATIO if model.stack.has_cdn else 0.0
        peak = Peak(
            args.orders_per_second,
            args.views_per_second,
            hit_ratio,
            args.region,
            _pairs(args.mix.split(","), "--mix"),
            args.hot_sku_share,
        )
        rows = model.rows(peak)
        limits = ceilings(model, peak, args.cdn_hit_ratio)
    except (ModelError, PathError) as error:
        print(f"capacity model: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(to_json(model, peak, rows, limits), indent=1, default=str))
    else:
        print_report(model, peak, rows, limits, args.cdn_hit_ratio)
    return 0


if __name__ == "__main__":
    sys.exit(main())
