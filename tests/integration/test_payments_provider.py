"""StripeProvider (Stripe's own SDK, StripeClient) over real HTTP on loopback: against the local Stripe emulator,
which must answer the SDK's real requests (create, retrieve, cancel, refunds), and against servers that fail the
ways a remote API fails (5xx, silence); and the emulator's hosted payment page, as a browser uses it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from storefront.money import Money
from storefront.payments.providers import PaymentProviderError, PaymentProviderUnavailable
from storefront.payments.stripe_provider import StripeProvider
from storefront.webhooks.signatures import verify

from local_cloud.fake_payments import FakePaymentProvider, PaymentStateError, format_amount

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
    with pytest.raises(PaymentProviderError, match=r"401.*Invalid API Key") as refused:
        StripeProvider(fake.url, "sk_test_wrong").create_payment("order-e", TOTAL, "order-order-e")
    assert refused.value.status == 401 and not isinstance(refused.value, PaymentProviderUnavailable)


def test_a_reused_key_with_other_parameters_is_refused(fake: FakePaymentProvider) -> None:
    provider = StripeProvider(fake.url, API_KEY)
    provider.create_payment("order-f", TOTAL, "order-order-f")
    with pytest.raises(PaymentProviderError, match="IdempotencyError"):
        provider.create_payment("order-f", Money(amount=1, currency="EUR"), "order-order-f")


def test_zero_decimal_currencies_are_sent_in_their_minor_unit(fake: FakePaymentProvider) -> None:
    created = StripeProvider(fake.url, API_KEY).create_payment("order-g", Money(amount=5000, currency="JPY"), "k-g")
    assert (fake.intent(created.payment_id)["amount"], fake.intent(created.payment_id)["currency"]) == (5000, "jpy")


# -------------------------------------------------------------- cancel, retrieve, refunds: the SDK against the emulator


def _paid(fake: FakePaymentProvider, order_id: str) -> str:
    payment_id = StripeProvider(fake.url, API_KEY).create_payment(order_id, TOTAL, f"k-{order_id}").payment_id
    fake.webhook_url = None  # no shop listening in these tests: the control methods need none
    fake._move(payment_id, status="succeeded")
    return payment_id


def test_cancel_makes_the_intent_unpayable(fake: FakePaymentProvider) -> None:
    provider = StripeProvider(fake.url, API_KEY)
    payment_id = provider.create_payment("order-c1", TOTAL, "k-c1").payment_id
    assert provider.payment(payment_id).status == "requires_payment_method"
    canceled = provider.cancel_payment(payment_id)
    assert (canceled.status, canceled.amount, canceled.currency) == ("canceled", 4990, "EUR")
    assert fake.intent(payment_id)["cancellation_reason"] == "abandoned"
    assert provider.cancel_payment(payment_id).status == "canceled"  # again: refused by Stripe, read back
    with pytest.raises(PaymentStateError):
        fake.succeed(payment_id)


def test_an_intent_that_succeeded_or_is_processing_is_not_canceled(fake: FakePaymentProvider) -> None:
    provider = StripeProvider(fake.url, API_KEY)
    assert provider.cancel_payment(_paid(fake, "order-c2")).status == "succeeded"
    processing = provider.create_payment("order-c3", TOTAL, "k-c3").payment_id
    fake._move(processing, status="processing")
    assert provider.cancel_payment(processing).status == "processing"
    assert fake.intent(processing)["status"] == "processing"


def test_the_emulator_replays_a_keys_first_answer_errors_included(fake: FakePaymentProvider) -> None:
    """As Stripe does (docs.stripe.com/idempotency): the first answer to a key is saved once the endpoint ran and
    replayed, a refusal too, whatever the object's state is now; other parameters with the key are refused. An
    outage injected before the endpoint ran is not saved."""
    payment_id = StripeProvider(fake.url, API_KEY).create_payment("order-i1", TOTAL, "k-i1").payment_id
    fake._move(payment_id, status="processing")
    cancel = f"{fake.url}/v1/payment_intents/{payment_id}/cancel"
    headers = {"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": "cancel-i1"}
    first = httpx.post(cancel, headers=headers)
    assert (first.status_code, first.json()["error"]["code"]) == (400, "payment_intent_unexpected_state")
    fake._move(payment_id, status="requires_payment_method")
    again = httpx.post(cancel, headers=headers)
    assert (again.status_code, again.json(), again.headers["Idempotent-Replayed"]) == (400, first.json(), "true")
    assert fake.intent(payment_id)["status"] == "requires_payment_method"
    other = httpx.post(cancel, headers=headers, data={"cancellation_reason": "duplicate"})
    assert (other.status_code, other.json()["error"]["type"]) == (400, "idempotency_error")
    fake.inject_failures(500)
    assert httpx.post(cancel, headers={**headers, "Idempotency-Key": "cancel-i1b"}).status_code == 500
    canceled = httpx.post(cancel, headers={**headers, "Idempotency-Key": "cancel-i1b"})
    assert (canceled.status_code, canceled.json()["status"]) == (200, "canceled")
    assert "Idempotent-Replayed" not in canceled.headers


def test_cancel_is_asked_afresh_each_time_not_replayed(fake: FakePaymentProvider) -> None:
    """Refused while processing, the intent became payable again: the next cancel must cancel it (a key of ours per
    intent would replay the refusal for 24 hours and leave it payable)."""
    provider = StripeProvider(fake.url, API_KEY)
    payment_id = provider.create_payment("order-i2", TOTAL, "k-i2").payment_id
    fake._move(payment_id, status="processing")
    assert provider.cancel_payment(payment_id).status == "processing"
    fake._move(payment_id, status="requires_payment_method")
    assert provider.cancel_payment(payment_id).status == "canceled"
    assert fake.intent(payment_id)["status"] == "canceled"


def test_refunds_up_to_what_was_paid_once_per_key(fake: FakePaymentProvider) -> None:
    provider = StripeProvider(fake.url, API_KEY)
    payment_id = _paid(fake, "order-r1")
    metadata = {"order_id": "order-r1", "refund_id": "rf_1"}
    first = provider.refund(payment_id, Money(amount=1000, currency="EUR"), "rf_1", metadata)
    assert (first.status, first.amount) == ("succeeded", 1000) and first.refund_id.startswith("re_")
    assert provider.refund(payment_id, Money(amount=1000, currency="EUR"), "rf_1", metadata) == first  # replayed
    assert provider.refund_status(first.refund_id) == first
    assert fake.refund(first.refund_id)["metadata"] == metadata
    with pytest.raises(PaymentProviderError, match="greater than unrefunded amount") as refused:
        provider.refund(payment_id, Money(amount=3991, currency="EUR"), "rf_2", metadata)
    assert refused.value.code == "amount_too_large"
    assert provider.refund(payment_id, Money(amount=3990, currency="EUR"), "rf_3", metadata).amount == 3990


def test_a_pending_refund_settles_later_and_says_so(
    fake: FakePaymentProvider, scripted: Callable[..., _Scripted]
) -> None:
    provider = StripeProvider(fake.url, API_KEY)
    payment_id = _paid(fake, "order-r2")
    shop = scripted(lambda attempt, request: (200, {"received": True}, {}))
    fake.refund_outcome, fake.webhook_url = "pending", shop.url
    try:
        refund = provider.refund(payment_id, TOTAL, "rf_p", {"order_id": "order-r2", "refund_id": "rf_p"})
        assert refund.status == "pending"
        assert fake.settle_refund(refund.refund_id, "failed") == 200
    finally:
        fake.refund_outcome, fake.webhook_url = "succeeded", None
    assert provider.refund_status(refund.refund_id).status == "failed"
    sent = [json.loads(r["body"]) for r in shop.requests]
    updated = next(e for e in sent if e["type"] == "refund.updated")  # refund.created went out first, from a thread
    assert updated["data"]["object"]["status"] == "failed"


def test_an_unpaid_intent_cannot_be_refunded(fake: FakePaymentProvider) -> None:
    provider = StripeProvider(fake.url, API_KEY)
    payment_id = provider.create_payment("order-r3", TOTAL, "k-r3").payment_id
    with pytest.raises(PaymentProviderError) as refused:
        provider.refund(payment_id, TOTAL, "rf_u", {"order_id": "order-r3"})
    assert refused.value.code == "charge_not_refundable" and not isinstance(refused.value, PaymentProviderUnavailable)


def test_injected_outages_are_retried_by_the_sdk_then_unavailable(fake: FakePaymentProvider) -> None:
    provider = StripeProvider(fake.url, API_KEY, max_retries=1)
    payment_id = provider.create_payment("order-o1", TOTAL, "k-o1").payment_id
    fake.inject_failures(503)
    assert provider.payment(payment_id).status == "requires_payment_method"  # the SDK's retry got through
    fake.inject_failures(503, 500)
    with pytest.raises(PaymentProviderUnavailable):
        provider.cancel_payment(payment_id)
    assert fake.intent(payment_id)["status"] == "requires_payment_method"


# ---------------------------------------------------------------- servers that misbehave


class _Scripted:
    """A loopback HTTP server answering POSTs with `respond(attempt, request) -> (status, body, headers)`."""

    def __init__(self, respond: Callable[[int, dict[str, Any]], tuple[int, dict[str, Any], dict[str, str]] | None]):
        self.requests: list[dict[str, Any]] = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                request = {"headers": dict(self.headers.items()), "form": dict(parse_qsl(body)), "body": body}
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


@pytest.fixture
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
        intents.setdefault(
            key, {"id": f"pi_{len(intents) + 1:024d}", "client_secret": "cs", "status": "requires_payment_method"}
        )
        return 200, intents[key], {}

    respond.intents = intents  # type: ignore[attr-defined]
    return respond


def test_5xx_is_retried_with_the_same_idempotency_key(scripted: Callable[..., _Scripted]) -> None:
    respond = _flaky_stripe()
    server = scripted(respond)
    created = StripeProvider(server.url, API_KEY, max_retries=2).create_payment("order-h", TOTAL, "order-order-h")
    assert created.payment_id == "pi_" + "1".zfill(24)
    assert len(server.requests) == 3
    assert {r["headers"]["Idempotency-Key"] for r in server.requests} == {"order-order-h"}
    assert all(r["headers"]["Authorization"] == f"Bearer {API_KEY}" for r in server.requests)
    assert server.requests[0]["form"] == {
        "amount": "4990",
        "currency": "eur",
        "metadata[order_id]": "order-h",
        "automatic_payment_methods[enabled]": "true",
    }
    assert server.requests[0]["headers"]["User-Agent"].startswith("Stripe/v1 PythonBindings/")  # the real SDK
    assert len(respond.intents) == 1  # type: ignore[attr-defined]


def test_5xx_beyond_the_retries_is_unavailable(scripted: Callable[..., _Scripted]) -> None:
    server = scripted(lambda attempt, request: (503, {"error": {"type": "api_error", "message": "down"}}, {}))
    with pytest.raises(PaymentProviderUnavailable, match="unavailable after 3 attempts") as unavailable:
        StripeProvider(server.url, API_KEY, max_retries=2).create_payment("order-i", TOTAL, "k-i")
    assert unavailable.value.status == 503
    assert len(server.requests) == 3


def test_stripe_should_retry_false_stops_retries(scripted: Callable[..., _Scripted]) -> None:
    server = scripted(
        lambda attempt, request: (500, {"error": {"type": "api_error"}}, {"Stripe-Should-Retry": "false"})
    )
    with pytest.raises(PaymentProviderError):
        StripeProvider(server.url, API_KEY).create_payment("order-j", TOTAL, "k-j")
    assert len(server.requests) == 1


def test_4xx_is_not_retried(scripted: Callable[..., _Scripted]) -> None:
    server = scripted(
        lambda attempt, request: (
            402,
            {"error": {"type": "card_error", "code": "card_declined", "message": "Your card was declined."}},
            {},
        )
    )
    with pytest.raises(PaymentProviderError, match=r"402 CardError.*declined") as refused:
        StripeProvider(server.url, API_KEY).create_payment("order-k", TOTAL, "k-k")
    assert refused.value.code == "card_declined" and len(server.requests) == 1


def test_a_provider_that_never_answers_times_out_with_a_clear_error(scripted: Callable[..., _Scripted]) -> None:
    server = scripted(lambda attempt, request: None)
    started = time.monotonic()
    with pytest.raises(PaymentProviderUnavailable, match="unavailable after 2 attempts"):
        StripeProvider(server.url, API_KEY, timeout=0.2, max_retries=1).create_payment("order-l", TOTAL, "k-l")
    assert time.monotonic() - started < 3  # two timeouts and the SDK's jittered pause (0.5-1 s) between them
    assert len(server.requests) == 2


def test_a_closed_port_is_unavailable() -> None:
    with pytest.raises(PaymentProviderUnavailable, match="unavailable"):
        StripeProvider("http://127.0.0.1:9", API_KEY, max_retries=1).create_payment("order-m", TOTAL, "k-m")


# ------------------------------------------------------------ the hosted payment page (what the shopper's browser sees)

WEBHOOK_SECRET = "whsec_page_tests"
RETURN_URL = "http://127.0.0.1:3000/#/orders/order-p"


@pytest.fixture
def shop(scripted: Callable[..., _Scripted]) -> _Scripted:
    """The storefront's webhook endpoint: records what the provider sends and accepts it."""
    return scripted(lambda attempt, request: (200, {"received": True}, {}))


