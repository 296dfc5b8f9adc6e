"""Adapters to what the payments context talks to outside AWS' data plane: the payment provider and the
order workflow's callback.

One payment adapter serves both providers: "stripe" is Stripe's API, "fake" is the local cloud's
Stripe-compatible emulator (local_cloud/fake_payments.py) at another base URL. The same code path runs
locally and on AWS; only PAYMENT_API_BASE and the secrets differ.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, Protocol

from storefront.money import Money
from storefront.payments.models import CreatedPayment

log = logging.getLogger("storefront.payments")


class PaymentProvider(Protocol):
    name: str

    def create_payment(self, order_id: str, amount: Money, idempotency_key: str) -> CreatedPayment: ...


class PaymentProviderError(Exception):
    """The provider refused the request (4xx: bad parameters, bad key, ...). Retrying will not help."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class PaymentProviderUnavailable(PaymentProviderError):
    """The provider did not answer usefully (5xx, timeout, connection error) even after retries.
    The outcome is unknown; repeating the request with the same idempotency key later is safe."""


class StripeProvider:
    """Stripe's PaymentIntents API over urllib (no SDK: one call does not justify a dependency)."""

    def __init__(self, api_base: str, api_key: str | Callable[[], str], *, name: str = "stripe",
                 timeout: float = 10.0, max_retries: int = 2, backoff: float = 0.5) -> None:
        self.name = name
        self._api_base = api_base.rstrip("/")
        # A callable is read on each request, so a rotated key (cached by storefront.secrets) is picked up.
        self._api_key = api_key if callable(api_key) else (lambda: api_key)
        self._timeout = timeout
        self._max_retries = max_retries
        self._backoff = backoff

    def create_payment(self, order_id: str, amount: Money, idempotency_key: str) -> CreatedPayment:
        intent = self._post("/v1/payment_intents", {
            "amount": str(amount.amount),  # Stripe takes minor units too, with ISO 4217's exponents
            "currency": amount.currency.lower(),
            "metadata[order_id]": order_id,
            "automatic_payment_methods[enabled]": "true",
        }, idempotency_key)
        redirect = ((intent.get("next_action") or {}).get("redirect_to_url") or {}).get("url")
        return CreatedPayment(payment_id=intent["id"], client_secret=intent.get("client_secret"),
                              status=intent.get("status", "unknown"), redirect_url=redirect)

    def _post(self, path: str, form: dict[str, str], idempotency_key: str) -> dict[str, Any]:
        body = urllib.parse.urlencode(form).encode("ascii")
        headers = {"Authorization": f"Bearer {self._api_key()}", "Idempotency-Key": idempotency_key,
                   "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        url = self._api_base + path
        # The same Idempotency-Key on every attempt: Stripe replays the first outcome instead of charging twice.
        for attempt in range(self._max_retries + 1):
            last_attempt = attempt == self._max_retries
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310 - https URL from config
                    return json.loads(response.read())
            except urllib.error.HTTPError as error:
                status, payload = error.code, _json_or_empty(error.read())
                should_retry = error.headers.get("Stripe-Should-Retry")
                retryable = should_retry == "true" or (status >= 500 and should_retry != "false")
                if not retryable:
                    raise _refused(status, payload) from error
                if last_attempt:
                    raise PaymentProviderUnavailable(
                        f"payment provider answered {status} after {attempt + 1} attempts", status,
                        (payload.get("error") or {}).get("code")) from error
                log.warning("payment provider answered %s; retrying (attempt %d)", status, attempt + 1)
            except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as error:
                if last_attempt:
                    raise PaymentProviderUnavailable(
                        f"payment provider unreachable after {attempt + 1} attempts: {_reason(error)}") from error
                log.warning("payment provider unreachable (%s); retrying (attempt %d)", _reason(error), attempt + 1)
            time.sleep(self._backoff * 2**attempt)
        raise AssertionError("unreachable")


def _json_or_empty(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _refused(status: int, payload: dict[str, Any]) -> PaymentProviderError:
    error = payload.get("error") or {}
    message = error.get("message") or f"HTTP {status}"
    return PaymentProviderError(f"payment provider refused the request ({status} {error.get('type', 'error')}): "
                                f"{message}", status, error.get("code"))


def _reason(error: BaseException) -> str:
    return str(getattr(error, "reason", None) or error) or type(error).__name__


# --- the order workflow ---------------------------------------------------------------------------

# Step Functions' answers meaning "this token is spent": the workflow already moved on (an earlier
# callback, a timeout, a finished or stopped execution). Nothing is left for us to tell it.
SPENT_TOKEN_ERRORS = frozenset({"TaskDoesNotExist", "TaskTimedOut", "InvalidToken"})


class StepFunctionsWorkflow:
    """Answers the order workflow's WaitForPayment task (a `.waitForTaskToken` callback)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def succeed(self, task_token: str, output: dict[str, Any]) -> bool:
        return self._send(self._client.send_task_success, taskToken=task_token, output=json.dumps(output))

    def fail(self, task_token: str, error: str, cause: str) -> bool:
        return self._send(self._client.send_task_failure, taskToken=task_token, error=error[:256], cause=cause[:32768])

    @staticmethod
    def _send(call: Callable[..., Any], **request: Any) -> bool:
        """True if delivered; False if the token was already spent. Other errors propagate (worth a retry)."""
        try:
            call(**request)
        except Exception as error:  # botocore's ClientError, without importing botocore here
            code = getattr(error, "response", {}).get("Error", {}).get("Code")
            if code not in SPENT_TOKEN_ERRORS:
                raise
            log.info("task token already spent (%s): the workflow has moved on", code)
            return False
        return True
