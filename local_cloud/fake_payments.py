"""The local payment provider: a Stripe-compatible emulator on loopback (the "fake" provider).

The storefront talks to it with Stripe's own SDK (storefront.payments.stripe_provider, a `StripeClient` whose
base address points here), and it sends webhooks signed exactly as Stripe signs them, so the local stack
exercises the real code paths: API key, idempotency keys, ids, client secrets, signatures, redelivery.

    fake = FakePaymentProvider(api_key="sk_test_local", webhook_secret="whsec_local_dev_secret").start()
    fake.url                      # PAYMENT_API_BASE for the payment functions
    fake.webhook_url = gateway.url + "/webhooks/payments/fake"
    fake.succeed("pi_...")        # what a customer paying looks like: Stripe's payment_intent.succeeded
    fake.fail("pi_...")           # a declined card: payment_intent.payment_failed (the intent may be paid again)
    fake.processing("pi_...")     # a delayed method (SEPA, ...): payment_intent.processing; succeed/fail later
    fake.refund_outcome = "pending"   # new refunds stay pending until settle_refund("re_...", <status>)
    fake.inject_failures(503, 503)    # the next API requests answer these statuses (then it works again)
    fake.deliver(event)           # resend any event (duplicates, out-of-order deliveries)
    fake.stop()

The API (form-encoded, as Stripe's; every call needs the API key). POSTs honour Idempotency-Key as Stripe does
(docs.stripe.com/idempotency): the first answer to a key, success or error, is saved once the endpoint ran and
replayed for any later request with that key (Idempotent-Replayed: true); the same key with other parameters is
400 idempotency_error. Answers injected by inject_failures() come before the endpoint runs and are not saved.
    POST /v1/payment_intents               create (status requires_payment_method)
    GET  /v1/payment_intents/{id}          retrieve
    POST /v1/payment_intents/{id}/cancel   cancel; refused (400 payment_intent_unexpected_state) once succeeded,
                                           while processing, or when already canceled -> payment_intent.canceled
    POST /v1/refunds                       refund a succeeded intent (payment_intent, amount?, metadata[...]);
                                           more than is left -> 400 amount_too_large -> refund.created, and
                                           charge.refunded once it succeeded; settle_refund() moves a pending one
                                           to succeeded, failed, canceled (both give the amount back) or
                                           requires_action (then to any of the others)
    GET  /v1/refunds/{id}                  retrieve
Webhooks that an API call causes are sent from a background thread, as Stripe sends them after answering;
the control methods above (succeed, fail, processing, settle_refund) send theirs before returning.

A hosted payment page for the shopper's browser (no API key, as on Stripe):
    GET  /pay/{id}?return_url=<url>   the amount, with Pay and Decline buttons
    POST /pay/{id}                    outcome=succeed|fail: runs succeed()/fail() (the signed webhook goes out
                                      before the answer), then 303 to return_url
Each new intent carries next_action.redirect_to_url.url = <fake.url>/pay/<id>, which the storefront turns into
the order's payment.redirect_url. Only http(s) URLs on this machine (localhost, loopback addresses) are accepted
as return_url, so the page cannot be used as an open redirect. Unlike Stripe, the intent's status stays
requires_payment_method while it waits. Not implemented: confirmation, manual capture, automatic webhook retries
(call deliver again).
"""

from __future__ import annotations

import html
import ipaddress
import json
import logging
import re
import secrets
import string
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from copy import deepcopy
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from storefront.money import CURRENCY_EXPONENTS
from storefront.webhooks.signatures import sign

from local_cloud.servers import BackgroundServer

log = logging.getLogger("local_cloud.payments")

_ALPHANUMERIC = string.ascii_letters + string.digits
_INTENT_PATH = re.compile(r"^/v1/payment_intents/(?P<id>[A-Za-z0-9_]+)$")
_CANCEL_PATH = re.compile(r"^/v1/payment_intents/(?P<id>[A-Za-z0-9_]+)/cancel$")
_REFUND_PATH = re.compile(r"^/v1/refunds/(?P<id>[A-Za-z0-9_]+)$")
_PAY_PATH = re.compile(r"^/pay/(?P<id>pi_[A-Za-z0-9]{1,64})$")
API_VERSION = "2024-06-20"  # the Stripe API version whose shapes the emulator follows