@pytest.fixture
def hosted(shop: _Scripted) -> Iterator[FakePaymentProvider]:
    with FakePaymentProvider(
        api_key=API_KEY, webhook_secret=WEBHOOK_SECRET, webhook_url=f"{shop.url}/webhooks/payments/fake"
    ) as provider:
        yield provider


@pytest.fixture
def browser(hosted: FakePaymentProvider) -> Iterator[httpx.Client]:
    """A client without the API key (a shopper has none) that, like a test, does not follow redirects itself."""
    with httpx.Client(base_url=hosted.url, timeout=30, follow_redirects=False) as client:
        yield client


def _payment(provider: FakePaymentProvider, order_id: str = "order-p") -> str:
    return (
        StripeProvider(provider.url, API_KEY, name="fake").create_payment(order_id, TOTAL, f"k-{order_id}").payment_id
    )


def _webhooks(shop: _Scripted) -> list[dict[str, Any]]:
    """The events the shop received, each checked against its Stripe-Signature."""
    events = []
    for request in shop.requests:
        verify(request["body"].encode(), request["headers"]["Stripe-Signature"], WEBHOOK_SECRET)
        events.append(json.loads(request["body"]))
    return events


def test_a_new_intent_sends_the_shopper_to_the_hosted_page(fake: FakePaymentProvider) -> None:
    created = StripeProvider(fake.url, API_KEY, name="fake").create_payment("order-n", TOTAL, "order-order-n")
    assert created.redirect_url == f"{fake.url}/pay/{created.payment_id}"
    assert fake.intent(created.payment_id)["next_action"] == {
        "type": "redirect_to_url",
        "redirect_to_url": {"url": created.redirect_url, "return_url": None},
    }


