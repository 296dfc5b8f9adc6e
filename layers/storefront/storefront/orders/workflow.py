"""Starting the order workflow (Step Functions). The execution is named after the order: starting it twice
is harmless, which is what makes a retried checkout safe."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError


class OrderWorkflow:
    def __init__(self, client: Any, state_machine_arn: str, payment_timeout_seconds: int) -> None:
        self._client = client
        self._arn = state_machine_arn
        self._payment_timeout = payment_timeout_seconds

    def start(self, order_id: str, lines: list[dict[str, Any]]) -> None:
        try:
            self._client.start_execution(stateMachineArn=self._arn, name=order_id, input=json.dumps({
                "order_id": order_id, "lines": lines, "payment_timeout_seconds": self._payment_timeout}))
        except ClientError as error:
            if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise
