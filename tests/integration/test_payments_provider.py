"""StripeProvider over real HTTP on loopback: against the local Stripe emulator, and against servers that
fail the ways a remote API fails (5xx, silence)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest

from local_cloud.fake_payments import FakePaymentProvider
from storefront.money import Money
from storefront.payments.providers import PaymentProviderError, PaymentProviderUnavailable, StripeProvider

API_KEY = "sk_test_provider_tests"
TOTAL = Money(amount=4990, currency="EUR")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakePaymentProvider]:
    with FakePaymentProvider(api_key=API_KEY) as provider:
        yield provider


def test_creates_a_payment_intent_on_the_emulator(fake: FakePaymentProvider) -> None:
    created = StripeProvider(fake.url, API_KEY, name="fake").create_payment("order-a", TOTAL, "order-order-a")
    assert created.payment_id.startswith("pi_") and len(created.payment_id) == 27
    assert created.client_secret and created.client_secret.startswith(created.payment_id + "_secret_")
    assert created.status == "requires_payment_method"
    intent = fake.intent(created.payment_id)
    assert (intent["amount"], intent["currency"], intent["metadata"]) == (4990, "eur", {"order_id": "order-a"})
    assert intent["automatic_payment_methods"] == {"enabled": True}


def test_the_same_idempotency_key_gets_the_same_intent(fake: FakePaymentProvider) -> None:
    provider = StripeProvider(fake.url, API_KEY)
    first = provider.create_payment("order-b", TOTAL, "order-order-b")
    assert provider.create_payment("order-b", TOTAL, "order-order-b") == first
    assert provider.create_payment("order-c", TOTAL, "order-order-c").payment_id != first.payment_id


def test_the_key_may_come_from_a_callable_read_per_request(fake: FakePaymentProvider) -> None:
    reads: list[int] = []

    def key() -> str:
        reads.append(1)
        return API_KEY

    provider = StripeProvider(fake.url, key)
    assert not reads  # nothing fetched before it is needed
    provider.create_payment("order-d", TOTAL, "order-order-d")
    assert reads == [1]


def test_a_wrong_api_key_is_a_clear_refusal_not_retried(fake: FakePaymentProvider) -> None:
    with pytest.raises(PaymentProviderError, match="401.*Invalid API Key") as refused:
        StripeProvider(fake.url, "sk_test_wrong", backoff=5).create_payment("order-e", TOTAL, "order-order-e")
    assert refused.value.status == 401 and not isinstance(refused.value, PaymentProviderUnavailable)


def test_a_reused_key_with_other_parameters_is_refused(fake: FakePaymentProvider) -> None:
    provider = StripeProvider(fake.url, API_KEY)
    provider.create_payment("order-f", TOTAL, "order-order-f")
    with pytest.raises(PaymentProviderError, match="idempotency_error"):
        provider.create_payment("order-f", Money(amount=1, currency="EUR"), "order-order-f")


def test_zero_decimal_currencies_are_sent_in_their_minor_unit(fake: FakePaymentProvider) -> None:
    created = StripeProvider(fake.url, API_KEY).create_payment("order-g", Money(amount=5000, currency="JPY"), "k-g")
    assert (fake.intent(created.payment_id)["amount"], fake.intent(created.payment_id)["currency"]) == (5000, "jpy")


# ---------------------------------------------------------------- servers that misbehave


class _Scripted:
    """A loopback HTTP server answering POSTs with `respond(attempt, request) -> (status, body, headers)`."""

    def __init__(self, respond: Callable[[int, dict[str, Any]], tuple[int, dict[str, Any], dict[str, str]] | None]):
        self.requests: list[dict[str, Any]] = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                request = {"headers": dict(self.headers.items()), "form": dict(parse_qsl(body))}
                scripted.requests.append(request)
                answer = respond(len(scripted.requests), request)
                if answer is None:
                    time.sleep(2)  # never answers in time
                    return
                status, payload, headers = answer
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def scripted() -> Iterator[Callable[..., _Scripted]]:
    servers: list[_Scripted] = []

    def start(respond: Callable[..., Any]) -> _Scripted:
        servers.append(_Scripted(respond))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _flaky_stripe() -> Callable[[int, dict[str, Any]], tuple[int, dict[str, Any], dict[str, str]]]:
    """500 twice, then 200; one intent per idempotency key, as Stripe keeps it."""
    intents: dict[str, dict[str, Any]] = {}

    def respond(attempt: int, request: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        if attempt <= 2:
            return 500, {"error": {"type": "api_error", "message": "Something went wrong"}}, {}
        key = request["headers"]["Idempotency-Key"]
        intents.setdefault(key, {"id": f"pi_{len(intents) + 1:024d}", "client_secret": "cs", "status": "requires_payment_method"})
        return 200, intents[key], {}

    respond.intents = intents  # type: ignore[attr-defined]
    return respond


def test_5xx_is_retried_with_the_same_idempotency_key(scripted: Callable[..., _Scripted]) -> None:
    respond = _flaky_stripe()
    server = scripted(respond)
    created = StripeProvider(server.url, API_KEY, max_retries=2, backoff=0.01).create_payment("order-h", TOTAL, "order-order-h")
    assert created.payment_id == "pi_" + "1".zfill(24)
    assert len(server.requests) == 3
    assert {r["headers"]["Idempotency-Key"] for r in server.requests} == {"order-order-h"}
    assert all(r["headers"]["Authorization"] == f"Bearer {API_KEY}" for r in server.requests)
    assert server.requests[0]["form"] == {"amount": "4990", "currency": "eur", "metadata[order_id]": "order-h",
                                          "automatic_payment_methods[enabled]": "true"}
    assert len(respond.intents) == 1  # type: ignore[attr-defined]


def test_5xx_beyond_the_retries_is_unavailable(scripted: Callable[..., _Scripted]) -> None:
    server = scripted(lambda attempt, request: (503, {"error": {"type": "api_error", "message": "down"}}, {}))
    with pytest.raises(PaymentProviderUnavailable, match="503 after 3 attempts"):
        StripeProvider(server.url, API_KEY, max_retries=2, backoff=0.01).create_payment("order-i", TOTAL, "k-i")
    assert len(server.requests) == 3


def test_stripe_should_retry_false_stops_retries(scripted: Callable[..., _Scripted]) -> None:
    server = scripted(lambda attempt, request: (500, {"error": {"type": "api_error"}}, {"Stripe-Should-Retry": "false"}))
    with pytest.raises(PaymentProviderError):
        StripeProvider(server.url, API_KEY, backoff=0.01).create_payment("order-j", TOTAL, "k-j")
    assert len(server.requests) == 1


def test_4xx_is_not_retried(scripted: Callable[..., _Scripted]) -> None:
    server = scripted(lambda attempt, request: (402, {"error": {"type": "card_error", "code": "card_declined",
                                                                "message": "Your card was declined."}}, {}))
    with pytest.raises(PaymentProviderError, match="402 card_error.*declined") as refused:
        StripeProvider(server.url, API_KEY, backoff=0.01).create_payment("order-k", TOTAL, "k-k")
    assert refused.value.code == "card_declined" and len(server.requests) == 1


def test_a_provider_that_never_answers_times_out_with_a_clear_error(scripted: Callable[..., _Scripted]) -> None:
    server = scripted(lambda attempt, request: None)
    started = time.monotonic()
    with pytest.raises(PaymentProviderUnavailable, match="unreachable after 2 attempts.*timed out"):
        StripeProvider(server.url, API_KEY, timeout=0.2, max_retries=1, backoff=0.01).create_payment("order-l", TOTAL, "k-l")
    assert time.monotonic() - started < 2
    assert len(server.requests) == 2


def test_a_closed_port_is_unavailable() -> None:
    with pytest.raises(PaymentProviderUnavailable, match="unreachable"):
        StripeProvider("http://127.0.0.1:9", API_KEY, max_retries=1, backoff=0.01).create_payment("order-m", TOTAL, "k-m")