def test_the_page_shows_the_amount_with_pay_and_decline(
    hosted: FakePaymentProvider, browser: httpx.Client, shop: _Scripted
) -> None:
    payment_id = _payment(hosted)
    page = browser.get(f"/pay/{payment_id}", params={"return_url": RETURN_URL})
    assert page.status_code == 200, page.text
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert "<h1>Pay 49.90 EUR</h1>" in page.text and "order-p" in page.text
    assert '<button type="submit" name="outcome" value="succeed" class="pay">Pay</button>' in page.text
    assert '<button type="submit" name="outcome" value="fail" class="decline">Decline</button>' in page.text
    assert f'<form method="post" action="/pay/{payment_id}">' in page.text
    assert f'name="return_url" value="{RETURN_URL}"' in page.text
    assert "<script" not in page.text
    assert shop.requests == []  # looking is not paying


def test_pay_sends_the_signed_succeeded_webhook_then_returns_to_the_shop(
    hosted: FakePaymentProvider, browser: httpx.Client, shop: _Scripted
) -> None:
    payment_id = _payment(hosted)
    paid = browser.post(f"/pay/{payment_id}", data={"outcome": "succeed", "return_url": RETURN_URL})
    assert paid.status_code == 303, paid.text
    assert paid.headers["location"] == RETURN_URL
    [event] = _webhooks(shop)  # delivered before the answer: the shop knows by the time the shopper is back
    assert event["type"] == "payment_intent.succeeded"
    assert (event["data"]["object"]["id"], event["data"]["object"]["status"]) == (payment_id, "succeeded")
    assert event["data"]["object"]["metadata"] == {"order_id": "order-p"}
    assert hosted.intent(payment_id)["amount_received"] == 4990

    again = browser.get(f"/pay/{payment_id}", params={"return_url": RETURN_URL})
    assert again.status_code == 200 and "already succeeded" in again.text and "<button" not in again.text
    twice = browser.post(f"/pay/{payment_id}", data={"outcome": "succeed", "return_url": RETURN_URL})
    assert twice.status_code == 409 and "already succeeded" in twice.text
    assert len(shop.requests) == 1  # a second press sends nothing


