"""Payments end to end on loopback: the local Stripe emulator (driven through Stripe's SDK) creates payments and
sends signed webhooks to the real payment webhook handler (payload v2 -> Mangum -> FastAPI -> service -> DynamoDB
on moto); the payment tasks run in the real payment tasks handler. Step Functions is a recording fake, so each test
sees exactly which callbacks the workflow would have received."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from storefront.cart.delivery import DeliveryWindow
from storefront.cart.models import CartLine, CartShipping
from storefront.cart.pricing import Totals
from storefront.dynamodb import from_item, key
from storefront.money import Money
from storefront.orders.models import Address, HistoryEntry, OrderStatus, PaymentStatus, RefundLine, StoredOrder
from storefront.orders.repository import OrderRepository
from storefront.payments.providers import StepFunctionsWorkflow
from storefront.payments.repository import ProcessedEvents
from storefront.payments.service import OrderNotAwaitingPayment, OrderNotFound, PaymentTasks
from storefront.payments.stripe_provider import StripeProvider
from storefront.payments.webhooks import PaymentWebhooks
from storefront.secrets import get_secret
from storefront.webhooks import UnknownWebhookSender
from storefront.webhooks.signatures import parse_secrets, sign

from local_cloud.fake_payments import FakePaymentProvider
from local_cloud.functions import FunctionError, LocalFunction
from local_cloud.gateway import build_event, to_http_response
from local_cloud.template import Route

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "sk_test_webhook_tests"
WEBHOOK_SECRET = "whsec_webhook_tests"
ROUTE = Route("POST", "/webhooks/payments/{provider}", "PaymentWebhookFunction")
TOTAL = Money(amount=6490, currency="EUR")
MAX_ATTEMPTS = 3


# ---------------------------------------------------------------- fakes and fixtures


class FakeStepFunctions:
    """Records every callback; a token takes one answer, later ones are refused as Step Functions refuses them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.answered: dict[str, str] = {}  # token -> "success" | "failure"
        self.errors_to_raise: list[str] = []  # error codes the next calls fail with

    def send_task_success(self, *, taskToken: str, output: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        return self._answer("success", taskToken, {"output": json.loads(output)})

    def send_task_failure(self, *, taskToken: str, error: str, cause: str) -> dict[str, Any]:  # noqa: N803
        return self._answer("failure", taskToken, {"error": error, "cause": cause})

    def _answer(self, kind: str, token: str, details: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((kind, token, details))
        if self.errors_to_raise:
            code = self.errors_to_raise.pop(0)
            raise ClientError({"Error": {"Code": code, "Message": code}}, f"SendTask{kind.title()}")
        if token in self.answered:
            raise ClientError({"Error": {"Code": "TaskTimedOut", "Message": "Task Timed Out"}}, "SendTask")
        self.answered[token] = kind
        return {}

    def of(self, kind: str) -> list[tuple[str, str, dict[str, Any]]]:
        return [call for call in self.calls if call[0] == kind]


class CrashingEvents(ProcessedEvents):
    """Processed events that can fail right before recording, as a Lambda killed at that line would."""

    crashes_left = 0

    def record(self, provider: str, event_id: str, event_type: str, at: datetime) -> bool:
        if self.crashes_left:
            self.crashes_left -= 1
            raise RuntimeError("injected crash after the effects, before recording the event")
        return super().record(provider, event_id, event_type, at)


@pytest.fixture(scope="module")
def orders_table(cloud: Any) -> str:
    """The template's orders table once it exists; until then, one of the same shape."""
    if "OrdersTable" in cloud.template.physical:
        return cloud.physical_id("OrdersTable")
    name = "payments-tests-orders"
    dynamodb = cloud.client("dynamodb")
    with contextlib.suppress(dynamodb.exceptions.ResourceInUseException):
        dynamodb.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        )
    return name


@pytest.fixture(scope="module")
def secret_ids(cloud: Any) -> dict[str, str]:
    client = cloud.client("secretsmanager")
    suffix = secrets.token_hex(4)
    return {
        name: client.create_secret(Name=f"payments-tests-{name}-{suffix}", SecretString=value)["ARN"]
        for name, value in {"api-key": API_KEY, "webhook": f"whsec_retired, {WEBHOOK_SECRET}"}.items()
    }


@pytest.fixture(scope="module")
def fake() -> Iterator[FakePaymentProvider]:
    with FakePaymentProvider(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET) as provider:
        yield provider


def _function(name: str, environment: dict[str, str]) -> LocalFunction:
    """functions/<name>/app.py, imported as Lambda would (its environment applied during the import)."""
    logical_id = "".join(part.title() for part in name.split("_")) + "Function"
    function = LocalFunction(
        logical_id=logical_id,
        name=f"payments-tests-{logical_id}",
        arn=f"arn:aws:lambda:us-east-1:123456789012:function:payments-tests-{logical_id}",
        code_dir=ROOT / "functions" / name,
        handler="app.handler",
        timeout=30,
        memory=512,
        environment={**environment, "POWERTOOLS_SERVICE_NAME": name, "POWERTOOLS_LOG_LEVEL": "WARNING"},
    )
    function.load()
    return function


@pytest.fixture(scope="module")
def function(cloud: Any, orders_table: str, secret_ids: dict[str, str]) -> LocalFunction:
    """The public webhook receiver: no API key in its environment."""
    return _function(
        "payment_webhook",
        {
            "ORDERS_TABLE": orders_table,
            "PAYMENT_PROVIDER": "fake",
            "PAYMENT_WEBHOOK_SECRET_ID": secret_ids["webhook"],
            "WEBHOOK_EVENT_TTL_DAYS": "7",
            "MAX_PAYMENT_ATTEMPTS": str(MAX_ATTEMPTS),
            "PAYMENT_TASKS_FUNCTION": "payments-tests-PaymentTasksFunction",
        },
    )


@pytest.fixture(scope="module")
def tasks_function(
    cloud: Any, orders_table: str, secret_ids: dict[str, str], fake: FakePaymentProvider
) -> LocalFunction:
    return _function(
        "payment_tasks",
        {
            "ORDERS_TABLE": orders_table,
            "PAYMENT_PROVIDER": "fake",
            "PAYMENT_API_BASE": fake.url,
            "PAYMENT_API_KEY_SECRET_ID": secret_ids["api-key"],
            "STOCK_FUNCTION": "payments-tests-no-stock",
        },
    )


@pytest.fixture(scope="module")
def webhook_url(function: LocalFunction, fake: FakePaymentProvider) -> Iterator[str]:
    """A minimal API Gateway in front of the function: HTTP -> payload v2 event -> handler -> HTTP."""
    pattern = re.compile(r"^/webhooks/payments/(?P<provider>[^/?]+)")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            matched = pattern.match(self.path)
            assert matched, self.path
            event = build_event(
                ROUTE, "POST", self.path, list(self.headers.items()), body, matched.groupdict(), "127.0.0.1"
            )
            try:
                status, headers, payload = to_http_response(function.invoke(event))
            except FunctionError:
                status, headers, payload = 500, [], b'{"message":"Internal Server Error"}'
            self.send_response(status)
            for name, value in headers:
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/payments/fake"
    fake.webhook_url = url
    yield url
    server.shutdown()
    server.server_close()


class RecordedStock:
    """The stock function as the payment tasks see it: returns are recorded, once per return id."""

    def __init__(self) -> None:
        self.returns: dict[str, tuple[str, list[RefundLine]]] = {}

    def return_units(self, return_id: str, order_id: str, lines: list[RefundLine]) -> None:
        self.returns.setdefault(return_id, (order_id, lines))


@dataclass
class World:
    cloud: Any
    table: str
    orders: OrderRepository
    events: CrashingEvents
    sfn: FakeStepFunctions
    service: PaymentWebhooks
    tasks: PaymentTasks
    fake: FakePaymentProvider
    function: LocalFunction
    tasks_function: LocalFunction
    stock: RecordedStock
    finish_later: list[str] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)

    def place_order(self, total: Money = TOTAL, *, register_token: bool = True) -> StoredOrder:
        """A pending order, its payment created (CreatePayment) and, by default, WaitForPayment registered."""
        order_id = secrets.token_urlsafe(24)
        self.orders.create(_order(order_id, total))
        self.tasks.create_payment(order_id)
        if register_token:
            self.tokens[order_id] = f"token-{order_id}"
            self.tasks.await_payment(order_id, self.tokens[order_id])
        return self.order(order_id)

    def order(self, order_id: str) -> StoredOrder:
        order = self.orders.get(order_id)
        assert order is not None
        return order

    def event_item(self, event_id: str, provider: str = "fake") -> dict[str, Any] | None:
        item = (
            self.cloud.client("dynamodb")
            .get_item(TableName=self.table, Key=key(pk=f"EVENT#{provider}#{event_id}", sk="EVENT"), ConsistentRead=True)
            .get("Item")
        )
        return from_item(item) if item else None