class PaymentStateError(ValueError):
    """The intent cannot move that way (Stripe refuses, too): nothing happens after `succeeded` or `canceled`."""


class StripeApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {
            "error": {k: v for k, v in {"type": type_, "code": code, "param": param, "message": message}.items() if v}
        }


def _metadata(params: dict[str, str]) -> dict[str, str]:
    return {m.group(1): v for k, v in params.items() if (m := re.fullmatch(r"metadata\[(.+)\]", k))}


def _random_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def checked_return_url(url: str | None) -> str | None:
    """`url` if the payment page may send the browser there, None when there is none; ValueError otherwise.

    Only http(s) on this machine (localhost, *.localhost, loopback addresses): the emulator serves local shops,
    and accepting any URL would make its page an open redirect. Backslashes, spaces and control characters are
    refused outright, because browsers and urlsplit disagree on where such a URL's host is.
    """
    if not url:
        return None
    if len(url) > 2048 or not url.isascii() or re.search(r"[\\\s\x00-\x1f\x7f]", url):
        raise ValueError("return_url has characters a URL should not have")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError("return_url must be an http or https URL")
    if not _is_this_machine(parts.hostname):
        raise ValueError("return_url must point at localhost or a loopback address")
    _ = parts.port  # ValueError for a port that is not a number in range
    return url


