"""The capacity model (benchmarks/capacity.py): its arithmetic on a hand-computed case, the workflow paths it
walks in the ASL (the real one and small fixtures), the choice of the first limit, and that it fails loudly when
the template, the ASL or the profile no longer fit it. Pure: no cloud, no network."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import capacity
from benchmarks.capacity import (
    PATHS,
    Function,
    Mapping,
    Model,
    ModelError,
    Peak,
    Route,
    Row,
    Stack,
    Table,
    ceilings,
    first_limit,
    load_stack,
)
from benchmarks.capacity_asl import PathError, PathSpec, walk
from benchmarks.capacity_quotas import QUOTAS
from local_cloud.template import Template, load_yaml

ROOT = Path(__file__).resolve().parents[2]


def _task(action: str, target: str, next_state: str | None = None, **extra: Any) -> dict[str, Any]:
    state: dict[str, Any] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": target, "Payload": {"action": action}},
        **extra,
    }
    state.update({"Next": next_state} if next_state else {"End": True})
    return state


# Reserve -> Ok? -> Pay (callback; a timeout releases) -> Enqueue; a rejection fails.
FIXTURE_ASL: dict[str, Any] = {
    "StartAt": "Reserve",
    "States": {
        "Reserve": _task(
            "reserve", "${StockArn}", "Ok?", Retry=[{"ErrorEquals": ["StockContention"], "MaxAttempts": 2}]
        ),
        "Ok?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.ok", "BooleanEquals": False, "Next": "Rejected"}],
            "Default": "Pay",
        },
        "Pay": {
            **_task("await_payment", "${PayArn}", "Enqueue"),
            "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Retry": [{"ErrorEquals": ["Flaky"], "MaxAttempts": 2}],
            "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "Release"}],
        },
        "Enqueue": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage",
            "Parameters": {"QueueUrl": "${QueueUrl}", "MessageBody": {}},
            "End": True,
        },
        "Release": _task("release", "${StockArn}"),
        "Rejected": {"Type": "Fail"},
    },
}
FIXTURE_PATHS = [
    PathSpec("paid", "", facts={"$.ok": [True]}, must_run=("reserve", "sqs:sendMessage")),
    PathSpec(
        "expired", "", facts={"$.ok": [True]}, failures={"await_payment": ["States.Timeout"]}, must_run=("release",)
    ),
]


def _entry(
    duration_ms: float,
    calls: dict[str, float] | None = None,
    tables: dict[str, dict[str, float]] | None = None,
    level: dict[str, float] | None = None,
    partition: dict[str, float] | None = None,
) -> dict[str, Any]:
    full = {t: {"rru": 0.0, "wru": 0.0, "items_written": 0.0, **u} for t, u in (tables or {}).items()}
    return {
        "duration_ms": duration_ms,
        "calls": calls or {},
        "tables": full,
        "indexes": {},
        "one_level_item": {"rru": 0.0, "wru": 0.0, **(level or {})},
        "one_sku_partition": {"rru": 0.0, "wru": 0.0, **(partition or {})},
    }


HAND_PROFILE = {
    "measured": "hand",
    "commit": "-",
    "command": "-",
    "machine": "-",
    "work": {
        "Shop: POST /checkout": _entry(30, {"dynamodb:PutItem": 2}, {"Orders": {"wru": 4, "items_written": 2}}),
        "Shop: GET /orders/{order_id}": _entry(10, {"dynamodb:GetItem": 1}, {"Orders": {"rru": 1}}),
        "Shop: GET /products/{product_id}": _entry(
            5, {"dynamodb:GetItem": 1, "dynamodb:BatchGetItem": 1}, {"Stock": {"rru": 0.5}}, level={"rru": 0.5}
        ),
        "Stock: reserve": _entry(
            20, {"dynamodb:TransactWriteItems": 1}, {"Stock": {"wru": 4}}, level={"wru": 2}, partition={"wru": 4}
        ),
        "Stock: release": _entry(
            20, {"dynamodb:TransactWriteItems": 1}, {"Stock": {"wru": 4}}, level={"wru": 2}, partition={"wru": 4}
        ),
        "Pay: await_payment": _entry(10, {"dynamodb:UpdateItem": 1}, {"Orders": {"wru": 2, "items_written": 1}}),
        "Pay: POST /webhooks/pay": _entry(
            40,
            {"dynamodb:UpdateItem": 1, "stepfunctions:SendTaskSuccess": 1, "secretsmanager:GetSecretValue": 1},
            {"Orders": {"wru": 2, "items_written": 1}},
        ),
        "Ship: SQS batch": _entry(100, tables={"Orders": {"wru": 2, "items_written": 1}}),
        "Events: DynamoDB stream batch": _entry(2, {"events:PutEvents": 0.5}),
    },
}


def _hand_stack() -> Stack:
    def route(key: str, function: str, rate: float) -> Route:
        return Route(key, function, rate, rate * 2)

    return Stack(
        functions={
            name: Function(name, 1024, 10, None, None, secrets)
            for name, secrets in (("Shop", 1), ("Stock", 0), ("Pay", 2), ("Ship", 0), ("Events", 0))
        },
        routes={
            "POST /checkout": route("POST /checkout", "Shop", 1000),
            "GET /orders/{order_id}": route("GET /orders/{order_id}", "Shop", 1000),
            "POST /webhooks/pay": route("POST /webhooks/pay", "Pay", 1000),
            "GET /products/{product_id}": route("GET /products/{product_id}", "Shop", 400),
        },
        tables={
            "Orders": Table("Orders", "PAY_PER_REQUEST", [], True, None, None, None, None),
            "Stock": Table("Stock", "PAY_PER_REQUEST", [], False, None, None, None, None),
        },
        mappings=[
            Mapping("ShipQueueMapping", "Ship", "Q", "SQS batch", 5, 2),
            Mapping("EventsMapping", "Events", "Orders", "DynamoDB stream batch", 100, None),
        ],
        workflow=FIXTURE_ASL,
        substitutions={"StockArn": "Stock", "PayArn": "Pay", "QueueUrl": "Q"},
        payment_timeout_s=600,
        has_cdn=False,
    )


@pytest.fixture
def hand_model(monkeypatch: pytest.MonkeyPatch) -> Model:
    monkeypatch.setattr(capacity, "JOURNEY", {"POST /checkout": 1, "GET /orders/{order_id}": 2})
    monkeypatch.setattr(capacity, "VIEW_MIX", {"GET /products/{product_id}": 1.0})
    monkeypatch.setattr(capacity, "CALLBACK_ROUTES", {"await_payment": "POST /webhooks/pay"})
    return Model.build(_hand_stack(), HAND_PROFILE, QUOTAS, specs=FIXTURE_PATHS)


def _row(rows: list[Row], quota_key: str, scope: str | None = None) -> Row:
    name = QUOTAS[quota_key].name
    found = [r for r in rows if r.quota == name and (scope is None or r.scope == scope)]
    assert len(found) == 1, (quota_key, scope, [(r.quota, r.scope) for r in found])
    return found[0]


def test_hand_computed_peak(hand_model: Model) -> None:
    """100 orders/s (80 % paid, 20 % expired), 1,000 catalog views/s of which a CDN answers half, half of the orders
    and product pages on one hot SKU, us-east-1. The fixture workflow: paid = Reserve, Ok?, Pay, Enqueue; expired =
    Reserve, Ok?, Pay, Release; both 4 transitions. AWS duration = profile ms + 10 ms per AWS call (Secrets Manager's
    are not counted: cached): checkout 30 + 2x10 = 50 ms, order read 20, product page 25, reserve/release 30,
    await_payment 20, webhook 40 + 2x10 = 60, shipping 100 per message, stream 2 + 0.5x10 = 7 per record.

    Per second: POST /checkout 100, GET /orders 2 x 100 = 200, webhook 80 (paid only), product pages
    1,000 x (1 - 0.5) = 500 (route throttle 400: over by 25 %, the first limit); all routes 880.
    Step Functions: StartExecution 100, transitions 4 x 100 = 400, SendTaskSuccess 80, open executions
    80 x 120 s + 20 x 600 s (PaymentTimeoutSeconds) = 21,600.
    Stream records: paid 2 (checkout) + 1 (await) + 1 (webhook) + 1 (shipping) = 5, expired 2 + 1 = 3;
    80 x 5 + 20 x 3 = 460/s; PutEvents 460 x 0.5 = 230/s.
    Lambda concurrency: Shop 100 x 0.05 + 200 x 0.02 + 500 x 0.025 = 21.5; Stock 100 x 0.03 + 20 x 0.03 = 3.6;
    Pay 100 x 0.02 + 80 x 0.06 = 6.8; Ship 80 x 0.1 = 8 (its mapping allows 2: a backlog, 4x over);
    Events 460 x 0.007 = 3.22; all 43.12.
    Orders WRU: 100 x 4 + 100 x 2 + 80 x 2 + 80 x 2 = 920; RRU 200 x 1 = 200. Stock WRU 100 x 4 + 20 x 4 = 480;
    RRU 500 x 0.5 = 250.
    Hot SKU (50 orders/s, 250 product pages/s): level item WRU 50 x 2 + 10 x 2 = 120, RRU 250 x 0.5 = 125;
    partition key WRU 50 x 4 + 10 x 4 = 240; transactions on the level item 50 (reserve) + 10 (release) = 60/s, of the
    68.1/s at which 0.1 % of reservations run out of their 18 attempts (6 per invocation x 3 invocations, the
    fixture's Retry): 0.001 ** (1 / 18) / 10 ms.
    Secrets: steady ceil(21.5) x 1 / 300 + ceil(6.8) x 2 / 300 = 22/300 + 14/300 = 0.12/s; scaling up
    21.5 / 10 x 1 + 6.8 / 10 x 2 = 3.51/s.
    """
    rows = hand_model.rows(
        Peak(100, 1000, hit_ratio=0.5, region="us-east-1", mix={"paid": 0.8, "expired": 0.2}, hot_sku_share=0.5)
    )
    route = {r.scope: r for r in rows if r.quota == "Route throttle (template.yaml)"}
    assert {k: r.load for k, r in route.items()} == pytest.approx(
        {
            "POST /checkout": 100,
            "GET /orders/{order_id}": 200,
            "POST /webhooks/pay": 80,
            "GET /products/{product_id}": 500,
        }
    )
    assert _row(rows, "apigw_account_rps").load == pytest.approx(880)
    assert _row(rows, "sfn_start_execution").load == pytest.approx(100)
    assert _row(rows, "sfn_start_execution").limit == 300
    assert _row(rows, "sfn_state_transition").load == pytest.approx(400)
    assert _row(rows, "sfn_send_task_success").load == pytest.approx(80)
    assert _row(rows, "sfn_open_executions").load == pytest.approx(21_600)
    assert _row(rows, "eventbridge_put_events").load == pytest.approx(230)
    assert _row(rows, "lambda_concurrency").load == pytest.approx(43.12)
    assert _row(rows, "lambda_scaling").scope == "Shop"
    assert _row(rows, "lambda_scaling").load == pytest.approx(21.5)
    assert _row(rows, "ddb_table_wru", "Orders").load == pytest.approx(920)
    assert _row(rows, "ddb_table_rru", "Orders").load == pytest.approx(200)
    assert _row(rows, "ddb_table_wru", "Stock").load == pytest.approx(480)
    assert _row(rows, "ddb_table_rru", "Stock").load == pytest.approx(250)
    assert _row(rows, "ddb_partition_wcu", "hot SKU: its level item").load == pytest.approx(120)
    assert _row(rows, "ddb_partition_rcu", "hot SKU: its level item").load == pytest.approx(125)
    assert _row(
        rows, "ddb_partition_wcu", "hot SKU: its partition key (level + reservation lines)"
    ).load == pytest.approx(240)
    conflicts = _row(rows, "ddb_item_transactions", "hot SKU: its level item")
    assert (conflicts.load, conflicts.limit) == (pytest.approx(60), pytest.approx(0.001 ** (1 / 18) / 0.010))
    assert _row(rows, "secrets_get_secret_value", "steady state").load == pytest.approx(0.12)
    assert _row(rows, "secrets_get_secret_value", "while scaling up").load == pytest.approx(3.51)
    backlog = first_limit(rows, "queued")
    assert (backlog.scope, backlog.load, backlog.limit) == ("ShipQueueMapping -> Ship", pytest.approx(8), 2)
    first = first_limit(rows)
    assert (first.scope, first.utilization) == ("GET /products/{product_id}", pytest.approx(1.25))


def test_hand_computed_ceilings(hand_model: Model) -> None:
    """Orders alone: per order 1 StartExecution (refill 300/s) -> 300 orders/s, before transitions (1,500 / 4 =
    375), the order reads' route (1,000 / 2 = 500) or the Orders table's warm writes (4,000 / 9.2 = 435).
    Views alone: the product route's 400/s; with a CDN answering 90 %, 4,000/s. One hot SKU alone: its level item
    takes 1 + 0.2 = 1.2 transactions per order (reserve, and release for the expired), of 68.1/s (see above): 56.8
    orders/s, before its partition key's 4 + 0.2 x 4 = 4.8 WCU per order allow 1,000 / 4.8 = 208. Shipping without
    a backlog: 2 executions / (0.8 messages x 0.1 s) = 25 orders/s."""
    limits = ceilings(hand_model, Peak(0, 0, mix={"paid": 0.8, "expired": 0.2}), cdn_hit_ratio=0.9)
    assert limits.orders[0] == pytest.approx(300, rel=1e-6)
    assert limits.orders[1].quota == QUOTAS["sfn_start_execution"].name
    assert limits.views[0] == pytest.approx(400, rel=1e-6)
    assert limits.views_with_cdn[0] == pytest.approx(4000, rel=1e-6)
    assert limits.hot_sku_orders_on_aws[0] == pytest.approx(0.001 ** (1 / 18) / 0.010 / 1.2, rel=1e-6)
    assert limits.hot_sku_orders_on_aws[1].quota == QUOTAS["ddb_item_transactions"].name
    partition = _row(
        limits.hot_sku_orders_on_aws[2], "ddb_partition_wcu", "hot SKU: its partition key (level + reservation lines)"
    )
    assert partition.load / limits.hot_sku_orders_on_aws[0] == pytest.approx(4.8)  # 208 orders/s would be next
    assert limits.orders_mailed_without_backlog is None  # the fixture sends no email
    assert limits.orders_shipped_without_backlog[0] == pytest.approx(25, rel=1e-6)


def test_first_limit_ranks_by_utilization_and_keeps_backlogs_apart() -> None:
    def row(load: float, limit: float | None, effect: str = "throttled") -> Row:
        return Row("S", f"q{load}", "", load, limit, "u", "yes", "", "", effect=effect)

    rows = [row(50, 100), row(900, 1000), row(10, None), row(300, 100, "queued"), row(3, 2)]
    assert first_limit(rows).load == 3  # 150 % of its limit beats 90 % and 50 %
    assert first_limit(rows, "queued").load == 300
    assert first_limit([row(50, 100), row(900, 1000)]).load == 900
    with pytest.raises(ModelError):
        first_limit([row(10, None)])


# ---------------------------------------------------------------- the ASL walker


def test_fixture_paths_count_states_and_callbacks() -> None:
    paid = walk(FIXTURE_ASL, FIXTURE_PATHS[0])
    assert paid.states == ("Reserve", "Ok?", "Pay", "Enqueue")
    assert paid.transitions == 4
    assert [t.integration for t in paid.tasks] == ["lambda:invoke", "lambda:invoke", "sqs:sendMessage"]
    assert len(paid.callbacks) == 1
    expired = walk(FIXTURE_ASL, FIXTURE_PATHS[1])
    assert expired.states == ("Reserve", "Ok?", "Pay", "Release")
    assert expired.callbacks == []  # a timeout needs no SendTask call


def test_retries_are_billed_and_an_uncaught_error_fails_the_execution() -> None:
    flaky = walk(
        FIXTURE_ASL, PathSpec("flaky", "", facts={"$.ok": [True]}, failures={"await_payment": ["Flaky"]}, ends="failed")
    )
    assert flaky.states == ("Reserve", "Ok?", "Pay")
    assert flaky.tasks[-1].retries == 2
    assert flaky.transitions == 3 + 2


def test_pass_wait_and_parallel_states_are_transitions() -> None:
    machine = {
        "StartAt": "Both",
        "States": {
            "Both": {
                "Type": "Parallel",
                "Next": "Pause",
                "Branches": [
                    {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}},
                    {"StartAt": "B", "States": {"B": {"Type": "Pass", "Next": "C"}, "C": {"Type": "Succeed"}}},
                ],
            },
            "Pause": {"Type": "Wait", "Seconds": 5, "Next": "Done"},
            "Done": {"Type": "Succeed"},
        },
    }
    path = walk(machine, PathSpec("p", ""))
    assert path.states == ("Both", "A", "B", "C", "Pause", "Done")
    assert path.transitions == 6


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        (PathSpec("x", "", failures={"await_payment": ["States.Timeout"]}), "reads $.ok"),  # a Choice it cannot decide
        (
            PathSpec("x", "", facts={"$.ok": [False]}, failures={"await_payment": ["States.Timeout"]}, ends="failed"),
            "was to run 1 time",
        ),  # rejected before paying: the failure it describes never happens
        (PathSpec("x", "", facts={"$.ok": [True, True]}), "was to be read 2 time"),
        (PathSpec("x", "", facts={"$.ok": [True]}, must_run=("commit",)), "no longer runs ['commit']"),
        (PathSpec("x", "", facts={"$.ok": [True]}, must_not_run=("reserve",)), "must not"),
        (PathSpec("x", "", facts={"$.ok": [True]}, ends="failed"), "expected to have failed"),
    ],
)
def test_a_description_that_no_longer_fits_fails_loudly(spec: PathSpec, complaint: str) -> None:
    with pytest.raises(PathError, match=complaint.replace("[", r"\[").replace("]", r"\]").replace("$", r"\$")):
        walk(FIXTURE_ASL, spec)


def test_loops_and_map_states_are_refused() -> None:
    loop = {"StartAt": "Again", "States": {"Again": {"Type": "Pass", "Next": "Again"}}}
    with pytest.raises(PathError, match="loops"):
        walk(loop, PathSpec("x", ""))
    mapped = {"StartAt": "Each", "States": {"Each": {"Type": "Map", "End": True}}}
    with pytest.raises(PathError, match="not modelled"):
        walk(mapped, PathSpec("x", ""))


def _real_asl() -> dict[str, Any]:
    return json.loads((ROOT / "statemachines/order.asl.json").read_text())


def test_the_real_workflow_paths() -> None:
    """Every path the model uses walks through today's ASL, with its tasks in the saga's order."""
    paths = {spec.name: walk(_real_asl(), spec) for spec in PATHS}
    order = [t.action or t.integration for t in paths["paid"].tasks]
    assert order.index("reserve") < order.index("await_payment") < order.index("commit") < order.index("mark_paid")
    assert order[-1] == "sqs:sendMessage"
    assert len(paths["paid"].callbacks) == len(paths["declined"].callbacks) == 1
    assert paths["expired"].callbacks == []
    assert all(t.action != "create_payment" for t in paths["rejected"].tasks)
    for path in paths.values():
        assert path.transitions == len(path.states) + sum(t.retries for t in path.tasks)


def test_a_renamed_action_in_the_real_asl_stops_the_model() -> None:
    asl = _real_asl()
    for state in asl["States"].values():
        payload = state.get("Parameters", {}).get("Payload", {})
        if payload.get("action") == "commit":
            payload["action"] = "commit_stock"
    with pytest.raises(PathError, match="commit"):
        walk(asl, PATHS[0])


# ---------------------------------------------------------------- the real template and profile


def test_the_stack_is_read_from_the_template() -> None:
    raw = load_yaml((ROOT / "template.yaml").read_text())["Resources"]
    stack = load_stack()
    template = Template.load(ROOT / "template.yaml")
    api = raw["HttpApi"]["Properties"]  # throttles are parameters, per route or by default
    settings = template.resolve({k: api[k] for k in ("DefaultRouteSettings", "RouteSettings")})
    assert stack.routes["POST /checkout"].function == "CheckoutFunction"
    assert stack.routes["POST /checkout"].rate == float(
        settings["RouteSettings"]["POST /checkout"]["ThrottlingRateLimit"]
    )
    assert stack.routes["GET /products"].rate == float(settings["DefaultRouteSettings"]["ThrottlingRateLimit"])
    fulfilment = next(m for m in stack.mappings if m.logical_id == "FulfilmentQueueMapping")
    props = raw["FulfilmentQueueMapping"]["Properties"]
    assert (fulfilment.function, fulfilment.source, fulfilment.kind) == (
        "FulfilmentFunction",
        "FulfilmentQueue",
        "SQS batch",
    )
    assert (fulfilment.batch_size, fulfilment.max_concurrency) == (
        props["BatchSize"],
        props["ScalingConfig"]["MaximumConcurrency"],
    )
    assert stack.tables["OrdersTable"].stream
    assert stack.tables["CatalogTable"].indexes == [
        i["IndexName"] for i in raw["CatalogTable"]["Properties"]["GlobalSecondaryIndexes"]
    ]
    assert stack.functions["PaymentWebhookFunction"].secrets == 1  # the webhook secret; the API key is not its
    assert stack.functions["PaymentTasksFunction"].secrets == 1
    assert stack.resource_of("${StockFunctionArn}") == "StockFunction"


def test_the_committed_profile_covers_every_path_and_view() -> None:
    """The model runs on today's template, ASL and profile: a new task, route or table the profile has not measured
    stops it (rerun python -m benchmarks.capacity_profile)."""
    model = Model.build()
    rows = model.rows(Peak(10, 100))
    assert all(r.load >= 0 for r in rows)
    assert first_limit(rows).limit


def test_a_route_the_template_lacks_stops_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capacity, "JOURNEY", {**capacity.JOURNEY, "GET /wishlist": 1})
    model = Model.build()
    with pytest.raises(ModelError, match="GET /wishlist"):
        model.rows(Peak(1, 0))


def test_work_the_profile_has_not_measured_stops_the_model() -> None:
    profile = copy.deepcopy(json.loads(capacity.PROFILE_PATH.read_text()))
    del profile["work"]["StockFunction: reserve"]
    with pytest.raises(ModelError, match="StockFunction: reserve"):
        Model.build(profile=profile).rows(Peak(1, 0))


def test_payment_provider_requests_are_counted_only_for_stripe(
    monkeypatch: pytest.MonkeyPatch, hand_model: Model
) -> None:
    """With reserve calling the provider once, 100 orders/s are 100 requests/s on that endpoint (limit 25) and
    on Stripe as a whole (limit 100); a stack on the local provider has no Stripe rows."""
    monkeypatch.setattr(capacity, "STRIPE_CALLS", {"Stock: reserve": {"POST /v1/payment_intents": 1}})
    rows = hand_model.rows(Peak(100, 0, mix={"paid": 0.8, "expired": 0.2}))
    assert _row(rows, "stripe_endpoint", "POST /v1/payment_intents").load == pytest.approx(100)
    assert _row(rows, "stripe_global").load == pytest.approx(100)
    assert first_limit(rows).scope == "POST /v1/payment_intents"
    hand_model.stack.payment_provider = "fake"
    assert not [r for r in hand_model.rows(Peak(100, 0, mix={"paid": 0.8, "expired": 0.2})) if r.service == "Stripe"]


def test_hand_computed_emails(hand_model: Model) -> None:
    """A queue the rules feed order.paid and order.expired, consumed by a function that sends email (EMAIL_SEND_RATE
    in its environment), at 14 emails/s: 100 orders/s (80 % paid, 20 % expired) are 80 + 20 = 100 emails/s, 7x the
    sending rate, a backlog, not a failure; one message each for the Mail mapping (2 at a time, 50 ms a message, so
    100 x 0.05 = 5 executions needed). Without a backlog: 14 emails/s at 1 email per order = 14 orders/s."""
    stack = hand_model.stack
    stack.mappings.append(Mapping("MailMapping", "Mail", "MailQ", "SQS batch", 10, 2))
    stack.functions["Mail"] = Function("Mail", 1024, 30, None, None, 0)
    stack.event_queues = {"MailQ": {"order.paid", "order.expired", "order.refunded"}}
    stack.email_queues = {"MailQ"}
    stack.email_send_rate = 14
    profile = copy.deepcopy(HAND_PROFILE)
    profile["work"]["Mail: SQS batch"] = _entry(50)
    model = Model.build(stack, profile, QUOTAS, specs=FIXTURE_PATHS)
    rows = model.rows(Peak(100, 0, mix={"paid": 0.8, "expired": 0.2}))
    ses = _row(rows, "ses_send_rate")
    assert (ses.load, ses.limit, ses.effect) == (pytest.approx(100), 14, "queued")
    mapping = next(r for r in rows if r.scope == "MailMapping -> Mail")
    assert (mapping.load, mapping.limit, mapping.waits) == (pytest.approx(5), 2, "email")
    limits = ceilings(model, Peak(0, 0, mix={"paid": 0.8, "expired": 0.2}), cdn_hit_ratio=0.9)
    assert limits.orders_mailed_without_backlog is not None
    mailed, first, _ = limits.orders_mailed_without_backlog
    assert (mailed, first.quota) == (pytest.approx(14, rel=1e-6), QUOTAS["ses_send_rate"].name)  # before 2 / 0.05 = 40
    assert limits.orders_shipped_without_backlog[0] == pytest.approx(25, rel=1e-6)  # mail waits apart from shipping
