"""storefront.observability: business metrics leave at once, each as its own EMF blob with the one business
dimension (service=storefront) whichever function counts them; the entry point counts a cold start once, per
function. (Powertools' own examples/metrics/src/assert_single_emf_blob.py is the model: parse stdout.)"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics.provider.cold_start import reset_cold_start_flag
from storefront.observability import count, lambda_handler, milliseconds

from local_cloud.functions import LambdaContext


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


def test_business_metrics_leave_at_once_and_cold_start_is_counted_once_per_function(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Storefront/test-stack")
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

    assert sorted(map(sorted, map(_metric_names, first))) == [["CheckoutLatency"], ["ColdStart"], ["OrdersPlaced"]]
    for blob in first:
        (directive,) = blob["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "Storefront/test-stack"
    placed = next(b for b in first if "OrdersPlaced" in _metric_names(b))
    latency = next(b for b in first if "CheckoutLatency" in _metric_names(b))
    cold = next(b for b in first if "ColdStart" in _metric_names(b))
    assert placed["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]] and placed["service"] == "storefront"
    assert placed["OrdersPlaced"] in (1.0, [1.0]) and latency["CheckoutLatency"] in (12.5, [12.5])
    assert cold["service"] == "checkout" and cold["function_name"] == "checkout"  # cold starts stay per function
    assert sorted(map(sorted, map(_metric_names, second))) == [["CheckoutLatency"], ["OrdersPlaced"]]  # no ColdStart


def test_disabled_metrics_print_nothing(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    count("OrdersPlaced")
    assert _emf_blobs(capsys.readouterr().out) == []
