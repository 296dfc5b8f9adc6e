"""Secrets, from AWS Secrets Manager through Powertools parameters (cached in the execution environment)."""

from __future__ import annotations

SECRET_CACHE_SECONDS = 300


def get_secret(secret_id: str) -> str:
    # Imported here, not at module level: most invocations never need a secret, and cold start counts.
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(secret_id, max_age=SECRET_CACHE_SECONDS)
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if not value:
        raise RuntimeError(f"secret {secret_id} is empty")
    return value
