"""Starting the order workflow (Step Functions). The execution is named after the order: starting it twice
is harmless, which is what makes a retried checkout safe. When Step Functions is overloaded (StartExecution
throttled even after the SDK's retries) the checkout answers 503 with Retry-After: the order is stored and still
pending, and the client's retry with the same Idempotency-Key finds it and starts its workflow."""

from __future__ import annotations

import json
from datetime import timedelta
from types import MappingProxyType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from storefront.errors import Busy
from storefront.observability import count

# StartExecution answers that mean "not now" (throttling, a service hiccup): the client should retry shortly.
_TRANSIENT = {
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "ServiceUnavailable",
    "InternalServerError",
    "ServiceQuotaExceededException",
}


class WorkflowBusy(Busy):
    status, code, title = 503, "busy", "Busy, retry"
    headers = MappingProxyType({"Retry-After": "2"})


class OrderWorkflow:
    def __init__(
        self, client: Any, state_machine_arn: str, payment_timeout_seconds: int, payment_grace_seconds: int
    ) -> None:
        self._client = client
        self._arn = state_machine_arn
        self._payment_timeout = payment_timeout_seconds
        self._payment_grace = payment_grace_seconds

    @property
    def longest_wait(self) -> timedelta:
        """How long a workflow can wait for its payment: the window, then a processing payment's grace."""
        return timedelta(seconds=self._payment_timeout + self._payment_grace)

    def start(
        self,
        order_id: str,
        lines: list[dict[str, Any]],
        *,
        name: str | None = None,
        payment_timeout_seconds: int | None = None,
    ) -> None:
        """Start the order's workflow, named after the order (or `name`, for the reconciler's recovery run, which
        asks the provider at once: `payment_timeout_seconds`)."""
        try:
            self._client.start_execution(
                stateMachineArn=self._arn,
                name=name or order_id,
                input=json.dumps(
                    {
                        "order_id": order_id,
                        "lines": lines,
                        "payment_timeout_seconds": payment_timeout_seconds or self._payment_timeout,
                        "payment_grace_seconds": self._payment_grace,
                    }
                ),
            )
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code in _TRANSIENT or error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500:
                count(
                    "CheckoutsBusy"
                )  # Step Functions refused the start: the shopper got a 503 (docs/observability.md)
                raise WorkflowBusy("The shop is very busy; retry with the same Idempotency-Key shortly.") from error
            if code != "ExecutionAlreadyExists":
                raise
        except BotoCoreError as error:  # connection errors and timeouts, after the SDK's own retries
            count("CheckoutsBusy")
            raise WorkflowBusy("The shop is very busy; retry with the same Idempotency-Key shortly.") from error

    def status(self, name: str) -> str | None:
        """RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED; None when there is no such execution."""
        arn = self._arn.replace(":stateMachine:", ":execution:") + f":{name}"
        try:
            status: str = self._client.describe_execution(executionArn=arn)["status"]
            return status
        except ClientError as error:
            if error.response["Error"]["Code"] == "ExecutionDoesNotExist":
                return None
            raise