def test_decline_sends_the_signed_payment_failed_webhook(
    hosted: FakePaymentProvider, browser: httpx.Client, shop: _Scripted
) -> None:
    payment_id = _payment(hosted)
    declined = browser.post(f"/pay/{payment_id}", data={"outcome": "fail", "return_url": RETURN_URL})
    assert (declined.status_code, declined.headers["location"]) == (303, RETURN_URL)
    [event] = _webhooks(shop)
    assert event["type"] == "payment_intent.payment_failed"
    assert event["data"]["object"]["last_payment_error"]["code"] == "card_declined"
    assert hosted.intent(payment_id)["status"] == "requires_payment_method"
    page = browser.get(f"/pay/{payment_id}")
    assert page.status_code == 200 and "An earlier attempt was declined" in page.text


@pytest.mark.parametrize(
    "return_url",
    [
        "http://localhost:5173/shop?x=1#/orders/a",
        "https://shop.localhost/",
        "http://[::1]:3000/",
        "http://127.0.0.2:8080/",
    ],
)
def test_return_urls_on_this_machine_are_accepted(
    hosted: FakePaymentProvider, browser: httpx.Client, shop: _Scripted, return_url: str
) -> None:
    payment_id = _payment(hosted)
    assert browser.get(f"/pay/{payment_id}", params={"return_url": return_url}).status_code == 200
    paid = browser.post(f"/pay/{payment_id}", data={"outcome": "succeed", "return_url": return_url})
    assert (paid.status_code, paid.headers["location"]) == (303, return_url)


