"""Powertools wiring, in one place. Handlers call `lambda_handler` and log through their own Logger.

Tracer is left out on purpose: it imports the X-Ray SDK (~300 ms of cold start, see docs/benchmarks.md);
the template's `Tracing: Active` still gives each invocation its X-Ray segment.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES


def http_handler(app: Any, logger: Logger) -> Any:
    """The Lambda entry point of an HTTP function: Mangum adapts API Gateway payload v2 to ASGI,
    Powertools adds the Lambda context and the API Gateway request id to every log line."""
    # Problems are text too: without this Mangum would base64-encode every problem+json body.
    asgi_handler = Mangum(app, lifespan="off", text_mime_types=[*DEFAULT_TEXT_MIME_TYPES, "application/problem+json"])
    return logger.inject_lambda_context(asgi_handler, correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