def _is_this_machine(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always loopback
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def format_amount(amount: int, currency: str) -> str:
    """4990 eur -> "49.90 EUR": minor units shown with the currency's ISO 4217 exponent (2 when unknown)."""
    code = currency.upper()
    exponent = CURRENCY_EXPONENTS.get(code, 2)
    major, minor = divmod(amount, 10**exponent)
    return f"{major:,}.{minor:0{exponent}d} {code}" if exponent else f"{major:,} {code}"


class FakePaymentProvider:
    def __init__(
        self,
        *,
        api_key: str = "sk_test_local",
        webhook_secret: str = "whsec_local_dev_secret",
        webhook_url: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_seconds: float = 0.0,
    ) -> None:
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.webhook_url = webhook_url
        self.latency_seconds = latency_seconds  # added to every API answer, to look like a remote service
        self.refund_outcome = "succeeded"  # or "pending": new refunds wait for settle_refund()
        self.delivered: list[tuple[dict[str, Any], int]] = []  # every webhook sent, with the answer's status
        self.requests: list[tuple[str, str]] = []  # (method, path) of every API request, answered or not
        self._intents: dict[str, dict[str, Any]] = {}
        self._refunds: dict[str, dict[str, Any]] = {}
        # (path, key) -> (params, status, answer): the first answer to each key, errors included
        self._idempotent: dict[tuple[str, str], tuple[dict[str, str], int, dict[str, Any]]] = {}
        self._idempotency_lock = threading.Lock()  # one request per key at a time (taken before _lock)
        self._failures: deque[int] = deque()
        self._lock = threading.Lock()
        self._http = BackgroundServer(host, port, _handler_class(self), "fake-payments")

    # ---------------------------------------------------------------- life cycle

    @property
    def url(self) -> str:
        return self._http.url

    def start(self) -> FakePaymentProvider:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    def __enter__(self) -> FakePaymentProvider:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- faults (what a remote API does on a bad day)

    def inject_failures(self, *statuses: int) -> None:
        """The next len(statuses) API requests answer with these HTTP statuses instead of working."""
        with self._lock:
            self._failures.extend(statuses)

    def next_failure(self, method: str, path: str) -> int | None:
        with self._lock:
            self.requests.append((method, path))
            return self._failures.popleft() if self._failures else None

    # ---------------------------------------------------------------- the API (called by the HTTP handler)

    def idempotent(
        self, path: str, params: dict[str, str], idempotency_key: str | None, endpoint: Callable[[], dict[str, Any]]
    ) -> tuple[int, dict[str, Any], bool]:
        """Run a POST endpoint as Stripe's idempotency layer does: (status, answer, replayed). The first answer to a
        key is saved, errors included (a parameter error, found before the endpoint ran, is not), and replayed."""
        if not idempotency_key:
            return *self._answer(endpoint), False
        with self._idempotency_lock:
            saved = self._idempotent.get((path, idempotency_key))
            if saved is not None:
                first_params, status, answer = saved
                if first_params != params:
                    raise StripeApiError(
                        400,
                        "Keys for idempotent requests can only be used with the same parameters "
                        "they were first used with.",
                        type_="idempotency_error",
                    )
                return status, deepcopy(answer), True
            status, answer = self._answer(endpoint)
            if not str(answer.get("error", {}).get("code", "")).startswith("parameter_"):
                self._idempotent[(path, idempotency_key)] = (params, status, deepcopy(answer))
            return status, answer, False

    @staticmethod
    def _answer(endpoint: Callable[[], dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        try:
            return 200, endpoint()
        except StripeApiError as error:
            return error.status, error.body

    def create_intent(self, params: dict[str, str]) -> dict[str, Any]:
        """POST /v1/payment_intents."""
        with self._lock:
            intent = self._new_intent(params)
            # Where the shopper pays: this emulator's hosted page (Stripe's redirect_to_url next action).
            intent["next_action"] = {
                "type": "redirect_to_url",
                "redirect_to_url": {"url": f"{self.url}/pay/{intent['id']}", "return_url": None},
            }
            self._intents[intent["id"]] = intent
            return deepcopy(intent)

    def intent(self, payment_id: str) -> dict[str, Any]:
        """GET /v1/payment_intents/{id}; KeyError if there is no such intent."""
        with self._lock:
            return deepcopy(self._intents[payment_id])

    def cancel_intent(self, payment_id: str, params: dict[str, str]) -> dict[str, Any]:
        """POST /v1/payment_intents/{id}/cancel. Stripe refuses to cancel an intent that succeeded, is processing or
        is canceled already (400 payment_intent_unexpected_state); KeyError for an unknown one."""
        with self._lock:
            intent = self._intents[payment_id]
            if intent["status"] in ("succeeded", "processing", "canceled"):
                raise StripeApiError(
                    400,
                    f"You cannot cancel this PaymentIntent because it has a status of "
                    f"{intent['status']}. Only a PaymentIntent with one of the following statuses "
                    "may be canceled: requires_payment_method, requires_capture, "
                    "requires_confirmation, requires_action, processing.",
                    code="payment_intent_unexpected_state",
                    param="intent",
                )
            intent.update(
                status="canceled",
                canceled_at=int(time.time()),
                next_action=None,
                cancellation_reason=params.get("cancellation_reason") or "requested_by_customer",
            )
            canceled = deepcopy(intent)
        self._send_later(self.event("payment_intent.canceled", canceled))
        return canceled

    def create_refund(self, params: dict[str, str]) -> dict[str, Any]:
        """POST /v1/refunds: a refund of a succeeded intent, at most what is left of it."""
        with self._lock:
            payment_id = params.get("payment_intent")
            intent = self._intents.get(payment_id or "")
            if intent is None:
                raise StripeApiError(
                    400 if payment_id is None else 404,
                    f"No such payment_intent: '{payment_id}'"
                    if payment_id
                    else "Missing required param: payment_intent.",
                    code="resource_missing" if payment_id else "parameter_missing",
                    param="payment_intent",
                )
            if intent["status"] != "succeeded":
                raise StripeApiError(
                    400,
                    f"This PaymentIntent ({payment_id}) does not have a successful charge to refund.",
                    code="charge_not_refundable",
                    param="payment_intent",
                )
            left = intent["amount_received"] - self._refunded(payment_id)
            raw_amount = params.get("amount", str(left))
            if not raw_amount.isdigit() or int(raw_amount) < 1:
                raise StripeApiError(
                    400, f"Invalid integer: {raw_amount}", code="parameter_invalid_integer", param="amount"
                )
            if int(raw_amount) > left:
                raise StripeApiError(
                    400,
                    f"Refund amount ({int(raw_amount)}) is greater than unrefunded amount on charge ({left})",
                    code="amount_too_large" if left else "charge_already_refunded",
                    param="amount",
                )
            refund = {
                "id": _random_id("re_"),
                "object": "refund",
                "amount": int(raw_amount),
                "currency": intent["currency"],
                "payment_intent": payment_id,
                "charge": intent["latest_charge"],
                "status": self.refund_outcome,
                "reason": params.get("reason"),
                "created": int(time.time()),
                "failure_reason": None,
                "metadata": _metadata(params),
            }
            self._refunds[refund["id"]] = refund
            created, charge = deepcopy(refund), self._charge(intent)
        self._send_later(
            self.event("refund.created", created),
            *([self.event("charge.refunded", charge)] if created["status"] == "succeeded" else []),
        )
        return created

    def refund(self, refund_id: str) -> dict[str, Any]:
        """GET /v1/refunds/{id}; KeyError if there is no such refund."""
        with self._lock:
            return deepcopy(self._refunds[refund_id])

    def _refunded(self, payment_id: str) -> int:
        """What is refunded of the intent, or on its way back; failed and canceled refunds gave theirs back."""
        return sum(
            r["amount"]
            for r in self._refunds.values()
            if r["payment_intent"] == payment_id and r["status"] not in ("failed", "canceled")
        )

    def _charge(self, intent: dict[str, Any]) -> dict[str, Any]:
        """The intent's charge as charge.refunded shows it (what the storefront reads of it: ids and amounts)."""
        refunded = sum(
            r["amount"]
            for r in self._refunds.values()
            if r["payment_intent"] == intent["id"] and r["status"] == "succeeded"
        )
        return {
            "id": intent["latest_charge"],
            "object": "charge",
            "amount": intent["amount_received"],
            "amount_refunded": refunded,
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "refunded": refunded >= intent["amount_received"],
            "metadata": deepcopy(intent["metadata"]),
            "status": "succeeded",
        }

    @staticmethod
    def _new_intent(params: dict[str, str]) -> dict[str, Any]:
        amount, currency = params.get("amount"), params.get("currency")
        if amount is None:
            raise StripeApiError(400, "Missing required param: amount.", code="parameter_missing", param="amount")
        if currency is None:
            raise StripeApiError(400, "Missing required param: currency.", code="parameter_missing", param="currency")
        if not amount.isdigit() or int(amount) < 1 or int(amount) > 99_999_999:
            raise StripeApiError(400, "Invalid integer: " + amount, code="parameter_invalid_integer", param="amount")
        if not re.fullmatch(r"[A-Za-z]{3}", currency):
            raise StripeApiError(
                400, f"Invalid currency: {currency}.", code="parameter_invalid_string", param="currency"
            )
        intent_id = _random_id("pi_")
        return {
            "id": intent_id,
            "object": "payment_intent",
            "amount": int(amount),
            "amount_received": 0,
            "currency": currency.lower(),
            "status": "requires_payment_method",
            "client_secret": f"{intent_id}_secret_{_random_id('', 25)}",
            "automatic_payment_methods": {"enabled": params.get("automatic_payment_methods[enabled]") == "true"},
            "capture_method": "automatic",
            "confirmation_method": "automatic",
            "created": int(time.time()),
            "livemode": False,
            "last_payment_error": None,
            "next_action": None,
            "payment_method": None,
            "latest_charge": None,
            "canceled_at": None,
            "cancellation_reason": None,
            "metadata": _metadata(params),
        }

    # ---------------------------------------------------------------- control (what a paying customer does)

    def succeed(self, payment_id: str) -> int:
        """The customer pays: the intent succeeds and payment_intent.succeeded is delivered.
        Returns the webhook's HTTP status; KeyError for an unknown payment id, PaymentStateError once it succeeded
        or was canceled."""
        intent = self._move(payment_id, status="succeeded", last_payment_error=None)
        return self.deliver(self.event("payment_intent.succeeded", intent))

    def fail(self, payment_id: str, message: str = "Your card was declined.") -> int:
        """A payment attempt fails (the intent wants another payment method): payment_intent.payment_failed."""
        error = {"type": "card_error", "code": "card_declined", "decline_code": "generic_decline", "message": message}
        intent = self._move(payment_id, status="requires_payment_method", last_payment_error=error)
        return self.deliver(self.event("payment_intent.payment_failed", intent))

    def processing(self, payment_id: str) -> int:
        """A delayed payment method was used: the intent is processing until succeed() or fail()."""
        intent = self._move(payment_id, status="processing", last_payment_error=None)
        return self.deliver(self.event("payment_intent.processing", intent))

    def settle_refund(self, refund_id: str, status: str) -> int:
        """A pending refund moves on at the bank: refund.updated (and charge.refunded when it succeeded). It may wait
        for the customer first (requires_action), then succeed, fail, or be canceled (Stripe cancels one whose
        customer never acts)."""
        if status not in ("succeeded", "failed", "canceled", "requires_action"):
            raise ValueError("a refund moves to succeeded, failed, canceled or requires_action")
        with self._lock:
            refund = self._refunds[refund_id]
            if refund["status"] not in ("pending", "requires_action") or refund["status"] == status:
                raise PaymentStateError(f"refund {refund_id} is already {refund['status']}")
            refund.update(
                status=status,
                failure_reason={"failed": "lost_or_stolen_card", "canceled": "merchant_request"}.get(status),
            )
            updated, charge = deepcopy(refund), self._charge(self._intents[refund["payment_intent"]])
        answer = self.deliver(self.event("refund.updated", updated))
        if status == "succeeded":
            answer = max(answer, self.deliver(self.event("charge.refunded", charge)))
        return answer

    def _move(self, payment_id: str, status: str, **changes: Any) -> dict[str, Any]:
        with self._lock:
            intent = self._intents[payment_id]
            if intent["status"] in ("succeeded", "canceled"):
                raise PaymentStateError(f"payment {payment_id} has already {intent['status']}")
            intent.update(changes, status=status)
            if status == "succeeded":
                intent["amount_received"] = intent["amount"]
                intent["latest_charge"] = "ch_" + intent["id"].removeprefix("pi_")
            return deepcopy(intent)

    # ---------------------------------------------------------------- the hosted payment page (the shopper's browser)

    def payment_page(self, payment_id: str, query: dict[str, str]) -> tuple[int, str, dict[str, str]]:
        """GET /pay/{id}?return_url=...: (status, HTML, extra headers)."""
        try:
            return_url = checked_return_url(query.get("return_url"))
            intent = self.intent(payment_id)
        except ValueError as error:
            return 400, _page("Cannot show this payment", f"<p>{html.escape(str(error))}.</p>"), {}
        except KeyError:
            return (
                404,
                _page("No such payment", "<p>This payment does not exist (or the local cloud was restarted).</p>"),
                {},
            )
        amount = format_amount(intent["amount"], intent["currency"])
        back = _back_link(return_url)
        if intent["status"] == "succeeded":
            return 200, _page(f"{amount} paid", f"<p>This payment has already succeeded.</p>{back}"), {}
        if intent["status"] == "canceled":
            return (
                200,
                _page("Payment canceled", f"<p>The shop canceled this payment: it cannot be paid any more.</p>{back}"),
                {},
            )
        declined = (
            '<p class="note">An earlier attempt was declined. You may try again.</p>'
            if intent["last_payment_error"]
            else ""
        )
        order_id = intent["metadata"].get("order_id")
        order = f" for order <code>{html.escape(order_id)}</code>" if order_id else ""
        form = (
            f'<form method="post" action="/pay/{quote(payment_id)}">'
            f'<input type="hidden" name="return_url" value="{html.escape(return_url or "", quote=True)}">'
            '<button type="submit" name="outcome" value="succeed" class="pay">Pay</button> '
            '<button type="submit" name="outcome" value="fail" class="decline">Decline</button></form>'
        )
        body = (
            f"<p>Payment <code>{html.escape(payment_id)}</code>{order}. This is the local payment provider: "
            "no card, no money. <strong>Pay</strong> is a successful payment, <strong>Decline</strong> a "
            f"declined card; either way the shop gets the signed webhook Stripe would send.</p>{declined}{form}{back}"
        )
        return 200, _page(f"Pay {amount}", body), {}

    def submit_payment_page(self, payment_id: str, form: dict[str, str]) -> tuple[int, str, dict[str, str]]:
        """POST /pay/{id} (outcome=succeed|fail, return_url): the webhook goes out, then 303 to return_url."""
        outcome = form.get("outcome")
        try:
            return_url = checked_return_url(form.get("return_url"))  # checked again: a form can be forged
            if outcome not in ("succeed", "fail"):
                raise ValueError("outcome must be succeed or fail")
        except ValueError as error:
            return 400, _page("Cannot take this payment", f"<p>{html.escape(str(error))}.</p>"), {}
        back = _back_link(return_url)
        try:
            webhook_status = self.succeed(payment_id) if outcome == "succeed" else self.fail(payment_id)
        except KeyError:
            return 404, _page("No such payment", "<p>This payment does not exist.</p>"), {}
        except PaymentStateError as error:
            return 409, _page("Cannot pay any more", f"<p>{html.escape(str(error).capitalize())}.</p>{back}"), {}
        except (RuntimeError, OSError) as error:  # no webhook URL, or the shop is not listening
            return 502, _page("The shop could not be told", f"<p>{html.escape(str(error))}</p>{back}"), {}
        if not 200 <= webhook_status < 300:
            return (
                502,
                _page(
                    "The shop refused the webhook",
                    f"<p>The storefront answered the signed webhook with HTTP "
                    f"{webhook_status}; see the local cloud's log.</p>{back}",
                ),
                {},
            )
        if return_url:
            return 303, "", {"Location": return_url}
        done = "Payment succeeded" if outcome == "succeed" else "Payment declined"
        return 200, _page(done, "<p>The shop has been told. You can close this window.</p>"), {}

    @staticmethod
    def event(event_type: str, intent: dict[str, Any]) -> dict[str, Any]:
        """A Stripe event around `intent` (a fresh evt_ id each time, as Stripe does for each new event)."""
        return {
            "id": _random_id("evt_"),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
            "data": {"object": intent},
        }

    def deliver(self, event: dict[str, Any], *, timestamp: int | None = None) -> int:
        """POST `event` to webhook_url, signed as Stripe signs it; returns the response's HTTP status."""
        if not self.webhook_url:
            raise RuntimeError("FakePaymentProvider.webhook_url is not set")
        payload = json.dumps(event, indent=2).encode("utf-8")  # Stripe pretty-prints; the signature covers it
        request = urllib.request.Request(
            self.webhook_url,
            data=payload,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                "Stripe-Signature": sign(payload, self.webhook_secret, timestamp),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        log.info("webhook %s (%s) -> %s", event.get("id"), event.get("type"), status)
        with self._lock:
            self.delivered.append((deepcopy(event), status))
        return status

    def _send_later(self, *events: dict[str, Any]) -> None:
        """Deliver `events`, in order, from a background thread: Stripe answers the API call first."""
        if not self.webhook_url:
            return  # nobody listens (a provider used on its own, in tests)

        def send() -> None:
            for event in events:
                try:
                    self.deliver(event)
                except OSError as error:  # the storefront is not listening (stopping, say)
                    log.warning("webhook %s not delivered: %s", event["id"], error)

        threading.Thread(target=send, name="fake-payments-webhooks", daemon=True).start()


_PAGE_STYLE = """
body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f4f1ec;color:#1d1d1f}
main{max-width:28rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:.75rem;box-shadow:0 1px 4px #0002}
.brand{font-size:.85rem;text-transform:uppercase;letter-spacing:.08em;color:#5c5c66;margin:0}
h1{font-size:1.75rem;margin:.25rem 0 .75rem}.note{background:#fff4d6;padding:.5rem .75rem;border-radius:.5rem}
button{font:inherit;font-weight:600;padding:.7rem 1.4rem;border-radius:.5rem;border:2px solid #1d1d1f;cursor:pointer}
.pay{background:#1f6f43;border-color:#1f6f43;color:#fff}.decline{background:#fff;color:#8a1c1c;border-color:#8a1c1c}
button:focus-visible,a:focus-visible{outline:3px solid #2457c5;outline-offset:2px}code{word-break:break-all}
"""


def _page(title: str, body: str) -> str:
    """A small, self-contained HTML page: no scripts, nothing fetched from elsewhere."""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{html.escape(title)} · Local payment provider</title><link rel="icon" href="data:,">'
        f"<style>{_PAGE_STYLE}</style></head><body><main>"
        f'<p class="brand">Local payment provider · test mode</p><h1>{html.escape(title)}</h1>{body}'
        "</main></body></html>"
    )


def _back_link(return_url: str | None) -> str:
    return f'<p><a href="{html.escape(return_url, quote=True)}">Back to the shop</a></p>' if return_url else ""


def _handler_class(provider: FakePaymentProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "fake-stripe"

        def do_POST(self) -> None:
            self._serve()

        def do_GET(self) -> None:
            self._serve()

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
            target = urlsplit(self.path)
            if page := _PAY_PATH.match(target.path):  # the shopper's browser: no API key, HTML answers
                if self.command == "GET":
                    answer = provider.payment_page(page["id"], dict(parse_qsl(target.query)))
                else:
                    answer = provider.submit_payment_page(page["id"], dict(parse_qsl(body, keep_blank_values=True)))
                self._reply_html(*answer)
                return
            if provider.latency_seconds:
                time.sleep(provider.latency_seconds)
            extra: dict[str, str] = {}
            try:
                self._authenticate()
                injected = provider.next_failure(self.command, target.path)
                if injected is not None:
                    raise StripeApiError(injected, "Injected failure.", type_="api_error")
                status, answer, replayed = self._route(target.path, body)
                if replayed:
                    extra["Idempotent-Replayed"] = "true"
            except StripeApiError as error:
                status, answer = error.status, error.body
            self._reply(status, answer, extra)

        def _route(self, path: str, body: str) -> tuple[int, dict[str, Any], bool]:
            """(status, the answer, whether it is an idempotent replay); StripeApiError for a request Stripe refuses
            before any endpoint runs."""
            params = dict(parse_qsl(body, keep_blank_values=True))
            key = self.headers.get("Idempotency-Key")
            kind = "refund" if path.startswith("/v1/refunds") else "payment_intent"

            def found(read: Callable[[], dict[str, Any]]) -> dict[str, Any]:
                try:
                    return read()
                except KeyError as missing:
                    raise StripeApiError(
                        404, f"No such {kind}: {missing}", code="resource_missing", param="id"
                    ) from None

            if self.command == "GET" and (match := _INTENT_PATH.match(path)):
                return 200, found(lambda: provider.intent(match["id"])), False
            if self.command == "GET" and (match := _REFUND_PATH.match(path)):
                return 200, found(lambda: provider.refund(match["id"])), False
            if self.command == "POST" and path == "/v1/payment_intents":
                return provider.idempotent(path, params, key, lambda: provider.create_intent(params))
            if self.command == "POST" and (match := _CANCEL_PATH.match(path)):
                return provider.idempotent(
                    path, params, key, lambda: found(lambda: provider.cancel_intent(match["id"], params))
                )
            if self.command == "POST" and path == "/v1/refunds":
                return provider.idempotent(path, params, key, lambda: provider.create_refund(params))
            raise StripeApiError(404, f"Unrecognized request URL ({self.command}: {path}).")

        def _authenticate(self) -> None:
            scheme, _, key = (self.headers.get("Authorization") or "").partition(" ")
            if scheme != "Bearer" or not key:
                raise StripeApiError(401, "You did not provide an API key.")
            if not secrets.compare_digest(key.encode(), provider.api_key.encode()):
                raise StripeApiError(401, f"Invalid API Key provided: {key[:8]}***")

        def _reply(self, status: int, answer: dict[str, Any], headers: dict[str, str]) -> None:
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Request-Id", _random_id("req_", 14))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def _reply_html(self, status: int, page: str, headers: dict[str, str]) -> None:
            payload = page.encode("utf-8")
            self.send_response(status)
            if payload:
                self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-store")
            # Inline styles only, no scripts; framing refused, so the page cannot be clickjacked.
            self.send_header(
                "Content-Security-Policy",
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'",
            )
            self.send_header("Referrer-Policy", "no-referrer")
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("fake payments: " + format, *args)  # noqa: G003  http.server's own format and args, kept lazy

    return Handler
