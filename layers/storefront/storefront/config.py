"""Configuration: read from environment variables once, into one validated object per function.

template.yaml is the only place that sets these variables on AWS; the local cloud reads the same
template, so a variable missing here is missing there too and fails fast at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict, Field


class _EnvSettings(BaseModel):
    # defer_build: each function validates one of these classes; the others are never built (cold start).
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, defer_build=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        return cls.model_validate(dict(os.environ if environ is None else environ))


class EdgeSettings(_EnvSettings):
    """Every HTTP function's view of the optional edge (template.yaml's Edge; docs/observability.md, "The edge")."""

    # The Secrets Manager secret (ARN) of the values CloudFront adds to every request it sends to the API; empty: no
    # edge, API Gateway's own endpoint is the way in (and the local cloud's gateway).
    origin_secret_id: str = Field(alias="EDGE_ORIGIN_SECRET_ID", default="")


class CatalogSettings(_EnvSettings):
    catalog_table: str = Field(alias="CATALOG_TABLE", min_length=3)
    inventory_table: str = Field(alias="INVENTORY_TABLE", min_length=3)
    # Secrets Manager secret (ARN or name) whose value signs pagination cursors.
    cursor_secret_id: str = Field(alias="CURSOR_SECRET_ID", min_length=1)
    # How long browsers and CDNs may cache catalog responses; availability is in them, so keep it short.
    cache_max_age: int = Field(alias="CATALOG_CACHE_SECONDS", default=30, ge=0, le=86_400)


class CartSettings(_EnvSettings):
    cart_table: str = Field(alias="CART_TABLE", min_length=3)
    catalog_table: str = Field(alias="CATALOG_TABLE", min_length=3)
    inventory_table: str = Field(alias="INVENTORY_TABLE", min_length=3)
    # A cart untouched this long expires (DynamoDB TTL deletes it later; reads treat it as gone at once).
    idle_hours: int = Field(alias="CART_IDLE_HOURS", default=72, ge=1, le=24 * 90)


class CheckoutSettings(_EnvSettings):
    orders_table: str = Field(alias="ORDERS_TABLE", min_length=3)
    cart_table: str = Field(alias="CART_TABLE", min_length=3)
    catalog_table: str = Field(alias="CATALOG_TABLE", min_length=3)
    inventory_table: str = Field(alias="INVENTORY_TABLE", min_length=3)
    order_workflow_arn: str = Field(alias="ORDER_WORKFLOW_ARN", min_length=20)
    # How long a checkout's Idempotency-Key is remembered (Stripe keeps keys for 24 h).
    idempotency_ttl_hours: int = Field(alias="IDEMPOTENCY_TTL_HOURS", default=24, ge=1, le=24 * 30)
    # How long the workflow waits for the payment provider's webhook before the order expires.
    payment_timeout_seconds: int = Field(alias="PAYMENT_TIMEOUT_SECONDS", default=1800, ge=1, le=7 * 24 * 3600)
    # How much longer a payment still processing at the timeout (a bank debit) may take before the order expires.
    payment_grace_seconds: int = Field(alias="PAYMENT_PROCESSING_GRACE_SECONDS", default=3600, ge=1, le=7 * 24 * 3600)


class StockSettings(_EnvSettings):
    inventory_table: str = Field(alias="INVENTORY_TABLE", min_length=3)
    # Stock adjustments and thresholds are audited in their own transaction.
    audit_table: str = Field(alias="AUDIT_TABLE", min_length=3)
    audit_retention_days: int = Field(alias="AUDIT_RETENTION_DAYS", ge=30, le=3650)


class OrderWorkflowSettings(_EnvSettings):
    orders_table: str = Field(alias="ORDERS_TABLE", min_length=3)


class PaymentWebhookSettings(_EnvSettings):
    """The public webhook receiver: the webhook secret, never the provider's API key."""

    orders_table: str = Field(alias="ORDERS_TABLE", min_length=3)
    # The only provider whose webhooks are served (POST /webhooks/payments/<provider>; any other is 404).
    payment_provider: str = Field(alias="PAYMENT_PROVIDER", pattern=r"^(stripe|fake)$")
    payment_webhook_secret_id: str = Field(alias="PAYMENT_WEBHOOK_SECRET_ID", min_length=1)
    webhook_event_ttl_days: int = Field(alias="WEBHOOK_EVENT_TTL_DAYS", default=30, ge=1, le=365)
    # Declines after which the payment is given up (cancelled) and the order ends payment_failed.
    max_payment_attempts: int = Field(alias="MAX_PAYMENT_ATTEMPTS", default=3, ge=1, le=10)
    # Where a late payment's refund is handed (asynchronously): the payment tasks function.
    payment_tasks_function: str = Field(alias="PAYMENT_TASKS_FUNCTION", min_length=1)


class PaymentTasksSettings(_EnvSettings):
    """The workflow's payment tasks and refunds: the only holder of the provider's API key."""

    orders_table: str = Field(alias="ORDERS_TABLE", min_length=3)
    # "stripe" on AWS; "fake" is the local cloud's Stripe-compatible provider (same API, same signatures).
    payment_provider: str = Field(alias="PAYMENT_PROVIDER", pattern=r"^(stripe|fake)$")
    payment_api_base: str = Field(alias="PAYMENT_API_BASE", pattern=r"^https?://")
    payment_api_key_secret_id: str = Field(alias="PAYMENT_API_KEY_SECRET_ID", min_length=1)
    stock_function: str = Field(alias="STOCK_FUNCTION", min_length=1)