@pytest.fixture
def world(
    cloud: Any,
    orders_table: str,
    fake: FakePaymentProvider,
    function: LocalFunction,
    tasks_function: LocalFunction,
    webhook_url: str,
    secret_ids: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> World:
    """Services wired like the functions', with Step Functions and the stock function recorded; the functions'
    handlers use them."""
    dynamodb = cloud.client("dynamodb")
    orders = OrderRepository(dynamodb, orders_table)
    events = CrashingEvents(dynamodb, orders_table, ttl_days=7)
    sfn = FakeStepFunctions()
    stock = RecordedStock()
    tasks = PaymentTasks(
        orders,
        StripeProvider(fake.url, API_KEY, name="fake", timeout=5, max_retries=1),
        StepFunctionsWorkflow(sfn),
        stock,
    )
    finish_later: list[str] = []
    service = PaymentWebhooks(
        orders,
        events,
        StepFunctionsWorkflow(sfn),
        webhook_secrets=lambda: parse_secrets(get_secret(secret_ids["webhook"])),
        provider="fake",
        max_attempts=MAX_ATTEMPTS,
        finish_later=finish_later.append,
    )
    monkeypatch.setattr(function.module, "service", service)
    monkeypatch.setattr(tasks_function.module, "tasks", tasks)
    return World(
        cloud, orders_table, orders, events, sfn, service, tasks, fake, function, tasks_function, stock, finish_later
    )


def _order(order_id: str, total: Money) -> StoredOrder:
    now = datetime.now(UTC)
    shipping = Money(amount=490, currency=total.currency)
    goods = total - shipping
    return StoredOrder(
        id=order_id,
        status=OrderStatus.PENDING,
        cart_id=secrets.token_urlsafe(24),
        email="ada@example.com",
        lines=[
            CartLine(
                sku="LINEN-SHIRT-M",
                product_id="linen-shirt",
                title="Linen shirt — Medium",
                quantity=1,
                unit_price=goods,
                line_total=goods,
            )
        ],
        totals=Totals(
            subtotal=goods,
            shipping=shipping,
            tax=Money(amount=0, currency=total.currency),
            total=total,
            tax_included=True,
            tax_rate_bp=1900,
        ),
        shipping_address=Address(
            name="Ada Lovelace", line1="Unter den Linden 1", city="Berlin", postal_code="10117", country="DE"
        ),
        shipping=CartShipping(
            country="DE",
            method="standard",
            price=shipping,
            estimated_delivery=DeliveryWindow(earliest=date(2026, 12, 1), latest=date(2026, 12, 3)),
        ),
        history=[HistoryEntry(status=OrderStatus.PENDING, at=now)],
        created_at=now,
        updated_at=now,
    )


def _succeeded_event(world: World, order: StoredOrder, **changes: Any) -> dict[str, Any]:
    assert order.payment is not None
    intent = {**world.fake.intent(order.payment.payment_id), "status": "succeeded", **changes}
    return world.fake.event("payment_intent.succeeded", intent)


def _invoke_http(
    world: World, body: bytes, headers: dict[str, str], provider: str = "fake", base64_encoded: bool = False
) -> tuple[int, dict[str, Any]]:
    event = build_event(
        ROUTE,
        "POST",
        f"/webhooks/payments/{provider}",
        list(headers.items()),
        body,
        {"provider": provider},
        "203.0.113.10",
    )
    if base64_encoded:
        event.update(body=base64.b64encode(body).decode("ascii"), isBase64Encoded=True)
    status, response_headers, payload = to_http_response(world.function.invoke(event))
    content_type = {k.lower(): v for k, v in response_headers}.get("content-type", "")
    if status >= 400:
        assert content_type == "application/problem+json", content_type
    return status, json.loads(payload)


# ---------------------------------------------------------------- payment succeeded


def test_a_paid_order_tells_the_workflow_once(world: World) -> None:
    order = world.place_order()
    assert order.status == OrderStatus.AWAITING_PAYMENT and order.payment and order.payment.status == "pending"
    assert world.fake.succeed(order.payment.payment_id) == 200
    paid = world.order(order.id)
    assert paid.payment and paid.payment.status == "succeeded"
    assert paid.status == OrderStatus.AWAITING_PAYMENT  # MarkPaid is the workflow's step, not ours
    assert world.sfn.calls == [("success", world.tokens[order.id], {"output": {"payment_status": "succeeded"}})]
    event, status = world.fake.delivered[-1]
    assert status == 200
    record = world.event_item(event["id"])
    assert record is not None and record["type"] == "payment_intent.succeeded"
    assert 6 * 86_400 < record["expires_at_epoch"] - datetime.now(UTC).timestamp() <= 7 * 86_400


def test_the_same_event_twice_changes_nothing_the_second_time(world: World) -> None:
    order = world.place_order()
    assert order.payment is not None
    world.fake.succeed(order.payment.payment_id)
    event, _ = world.fake.delivered[-1]
    after_first = world.order(order.id)
    assert world.fake.deliver(event) == 200
    assert world.order(order.id) == after_first
    assert len(world.sfn.calls) == 1


def test_payment_failed_after_succeeded_leaves_it_succeeded(world: World) -> None:
    order = world.place_order()
    assert order.payment is not None
    world.fake.succeed(order.payment.payment_id)
    late = world.fake.event(
        "payment_intent.payment_failed",
        {**world.fake.intent(order.payment.payment_id), "status": "requires_payment_method"},
    )
    assert world.fake.deliver(late) == 200
    assert world.order(order.id).payment.status == "succeeded"  # type: ignore[union-attr]
    assert world.sfn.of("failure") == []
    # ...and once the workflow has marked it paid, too.
    world.orders.transition(order.id, OrderStatus.PAID, datetime.now(UTC))
    assert world.fake.deliver(world.fake.event("payment_intent.payment_failed", late["data"]["object"])) == 200
    assert world.order(order.id).status == OrderStatus.PAID
    assert world.sfn.of("failure") == []


@pytest.mark.parametrize(
    "changes",
    [{"amount": 6489}, {"amount": 64900}, {"currency": "usd"}, {"currency": "jpy"}],
    ids=["a cent short", "ten times", "other currency", "other exponent"],
)
def test_an_event_that_does_not_match_the_order_is_refunded_not_paid(world: World, changes: dict[str, Any]) -> None:
    order = world.place_order()
    event = _succeeded_event(world, order, **changes)
    captured = Money(amount=event["data"]["object"]["amount"], currency=event["data"]["object"]["currency"].upper())
    assert world.fake.deliver(event) == 200  # a retry would not fix it
    assert world.fake.deliver(event) == 200  # a redelivery: nothing twice
    failed = world.order(order.id)
    assert failed.status == OrderStatus.AWAITING_PAYMENT and failed.payment is not None
    assert (failed.payment.status, failed.payment.last_error.code) == ("failed", "amount_mismatch")  # type: ignore[union-attr]
    [refund] = failed.refunds
    assert (refund.reason, refund.amount, refund.status, refund.lines) == ("amount_mismatch", captured, "pending", [])
    assert (failed.captured_amount, failed.refunded_amount) == (captured.amount, captured.amount)
    assert world.finish_later == [order.id]  # the payment tasks make the refund (the webhook holds no API key)
    assert [(kind, call["error"]) for kind, _, call in world.sfn.calls] == [("failure", "PaymentFailed")]


def test_currency_is_compared_case_insensitively(world: World) -> None:
    order = world.place_order()
    assert world.fake.deliver(_succeeded_event(world, order, currency="EUR")) == 200
    assert world.order(order.id).payment.status == "succeeded"  # type: ignore[union-attr]


def test_an_event_for_another_payment_or_no_order_changes_nothing(world: World) -> None:
    order = world.place_order()
    other = world.place_order()
    assert other.payment is not None
    foreign = _succeeded_event(world, order, id=other.payment.payment_id)  # right order, wrong payment
    orphan = _succeeded_event(world, order, metadata={"order_id": "no-such-order"})
    unlabelled = _succeeded_event(world, order, metadata={})
    for event in (foreign, orphan, unlabelled):
        assert world.fake.deliver(event) == 200
    assert world.order(order.id).payment.status == "pending"  # type: ignore[union-attr]
    assert world.sfn.calls == []


# ---------------------------------------------------------------- payment failed


def test_a_decline_keeps_the_order_waiting_until_the_last_attempt(world: World) -> None:
    order = world.place_order()
    assert order.payment is not None
    for attempt in range(1, MAX_ATTEMPTS):
        assert world.fake.fail(order.payment.payment_id, message=f"Declined #{attempt}.") == 200
        waiting = world.order(order.id)
        assert waiting.status == OrderStatus.AWAITING_PAYMENT
        assert waiting.payment is not None and waiting.payment.status == PaymentStatus.DECLINED
        assert waiting.payment.attempts == attempt
        assert waiting.payment.last_error is not None and waiting.payment.last_error.model_dump() == {
            "code": "card_declined",
            "message": f"Declined #{attempt}.",
        }
        assert world.sfn.calls == []  # the shopper may try again: the workflow keeps waiting
    assert world.fake.fail(order.payment.payment_id) == 200
    failed = world.order(order.id)
    assert failed.payment is not None and (failed.payment.status, failed.payment.attempts) == ("failed", MAX_ATTEMPTS)
    assert world.sfn.calls == [
        (
            "failure",
            world.tokens[order.id],
            {"error": "PaymentFailed", "cause": f"{MAX_ATTEMPTS} declined payment attempts: Your card was declined."},
        )
    ]


def test_a_decline_then_a_payment_is_paid(world: World) -> None:
    order = world.place_order()
    assert order.payment is not None
    world.fake.fail(order.payment.payment_id)
    assert world.fake.succeed(order.payment.payment_id) == 200  # the same intent, paid on the second try
    paid = world.order(order.id)
    assert paid.payment is not None and (paid.payment.status, paid.payment.attempts) == ("succeeded", 1)
    assert paid.captured_amount == TOTAL.amount
    assert world.sfn.calls == [("success", world.tokens[order.id], {"output": {"payment_status": "succeeded"}})]


def test_a_decline_delivered_twice_or_concurrently_counts_once(world: World) -> None:
    order = world.place_order()
    assert order.payment is not None
    world.events.crashes_left = 1  # applied, then the function died before recording it: the provider redelivers
    assert world.fake.fail(order.payment.payment_id) == 500
    event, _ = world.fake.delivered[-1]
    threads = [threading.Thread(target=world.fake.deliver, args=(event,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert world.order(order.id).payment.attempts == 1  # type: ignore[union-attr]


# ---------------------------------------------------------------- the race with WaitForPayment


def test_a_webhook_before_the_workflow_waits_is_answered_when_it_does(world: World) -> None:
    order = world.place_order(register_token=False)
    assert order.payment is not None
    world.fake.succeed(order.payment.payment_id)
    assert world.sfn.calls == []  # no token yet: nobody to tell
    world.tasks.await_payment(order.id, "late-token")
    assert world.sfn.calls == [("success", "late-token", {"output": {"payment_status": "succeeded"}})]


def test_a_failure_before_the_workflow_waits_is_answered_when_it_does(world: World) -> None:
    order = world.place_order(register_token=False)
    assert order.payment is not None
    for _ in range(MAX_ATTEMPTS):
        world.fake.fail(order.payment.payment_id)
    assert world.sfn.calls == []  # no token yet: nobody to tell
    world.tasks.await_payment(order.id, "late-token")
    assert [(kind, call["error"]) for kind, _, call in world.sfn.calls] == [("failure", "PaymentFailed")]


def test_a_token_registered_between_the_webhooks_read_and_write_is_answered(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The webhook read the order before WaitForPayment stored its token, and wrote after: it must use the token
    its own write returned, since WaitForPayment saw the payment still pending and answered nothing."""
    order = world.place_order(register_token=False)
    assert order.payment is not None
    write = world.orders.record_payment

    def token_lands_first(order_id: str, status: PaymentStatus, **fields: Any) -> StoredOrder:
        world.tasks.await_payment(order_id, "racing-token")
        return write(order_id, status, **fields)

    monkeypatch.setattr(world.orders, "record_payment", token_lands_first)
    world.fake.succeed(order.payment.payment_id)
    assert world.sfn.calls == [("success", "racing-token", {"output": {"payment_status": "succeeded"}})]


def test_await_payment_on_an_order_past_awaiting_payment_fails_the_task(world: World) -> None:
    order = world.place_order()
    world.orders.transition(order.id, OrderStatus.EXPIRED, datetime.now(UTC))
    with pytest.raises(OrderNotAwaitingPayment):
        world.tasks.await_payment(order.id, "another-token")


# ---------------------------------------------------------------- failures and redelivery


def test_a_crash_before_recording_lets_the_retry_through_once(world: World) -> None:
    order = world.place_order()
    assert order.payment is not None
    world.events.crashes_left = 1
    assert world.fake.succeed(order.payment.payment_id) == 500  # the provider will redeliver
    event, _ = world.fake.delivered[-1]
    assert world.event_item(event["id"]) is None
    assert world.fake.deliver(event) == 200  # the redelivery is processed...
    assert world.event_item(event["id"]) is not None
    assert world.fake.deliver(event) == 200  # ...and the next one is a duplicate
    assert world.order(order.id).payment.status == "succeeded"  # type: ignore[union-attr]
    assert world.sfn.answered == {world.tokens[order.id]: "success"}
    assert len(world.sfn.calls) == 2  # the retry re-sent the callback; Step Functions refused it as spent


def test_step_functions_failing_makes_the_provider_retry(world: World) -> None:
    order = world.place_order()
    assert order.payment is not None
    world.sfn.errors_to_raise = ["ThrottlingException"]
    assert world.fake.succeed(order.payment.payment_id) == 500
    event, _ = world.fake.delivered[-1]
    assert world.fake.deliver(event) == 200
    assert world.sfn.answered == {world.tokens[order.id]: "success"}


@pytest.mark.parametrize("code", ["TaskDoesNotExist", "TaskTimedOut", "InvalidToken"])
def test_a_spent_task_token_means_the_workflow_moved_on(world: World, code: str) -> None:
    order = world.place_order()
    assert order.payment is not None
    world.sfn.errors_to_raise = [code]
    assert world.fake.succeed(order.payment.payment_id) == 200
    assert world.event_item(world.fake.delivered[-1][0]["id"]) is not None


# ---------------------------------------------------------------- what is rejected, and what is ignored


@pytest.mark.parametrize("forge", ["wrong secret", "stale", "future", "tampered", "missing", "v0 only"])
def test_a_rejected_signature_changes_nothing(world: World, forge: str) -> None:
    order = world.place_order()
    body = json.dumps(_succeeded_event(world, order)).encode()
    now = int(datetime.now(UTC).timestamp())
    header = {
        "wrong secret": sign(body, "whsec_guess", now),
        "stale": sign(body, WEBHOOK_SECRET, now - 301),
        "future": sign(body, WEBHOOK_SECRET, now + 301),
        "tampered": sign(body.replace(b'"order_id"', b'"order_id" '), WEBHOOK_SECRET, now),
        "missing": None,
        "v0 only": sign(body, WEBHOOK_SECRET, now).replace("v1=", "v0="),
    }[forge]
    headers = {"Content-Type": "application/json"} | ({"Stripe-Signature": header} if header else {})
    status, problem = _invoke_http(world, body, headers)
    assert (status, problem["code"]) == (400, "invalid_signature")
    assert world.order(order.id) == order
    assert world.event_item(json.loads(body)["id"]) is None
    assert world.sfn.calls == []


def test_a_base64_encoded_body_is_verified_on_its_decoded_bytes(world: World) -> None:
    order = world.place_order()
    # Bytes a JSON re-serialisation would change (spacing, key order, escapes): only the raw bytes verify.
    body = json.dumps(_succeeded_event(world, order), indent=3, ensure_ascii=True).encode() + b"\n"
    headers = {"Content-Type": "application/json", "Stripe-Signature": sign(body, WEBHOOK_SECRET)}
    assert _invoke_http(world, body, headers, base64_encoded=True) == (200, {"received": True})
    assert world.order(order.id).payment.status == "succeeded"  # type: ignore[union-attr]


def test_the_retired_secret_still_verifies_during_rotation(world: World) -> None:
    order = world.place_order()
    body = json.dumps(_succeeded_event(world, order)).encode()
    status, _ = _invoke_http(world, body, {"Stripe-Signature": sign(body, "whsec_retired")})
    assert status == 200


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"id": "evt_1", "type": ', "malformed_json"),
        (b"\xff\xfe", "malformed_json"),
        (b'["not", "an", "event"]', "malformed_event"),
        (b'{"id": "evt_x", "type": "payment_intent.succeeded", "data": {}}', "malformed_event"),
    ],
)
def test_a_well_signed_body_that_is_not_an_event_is_a_400(world: World, body: bytes, code: str) -> None:
    status, problem = _invoke_http(world, body, {"Stripe-Signature": sign(body, WEBHOOK_SECRET)})
    assert (status, problem["code"]) == (400, code)


def test_other_event_types_are_acknowledged_and_ignored(world: World) -> None:
    body = json.dumps({"id": "evt_other", "type": "charge.refunded", "data": {"object": {"id": "ch_1"}}}).encode()
    assert _invoke_http(world, body, {"Stripe-Signature": sign(body, WEBHOOK_SECRET)}) == (200, {"received": True})
    assert world.sfn.calls == []


def test_an_unknown_provider_is_404(world: World) -> None:
    body = b"{}"
    status, problem = _invoke_http(world, body, {"Stripe-Signature": sign(body, WEBHOOK_SECRET)}, provider="paypal")
    assert (status, problem["code"]) == (404, "not_found")


def test_only_the_configured_provider_is_served(world: World, secret_ids: dict[str, str]) -> None:
    """One signed event must not be processed once per path (deduplication is per provider): a stack configured for
    `fake` answers 404 on /stripe and changes nothing, and one configured for `stripe` the other way round."""
    order = world.place_order()
    body = json.dumps(_succeeded_event(world, order)).encode()
    headers = {"Stripe-Signature": sign(body, WEBHOOK_SECRET)}
    status, problem = _invoke_http(world, body, headers, provider="stripe")
    assert (status, problem["code"]) == (404, "not_found")
    assert world.event_item(json.loads(body)["id"], provider="stripe") is None
    assert world.order(order.id).payment.status == "pending"  # type: ignore[union-attr]
    on_stripe = PaymentWebhooks(
        world.orders,
        world.events,
        StepFunctionsWorkflow(world.sfn),
        webhook_secrets=lambda: parse_secrets(get_secret(secret_ids["webhook"])),
        provider="stripe",
        max_attempts=MAX_ATTEMPTS,
        finish_later=world.finish_later.append,
    )
    with pytest.raises(UnknownWebhookSender):
        on_stripe.receive("fake", body, headers["Stripe-Signature"])
    on_stripe.receive("stripe", body, headers["Stripe-Signature"])
    assert world.order(order.id).payment.status == "succeeded"  # type: ignore[union-attr]
    assert world.event_item(json.loads(body)["id"], provider="stripe") is not None


# ---------------------------------------------------------------- the workflow's tasks through the handler


def test_create_payment_task_is_idempotent(world: World) -> None:
    order_id = secrets.token_urlsafe(24)
    world.orders.create(_order(order_id, TOTAL))
    first = world.tasks_function.invoke({"action": "create_payment", "order_id": order_id})
    again = world.tasks_function.invoke({"action": "create_payment", "order_id": order_id})
    assert first == again and first["payment_id"].startswith("pi_")
    order = world.order(order_id)
    assert order.status == OrderStatus.AWAITING_PAYMENT
    assert order.payment is not None and order.payment.model_dump(exclude_none=True) == {
        "provider": "fake",
        "status": "pending",
        "payment_id": first["payment_id"],
        "attempts": 0,
        "client_secret": world.fake.intent(first["payment_id"])["client_secret"],
        "redirect_url": world.fake.intent(first["payment_id"])["next_action"]["redirect_to_url"]["url"],
    }
    assert [h.status for h in order.history] == [OrderStatus.PENDING, OrderStatus.AWAITING_PAYMENT]


def test_create_payment_retried_after_its_write_but_before_it_answered(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retry read the order before the first attempt's write landed: the transition is refused, and fine."""
    order_id = secrets.token_urlsafe(24)
    world.orders.create(_order(order_id, TOTAL))
    stale = world.order(order_id)
    first = world.tasks.create_payment(order_id)
    monkeypatch.setattr(world.orders, "get", lambda _: stale)
    assert world.tasks.create_payment(order_id) == first


def test_await_payment_task_registers_the_token(world: World) -> None:
    order = world.place_order(register_token=False)
    assert world.tasks_function.invoke({"action": "await_payment", "order_id": order.id, "task_token": "tok"}) == {
        "registered": True
    }
    assert world.order(order.id).task_token == "tok"
    assert world.sfn.calls == []


@pytest.mark.parametrize(
    "event",
    [
        {"action": "create_payment", "order_id": "no-such-order"},
        {"action": "await_payment", "order_id": "no-such-order", "task_token": "t"},
        {"action": "refund", "order_id": "x"},
        {"action": "create_payment"},
    ],
)
def test_bad_tasks_fail_with_named_errors(world: World, event: dict[str, Any]) -> None:
    with pytest.raises(FunctionError) as failed:
        world.tasks_function.invoke(event)
    assert failed.value.payload["errorType"] in {"OrderNotFound", "OrderNotAwaitingPayment", "ValidationError"}


def test_order_not_found_is_its_own_error(world: World) -> None:
    with pytest.raises(OrderNotFound):
        world.tasks.create_payment("no-such-order")
