"""Powertools wiring, in one place: the one decorator every handler wears, and business metrics.

Every function's entry point is `lambda_handler(entry, logger)` (HTTP functions: `http_handler(app, logger)`):
the Lambda context and a correlation id on every log line, and the invocation's metrics flushed as one
CloudWatch EMF blob when it returns (plus a ColdStart metric on the first invocation of an execution
environment). Services record business events with `count(...)` / `milliseconds(...)`; they land in
Powertools' metric set, which is shared by every `Metrics` instance of the process, and leave with the flush.

Namespace and the `service` dimension come from POWERTOOLS_METRICS_NAMESPACE and POWERTOOLS_SERVICE_NAME
(template.yaml sets both). Dimensions are kept to that one: every extra dimension value is another custom
metric to pay for. (The local cloud runs every function in one process, so there a metric may leave with
another function's flush, under that function's `service`; on Lambda an environment runs one invocation at
a time.)

Tracer is left out on purpose: it imports the X-Ray SDK (~300 ms of cold start, see docs/benchmarks.md);
the template's `Tracing: Active` still gives each invocation its X-Ray segment.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

Handler = Callable[[Any, Any], Any]


def lambda_handler(entry: Handler, logger: Logger, correlation_id_path: str | None = None) -> Handler:
    """The entry point Lambda calls: `entry` with context logging (and a correlation id taken from the event at
    `correlation_id_path`, a JMESPath) and metrics flushed after every invocation, cold start counted."""
    metrics = Metrics()  # reads the function's namespace and service now, at import, like the Logger
    # Powertools 3.37 emits the cold-start metric even with POWERTOOLS_METRICS_DISABLED set: honour the flag here.
    cold_start = not is_metrics_disabled()
    return logger.inject_lambda_context(metrics.log_metrics(entry, capture_cold_start_metric=cold_start),
                                        correlation_id_path=correlation_id_path)


def http_handler(app: Any, logger: Logger) -> Handler:
    """The entry point of an HTTP function; the API Gateway request id is the correlation id."""
    return lambda_handler(asgi(app), logger, correlation_paths.API_GATEWAY_HTTP)


def asgi(app: Any) -> Handler:
    """Mangum: API Gateway payload v2 in, the ASGI app's response out (for functions that also take other events,
    inside their own `lambda_handler`)."""
    # Problems are text too: without this Mangum would base64-encode every problem+json body.
    return Mangum(app, lifespan="off", text_mime_types=[*DEFAULT_TEXT_MIME_TYPES, "application/problem+json"])


@cache
def _metrics() -> Metrics:
    return Metrics()


def count(name: str, value: int = 1) -> None:
    """A business event happened `value` times (an order paid, a payment declined, ...)."""
    _metrics().add_metric(name=name, unit=MetricUnit.Count, value=value)


def milliseconds(name: str, value: float) -> None:
    """How long a business operation took (checkout latency, ...)."""
    _metrics().add_metric(name=name, unit=MetricUnit.Milliseconds, value=value)
