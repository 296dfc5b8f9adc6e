"""Checkout function: POST /checkout (idempotent; starts the order workflow) and GET /orders/{order_id}."""

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

import boto3
from aws_lambda_powertools import Logger
from botocore.config import Config
from fastapi import Header, Path, Request, Response
from storefront.aws import LazyClient
from storefront.cart.repository import CartRepository
from storefront.cart.service import CartService
from storefront.catalog.repository import CatalogRepository
from storefront.config import CheckoutSettings
from storefront.http import client_ip, create_app, problem_responses
from storefront.idempotency import IdempotencyStore, StoredResponse, request_hash, require_key
from storefront.inventory.repository import InventoryRepository
from storefront.limits.repository import ClientHoldRepository
from storefront.limits.service import ClientLimits
from storefront.observability import http_handler, milliseconds
from storefront.orders.models import CheckoutRequest, Order
from storefront.orders.repository import OrderRepository
from storefront.orders.service import CheckoutService
from storefront.orders.workflow import OrderWorkflow
from storefront.shop import load_shop_config

settings = CheckoutSettings.from_env()
logger = Logger()
dynamodb = boto3.client("dynamodb")
now = lambda: datetime.now(UTC)  # noqa: E731
inventory = InventoryRepository(dynamodb, settings.inventory_table)
shop = load_shop_config()
service = CheckoutService(
    CartService(
        CartRepository(dynamodb, settings.cart_table),
        CatalogRepository(dynamodb, settings.catalog_table),
        inventory,
        shop,
        idle_lifetime=timedelta(hours=1),
        now=now,
    ),
    OrderRepository(dynamodb, settings.orders_table),
    # A few quick retries of a throttled start fit the function's timeout; past them the shopper gets 503 + Retry-After.
    OrderWorkflow(
        LazyClient(
            "stepfunctions",
            config=Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5),
        ),  # not for GET /orders
        settings.order_workflow_arn,
        settings.payment_timeout_seconds,
        settings.payment_grace_seconds,
    ),
    inventory,
    # An order holds stock for at most the payment window and, for a payment still processing then, the grace.
    ClientLimits(
        shop.checkout_limits,
        ClientHoldRepository(dynamodb, settings.orders_table),
        settings.payment_timeout_seconds + settings.payment_grace_seconds,
    ),
    now=now,
)
idempotency = IdempotencyStore(dynamodb, settings.orders_table, ttl_seconds=settings.idempotency_ttl_hours * 3600)

app = create_app("Storefront checkout", "Idempotent checkout and order status.")


@app.post(
    "/checkout",
    status_code=202,
    response_model=Order,
    responses={
        200: {"model": Order, "description": "The cart was already checked out: its order"},
        **problem_responses(400, 404, 409, 413, 422, 429, 500, 503),
    },
)
def checkout(
    body: CheckoutRequest,
    request: Request,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=255)] = None,
) -> Response:
    def place_order() -> StoredResponse:
        started = time.perf_counter()
        order, created = service.checkout(body, client_ip(request))
        milliseconds("CheckoutLatency", (time.perf_counter() - started) * 1000)
        return StoredResponse(status=202 if created else 200, body=order.model_dump_json())

    replay = idempotency.run(
        "checkout", require_key(idempotency_key), request_hash(body.model_dump(mode="json")), place_order
    )
    order_id = Order.model_validate_json(replay.body).id
    return Response(
        replay.body,
        status_code=replay.status,
        media_type="application/json",
        headers={"Location": f"/orders/{order_id}", "Cache-Control": "no-store"},
    )


@app.get("/orders/{order_id}", response_model=Order, responses=problem_responses(404, 422, 500))
def get_order(order_id: Annotated[str, Path(min_length=1, max_length=64)]) -> Response:
    return Response(
        service.get(order_id).model_dump_json(), media_type="application/json", headers={"Cache-Control": "no-store"}
    )


handler = http_handler(app, logger)
