"""Powertools wiring, in one place: the one decorator every handler wears, and business metrics.

Every function's entry point is `lambda_handler(entry, logger)` (HTTP functions: `http_handler(app, logger)`):
the Lambda context and a correlation id on every log line, and a ColdStart metric (per function) flushed after
the first invocation of an execution environment. Services record business events with `count(...)` /
`milliseconds(...)`: each leaves at once as its own EMF blob (Powertools' `single_metric`).

Namespace: POWERTOOLS_METRICS_NAMESPACE, which template.yaml sets to `Storefront/<stack name>`, so a dev and a
prod stack in one account never add up. Business metrics carry one dimension with one value,
`service=storefront`: an order paid is a fact about the shop, not about the function that noticed it, so the
alarms and the dashboard (docs/observability.md) see one series per metric whichever function counts it, today
or after a function is split in two. One series per metric is also the cheapest: every dimension value is
another custom metric to pay for. (Powertools adds the function's own service otherwise; flushing each event
at once also keeps the local cloud, where every function shares one process, from mixing them up.)

Tracer is left out on purpose: it imports the X-Ray SDK (~300 ms of cold start, see docs/benchmarks.md);
the template's `Tracing: Active` still gives each invocation its X-Ray segment.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from functools import wraps
from typing import Any

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.utilities.typing import LambdaContext
from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

from storefront import snapstart  # noqa: F401 - every function imports this module: SnapStart's hooks register here

# What Lambda calls: the event (a JSON object for every function here) and Powertools' typed context.
Handler = Callable[[dict[str, Any], LambdaContext], Any]
# The one dimension of every business metric (see above); template.yaml's alarms and dashboard name it.
BUSINESS_DIMENSIONS = {"service": "storefront"}
# The namespace of the function being invoked, read with its environment at import, like its Logger and Metrics
# (the local cloud runs several stacks' functions in one process, with one os.environ).
_namespace: ContextVar[str | None] = ContextVar("storefront_metrics_namespace", default=None)


def lambda_handler(entry: Handler, logger: Logger, correlation_id_path: str | None = None) -> Handler:
    """The entry point Lambda calls: `entry` with context logging (and a correlation id taken from the event at
    `correlation_id_path`, a JMESPath) and metrics flushed after every invocation, cold start counted."""
    metrics = Metrics()  # reads the function's namespace and service now, at import, like the Logger
    # Powertools 3.37 emits the cold-start metric even with POWERTOOLS_METRICS_DISABLED set: honour the flag here.
    cold_start = not is_metrics_disabled()

    @wraps(entry)
    def in_namespace(event: dict[str, Any], context: LambdaContext) -> Any:
        token = _namespace.set(metrics.namespace)
        try:
            return entry(event, context)
        finally:
            _namespace.reset(token)

    return logger.inject_lambda_context(
        metrics.log_metrics(in_namespace, capture_cold_start_metric=cold_start), correlation_id_path=correlation_id_path
    )


def http_handler(app: Any, logger: Logger) -> Handler:
    """The entry point of an HTTP function; the API Gateway request id is the correlation id."""
    return lambda_handler(asgi(app), logger, correlation_paths.API_GATEWAY_HTTP)


def asgi(app: Any) -> Handler:
    """Mangum: API Gateway payload v2 in, the ASGI app's response out (for functions that also take other events,
    inside their own `lambda_handler`)."""
    # Problems are text too: without this Mangum would base64-encode every problem+json body.
    # Mangum's LambdaContext protocol declares settable attributes, Powertools' class read-only properties: two
    # descriptions of the same runtime object that mypy cannot reconcile.
    return Mangum(  # type: ignore[return-value]
        app, lifespan="off", text_mime_types=[*DEFAULT_TEXT_MIME_TYPES, "application/problem+json"]
    )


def count(name: str, value: int = 1) -> None:
    """A business event happened `value` times (an order paid, a payment declined, ...)."""
    _emit(name, MetricUnit.Count, value)


def milliseconds(name: str, value: float) -> None:
    """How long a business operation took (checkout latency, ...)."""
    _emit(name, MetricUnit.Milliseconds, value)


def _emit(name: str, unit: MetricUnit, value: float) -> None:
    if is_metrics_disabled():
        return
    with single_metric(
        name=name, unit=unit, value=value, namespace=_namespace.get(), default_dimensions=BUSINESS_DIMENSIONS
    ):
        pass  # the blob is printed (to the function's log, where CloudWatch reads it) when the block ends
