"""What the payments context talks to outside AWS' data plane: the payment provider (an interface here; the
adapter to Stripe's SDK is storefront.payments.stripe_provider) and the order workflow's callback.

One payment adapter serves both providers: "stripe" is Stripe's API, "fake" is the local cloud's
Stripe-compatible emulator (local_cloud/fake_payments.py) at another base address. The same code path runs
locally and on AWS; only PAYMENT_API_BASE and the secrets differ. This module does not import `stripe`: the
public webhook function uses the workflow callback below and must not load the SDK (nor hold its API key).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

from storefront.money import Money
from storefront.payments.models import CreatedPayment, ProviderPayment, ProviderRefund

log = logging.getLogger("storefront.payments")


class PaymentProvider(Protocol):
    name: str

    def create_payment(self, order_id: str, amount: Money, idempotency_key: str) -> CreatedPayment: ...
    def payment(self, payment_id: str) -> ProviderPayment: ...
    def cancel_payment(self, payment_id: str) -> ProviderPayment: ...
    def refund(
        self, payment_id: str, amount: Money, idempotency_key: str, metadata: dict[str, str]
    ) -> ProviderRefund: ...
    def refund_status(self, refund_id: str) -> ProviderRefund: ...


class PaymentProviderError(Exception):
    """The provider refused the request (4xx: bad parameters, bad key, ...). Retrying will not help."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class PaymentProviderUnavailable(PaymentProviderError):
    """The provider did not answer usefully (5xx, 429, timeout, connection error) even after retries.
    The outcome is unknown; repeating the request with the same idempotency key later is safe."""


# --- the order workflow ---------------------------------------------------------------------------

# Step Functions' answers meaning "this token is spent": the workflow already moved on (an earlier
# callback, a timeout, a finished or stopped execution). Nothing is left for us to tell it.
SPENT_TOKEN_ERRORS = frozenset({"TaskDoesNotExist", "TaskTimedOut", "InvalidToken"})


class RefundHandover:
    """Hands an order's open refunds to the payment tasks function (asynchronous Invoke: Lambda retries it twice,
    and the reconciler finds the order again if even that fails)."""

    def __init__(self, client: Any, function_name: str) -> None:
        self._client = client
        self._function = function_name

    def finish_later(self, order_id: str) -> None:
        self._client.invoke(
            FunctionName=self._function,
            InvocationType="Event",
            Payload=json.dumps({"action": "finish", "order_id": order_id}).encode(),
        )


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
