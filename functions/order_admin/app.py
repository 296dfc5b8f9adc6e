"""Order admin function: an operator cancels or refunds an order (POST /admin/orders/{id}/cancel, /refunds).

Behind API Gateway's AdminJwt authorizer; only the `admin` group may (storefront.auth.AdminOnly). A function of its
own rather than a route of AdminFunction: these routes move money and stock, so they need the provider's API key,
the carrier's and the right to invoke the stock function, and the rest of the admin API does not.
"""

from typing import Annotated

import boto3
from aws_lambda_powertools import Logger
from fastapi import Header, Path, Response
from storefront.audit.log import AuditLog
from storefront.audit.repository import AuditRepository
from storefront.auth import AdminOnly
from storefront.aws import LazyClient
from storefront.config import OrderAdminSettings
from storefront.fulfilment.carriers import HttpCarrier
from storefront.http import create_app, problem_responses, unauthorized_responses
from storefront.idempotency import IdempotencyStore
from storefront.inventory.stock_function import StockFunctionClient
from storefront.limits.repository import ClientHoldRepository
from storefront.observability import http_handler
from storefront.orders.models import Order, Refund
from storefront.orders.repository import OrderRepository
from storefront.payments.cancellation import Cancellations
from storefront.payments.operations import CancelRequest, OrderOperations, RefundRequest
from storefront.payments.providers import StepFunctionsWorkflow
from storefront.payments.service import PaymentTasks
from storefront.payments.stripe_provider import StripeProvider
from storefront.secrets import get_secret

settings = OrderAdminSettings.from_env()
logger = Logger()
dynamodb = boto3.client("dynamodb")
orders = OrderRepository(dynamodb, settings.orders_table)
workflow = StepFunctionsWorkflow(LazyClient("stepfunctions"))  # cancellations of unpaid orders only
# Two attempts of 4 s for the provider and one 3 s call to the carrier fit the function's timeout; a refund the
# provider did not answer stays pending and the reconciler finishes it.
payments = PaymentTasks(
    orders,
    StripeProvider(
        settings.payment_api_base,
        lambda: get_secret(settings.payment_api_key_secret_id),
        name=settings.payment_provider,
        timeout=4.0,
        max_retries=1,
    ),
    workflow,
    StockFunctionClient(LazyClient("lambda"), settings.stock_function),
)
carrier = HttpCarrier(
    settings.carrier_name,
    settings.carrier_api_base,
    lambda: get_secret(settings.carrier_api_key_secret_id),
    timeout=3.0,
    max_retries=0,
)
operations = OrderOperations(
    payments,
    Cancellations(orders, payments, workflow, carrier, ClientHoldRepository(dynamodb, settings.orders_table)),
    IdempotencyStore(dynamodb, settings.orders_table, ttl_seconds=24 * 3600),
    AuditLog(AuditRepository(dynamodb, settings.audit_table, settings.audit_retention_days)),
)

app = create_app("Storefront order admin", "Cancel and refund orders (operators of the `admin` group).")

OrderId = Annotated[str, Path(min_length=1, max_length=64)]


@app.post(
    "/admin/orders/{order_id}/cancel",
    response_model=Order,
    responses={**unauthorized_responses(), **problem_responses(400, 403, 404, 409, 413, 422, 500, 503)},
)
def cancel_order(order_id: OrderId, body: CancelRequest, actor: AdminOnly) -> Response:
    order = operations.cancel(order_id, body, actor)
    return Response(order.model_dump_json(), media_type="application/json", headers={"Cache-Control": "no-store"})


@app.post(
    "/admin/orders/{order_id}/refunds",
    status_code=201,
    response_model=Refund,
    responses={**unauthorized_responses(), **problem_responses(400, 403, 404, 409, 413, 422, 500, 503)},
)
def refund_order(
    order_id: OrderId,
    body: RefundRequest,
    actor: AdminOnly,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=255)] = None,
) -> Response:
    answer = operations.refund(order_id, body, idempotency_key, actor)
    return Response(
        answer.body, status_code=answer.status, media_type="application/json", headers={"Cache-Control": "no-store"}
    )


handler = http_handler(app, logger)
