"""storefront.observability: every entry point flushes the invocation's metrics as one EMF blob, with a ColdStart
metric on the first invocation only, under the function's namespace and service."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics.provider.cold_start import reset_cold_start_flag

from local_cloud.functions import LambdaContext
from storefront.observability import count, lambda_handler, milliseconds


def _emf_blobs(output: str) -> list[dict[str, Any]]:
    blobs = []
    for line in output.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict) and "_aws" in document:
            blobs.append(document)
    return blobs


def _metric_names(blob: dict[str, Any]) -> set[str]:
    return {m["Name"] for directive in blob["_aws"]["CloudWatchMetrics"] for m in directive["Metrics"]}


def test_business_metrics_leave_with_the_invocation_and_cold_start_is_counted_once(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "StorefrontTest")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "checkout")
    reset_cold_start_flag()  # a new execution environment (this process may have run other handlers already)

    def entry(event: dict[str, Any], _context: Any) -> dict[str, Any]:
        count("OrdersPlaced")
        milliseconds("CheckoutLatency", 12.5)
        return {"ok": event["n"]}

    handler = lambda_handler(entry, Logger(service="checkout", level="WARNING"))
    context = LambdaContext("checkout", "arn:aws:lambda:us-east-1:123456789012:function:checkout", 128, 3)
    assert handler({"n": 1}, context) == {"ok": 1}
    first = _emf_blobs(capsys.readouterr().out)
    assert handler({"n": 2}, context) == {"ok": 2}
    second = _emf_blobs(capsys.readouterr().out)

    business = [b for b in first if "OrdersPlaced" in _metric_names(b)]
    assert len(business) == 1
    blob = business[0]
    assert blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "StorefrontTest"
    assert blob["service"] == "checkout"
    assert blob["OrdersPlaced"] in (1.0, [1.0]) and blob["CheckoutLatency"] in (12.5, [12.5])
    assert sum("ColdStart" in _metric_names(b) for b in first) == 1
    assert [_metric_names(b) for b in second] == [{"OrdersPlaced", "CheckoutLatency"}]  # no second ColdStart