class OrderAdminSettings(_EnvSettings):
    """Operators' cancel and refund: the provider's key, the carrier's (to cancel a shipment), the stock function."""

    orders_table: str = Field(alias="ORDERS_TABLE", min_length=3)
    # Cancellations and refunds are audited (storefront.audit).
    audit_table: str = Field(alias="AUDIT_TABLE", min_length=3)
    audit_retention_days: int = Field(alias="AUDIT_RETENTION_DAYS", ge=30, le=3650)
    payment_provider: str = Field(alias="PAYMENT_PROVIDER", pattern=r"^(stripe|fake)$")
    payment_api_base: str = Field(alias="PAYMENT_API_BASE", pattern=r"^https?://")
    payment_api_key_secret_id: str = Field(alias="PAYMENT_API_KEY_SECRET_ID", min_length=1)
    stock_function: str = Field(alias="STOCK_FUNCTION", min_length=1)
    carrier_name: str = Field(alias="CARRIER_NAME", pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    carrier_api_base: str = Field(alias="CARRIER_API_BASE", pattern=r"^https?://")
    carrier_api_key_secret_id: str = Field(alias="CARRIER_API_KEY_SECRET_ID", min_length=1)


class ReconcilerSettings(_EnvSettings):
    orders_table: str = Field(alias="ORDERS_TABLE", min_length=3)
    inventory_table: str = Field(alias="INVENTORY_TABLE", min_length=3)
    stock_function: str = Field(alias="STOCK_FUNCTION", min_length=1)
    payment_tasks_function: str = Field(alias="PAYMENT_TASKS_FUNCTION", min_length=1)
    order_workflow_arn: str = Field(alias="ORDER_WORKFLOW_ARN", min_length=20)
    fulfilment_queue_url: str = Field(alias="FULFILMENT_QUEUE_URL", min_length=1)
    # The payment window and grace tell how long a reservation may be held before it counts as leaked.
    payment_timeout_seconds: int = Field(alias="PAYMENT_TIMEOUT_SECONDS", default=1800, ge=1, le=7 * 24 * 3600)
    payment_grace_seconds: int = Field(alias="PAYMENT_PROCESSING_GRACE_SECONDS", default=3600, ge=1, le=7 * 24 * 3600)


class FulfilmentSettings(_EnvSettings):
    orders_table: str = Field(alias="ORDERS_TABLE", min_length=3)
    # The carrier (3PL) API; "local" is the local cloud's carrier, which speaks the same API.
    carrier_name: str = Field(alias="CARRIER_NAME", pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    carrier_api_base: str = Field(alias="CARRIER_API_BASE", pattern=r"^https?://")
    carrier_api_key_secret_id: str = Field(alias="CARRIER_API_KEY_SECRET_ID", min_length=1)
    carrier_webhook_secret_id: str = Field(alias="CARRIER_WEBHOOK_SECRET_ID", min_length=1)


class IntegrationEventsSettings(_EnvSettings):
    event_bus_name: str = Field(alias="EVENT_BUS_NAME", min_length=1)


class NotificationsSettings(_EnvSettings):
    orders_table: str = Field(alias="ORDERS_TABLE", min_length=3)
    notifications_table: str = Field(alias="NOTIFICATIONS_TABLE", min_length=3)
    # The sender: an address at the stack's SES identity (EmailDomain), and the configuration set that reports
    # bounces and complaints (so the suppression list hears of them).
    from_address: str = Field(alias="EMAIL_FROM_ADDRESS", pattern=r"^[^@\s]{1,64}@[a-z0-9.-]{1,189}\.[a-z]{2,24}$")
    configuration_set: str = Field(alias="EMAIL_CONFIGURATION_SET", min_length=1, max_length=64)
    # SES's account-wide sending rate (emails per second), shared by the queue mapping's concurrent environments:
    # each sends at most one email per EMAIL_SENDERS / EMAIL_SEND_RATE seconds.
    send_rate: float = Field(alias="EMAIL_SEND_RATE", gt=0, le=10_000)
    senders: int = Field(alias="EMAIL_SENDERS", ge=1, le=1000)
    # How long one delivery of an event holds its email's claim: longer than the function's timeout (a live
    # invocation never loses it), shorter than the queue's visibility timeout (a crashed one's redelivery takes over).
    claim_lock_seconds: int = Field(alias="EMAIL_CLAIM_LOCK_SECONDS", ge=1, le=43_200)
    # How long an event's email is remembered, so that a late duplicate (an archive replay) sends nothing.
    record_ttl_days: int = Field(alias="EMAIL_RECORD_TTL_DAYS", ge=1, le=365)


class AdminSettings(_EnvSettings):
    catalog_table: str = Field(alias="CATALOG_TABLE", min_length=3)
    inventory_table: str = Field(alias="INVENTORY_TABLE", min_length=3)
    orders_table: str = Field(alias="ORDERS_TABLE", min_length=3)
    audit_table: str = Field(alias="AUDIT_TABLE", min_length=3)
    # How long an audit entry is kept (the audit table's TTL).
    audit_retention_days: int = Field(alias="AUDIT_RETENTION_DAYS", ge=30, le=3650)
    cursor_secret_id: str = Field(alias="CURSOR_SECRET_ID", min_length=1)
    # The stock function, the only writer of stock: adjustments and thresholds are asked of it.
    stock_function: str = Field(alias="STOCK_FUNCTION", min_length=1)
    images_bucket: str = Field(alias="IMAGES_BUCKET", min_length=3)
    # Where the images bucket is served publicly (the edge's /images/* behaviour); "" when it is not: no uploads.
    image_base_url: str = Field(alias="IMAGE_BASE_URL", pattern=r"^(https?://[^/\s]+(/[^\s]*[^/\s])?)?$")
    # How long an adjustment's Idempotency-Key is remembered (as the checkout's).
    idempotency_ttl_hours: int = Field(alias="IDEMPOTENCY_TTL_HOURS", default=24, ge=1, le=24 * 30)