@pytest.mark.parametrize(
    "return_url",
    [
        "https://evil.example/",
        "javascript:alert(1)",
        "//evil.example/",
        "http://127.0.0.1.evil.example/",
        "http://evil.example\\@127.0.0.1/",  # browsers read the host as evil.example; urlsplit as 127.0.0.1
        "http://localhost:3000/\r\nSet-Cookie: a=1",
        "ftp://127.0.0.1/",
        "http://10.0.0.1/",
        "http://127.0.0.1:99999/",
    ],
)
def test_other_return_urls_are_refused_and_nothing_is_paid(
    hosted: FakePaymentProvider, browser: httpx.Client, shop: _Scripted, return_url: str
) -> None:
    payment_id = _payment(hosted)
    page = browser.get(f"/pay/{payment_id}", params={"return_url": return_url})
    assert page.status_code == 400 and "<form" not in page.text
    forged = browser.post(f"/pay/{payment_id}", data={"outcome": "succeed", "return_url": return_url})
    assert forged.status_code == 400 and "location" not in forged.headers
    assert shop.requests == []
    assert hosted.intent(payment_id)["status"] == "requires_payment_method"


def test_without_a_return_url_the_page_says_what_happened(
    hosted: FakePaymentProvider, browser: httpx.Client, shop: _Scripted
) -> None:
    payment_id = _payment(hosted)
    page = browser.get(f"/pay/{payment_id}")
    assert page.status_code == 200 and 'name="return_url" value=""' in page.text
    done = browser.post(f"/pay/{payment_id}", data={"outcome": "succeed", "return_url": ""})
    assert done.status_code == 200 and "Payment succeeded" in done.text
    assert [e["type"] for e in _webhooks(shop)] == ["payment_intent.succeeded"]


def test_unknown_payments_and_outcomes_are_refused(
    hosted: FakePaymentProvider, browser: httpx.Client, shop: _Scripted
) -> None:
    assert browser.get("/pay/pi_doesnotexist", params={"return_url": RETURN_URL}).status_code == 404
    assert browser.post("/pay/pi_doesnotexist", data={"outcome": "succeed"}).status_code == 404
    payment_id = _payment(hosted)
    assert browser.post(f"/pay/{payment_id}", data={"outcome": "refund", "return_url": RETURN_URL}).status_code == 400
    assert shop.requests == []
    # The API beside the page still wants the key.
    assert browser.get(f"/v1/payment_intents/{payment_id}").status_code == 401


def test_a_shop_refusing_the_webhook_is_shown_not_hidden_by_a_redirect(
    scripted: Callable[..., _Scripted], browser: httpx.Client, hosted: FakePaymentProvider
) -> None:
    refusing = scripted(lambda attempt, request: (400, {"code": "invalid_signature"}, {}))
    hosted.webhook_url = refusing.url
    payment_id = _payment(hosted)
    answer = browser.post(f"/pay/{payment_id}", data={"outcome": "succeed", "return_url": RETURN_URL})
    assert answer.status_code == 502 and "HTTP 400" in answer.text and "location" not in answer.headers
    assert f'href="{RETURN_URL}"' in answer.text  # the shopper can still go back


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (4990, "eur", "49.90 EUR"),
        (5, "EUR", "0.05 EUR"),
        (500000, "jpy", "500,000 JPY"),
        (1234, "kwd", "1.234 KWD"),
        (123456789, "usd", "1,234,567.89 USD"),
    ],
)
def test_amounts_are_shown_with_the_currency_exponent(amount: int, currency: str, shown: str) -> None:
    assert format_amount(amount, currency) == shown
