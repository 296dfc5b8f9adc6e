"""Admin function: the merchant's API under /admin/* (docs/api.md, "Admin"). API Gateway's AdminJwt authorizer admits
only verified tokens of the operators' user pool; each route names the groups it allows (storefront.auth): admin may
do everything, staff may read and adjust stock. Routes only translate HTTP; the rules live in the services."""

from datetime import UTC, datetime
from functools import cache
from typing import Annotated

import boto3
from aws_lambda_powertools import Logger
from botocore.config import Config
from fastapi import Header, Path, Query, Response
from pydantic import BaseModel, Field
from storefront.audit.log import AuditLog
from storefront.audit.models import AuditPage
from storefront.audit.repository import AuditRepository
from storefront.auth import AdminOnly, Operator
from storefront.catalog.admin import CatalogAdmin
from storefront.catalog.image_bucket import S3ImageBucket
from storefront.catalog.images import ImageUpload, ImageUploadTicket, ProductImages
from storefront.catalog.models import (
    ID_PATTERN,
    SKU_PATTERN,
    AdminProduct,
    AdminProductPage,
    Category,
    CategoryUpdate,
    NewCategory,
    NewProduct,
    ProductStatus,
    ProductUpdate,
)
from storefront.catalog.repository import CatalogRepository
from storefront.config import AdminSettings
from storefront.http import (
    create_app,
    parse_if_match,
    private_json,
    problem_responses,
    unauthorized_responses,
    versioned_json,
)
from storefront.idempotency import IdempotencyStore
from storefront.inventory.admin import InventoryAdmin
from storefront.inventory.models import AdjustmentInput, InventoryView, StockLevel, ThresholdInput
from storefront.inventory.repository import InventoryRepository
from storefront.inventory.stock_function import StockFunctionClient
from storefront.observability import http_handler
from storefront.orders.admin import AdminOrder, Moment, OrderPage, OrderQuery, OrderSearch
from storefront.orders.models import OrderStatus
from storefront.orders.repository import OrderRepository
from storefront.pagination import MAX_CURSOR_LENGTH, CursorCodec
from storefront.secrets import get_secret
from storefront.shop import load_shop_config

MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE = 100, 20

settings = AdminSettings.from_env()
logger = Logger()
dynamodb = boto3.client("dynamodb")
cursors = CursorCodec(lambda: get_secret(settings.cursor_secret_id))
audit_repository = AuditRepository(dynamodb, settings.audit_table, settings.audit_retention_days)
audit = AuditLog(audit_repository)
inventory = InventoryRepository(dynamodb, settings.inventory_table)
catalog_repository = CatalogRepository(dynamodb, settings.catalog_table)
catalog = CatalogAdmin(
    catalog_repository,
    inventory,
    audit_repository,
    cursors,
    load_shop_config().currencies,
    now=lambda: datetime.now(UTC),
)
orders = OrderSearch(OrderRepository(dynamodb, settings.orders_table), audit, cursors)
idempotency = IdempotencyStore(dynamodb, settings.orders_table, ttl_seconds=settings.idempotency_ttl_hours * 3600)


@cache
def stock() -> InventoryAdmin:
    """Built on the first stock route; one quick retry of a failed Invoke, within the function's timeout."""
    lambda_client = boto3.client(
        "lambda", config=Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2, read_timeout=8)
    )
    return InventoryAdmin(
        inventory, catalog_repository, StockFunctionClient(lambda_client, settings.stock_function), idempotency, cursors
    )


@cache
def images() -> ProductImages:
    """Built on the first upload: S3's client loads a large service model, which no other route needs."""
    return ProductImages(S3ImageBucket(boto3.client("s3"), settings.images_bucket), catalog, settings.image_base_url)


# The largest valid product (50 variants, 20 image URLs, a 5,000-character description) is about 94 KB.
app = create_app(
    "Storefront admin",
    "The merchant's admin API. Every route takes `Authorization: Bearer <JWT>` of the operators' Cognito user pool.",
    max_body_bytes=128 * 1024,
)

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
Cursor = Annotated[str | None, Query(min_length=1, max_length=MAX_CURSOR_LENGTH)]
ProductIdPath = Annotated[str, Path(pattern=ID_PATTERN)]
SkuPath = Annotated[str, Path(pattern=SKU_PATTERN)]
IfMatch = Annotated[str | None, Header(max_length=64, description="The version you read (an earlier ETag)")]
IdempotencyKey = Annotated[
    str | None, Header(min_length=1, max_length=255, description="A fresh random value per adjustment; required")
]
ADMIN_ONLY = {**unauthorized_responses(), **problem_responses(403, 500)}


class Me(BaseModel):
    """Who the token says the caller is: what the admin page shows and uses to offer only what the groups allow."""

    sub: str
    username: str
    email: str | None = Field(default=None, description="Present when the token carries it (ID tokens)")
    groups: list[str]


@app.get("/admin/me", response_model=Me, response_model_exclude_none=True, responses=ADMIN_ONLY)
def get_me(actor: Operator) -> Response:
    me = Me(sub=actor.sub, username=actor.username, email=actor.email, groups=list(actor.groups))
    return Response(
        me.model_dump_json(exclude_none=True), media_type="application/json", headers={"Cache-Control": "no-store"}
    )


# ---------------------------------------------------------------- categories


@app.post(
    "/admin/categories",
    status_code=201,
    response_model=Category,
    responses={**ADMIN_ONLY, **problem_responses(400, 409, 413, 422, 503)},
)
def create_category(actor: AdminOnly, body: NewCategory) -> Response:
    return private_json(catalog.create_category(actor, body), status=201)


@app.put(
    "/admin/categories/{category_id}",
    response_model=Category,
    responses={**ADMIN_ONLY, **problem_responses(400, 404, 413, 422, 503)},
)
def rename_category(
    actor: AdminOnly, category_id: Annotated[str, Path(pattern=ID_PATTERN)], body: CategoryUpdate
) -> Response:
    return private_json(catalog.rename_category(actor, category_id, body))


# ---------------------------------------------------------------- products


@app.get("/admin/products", response_model=AdminProductPage, responses={**ADMIN_ONLY, **problem_responses(400, 422)})
def list_products(
    actor: Operator, status: ProductStatus | None = None, limit: Limit = DEFAULT_PAGE_SIZE, cursor: Cursor = None
) -> Response:
    return private_json(catalog.list_products(status, limit, cursor))


@app.post(
    "/admin/products",
    status_code=201,
    response_model=AdminProduct,
    responses={**ADMIN_ONLY, **problem_responses(400, 409, 413, 422, 503)},
)
def create_product(actor: AdminOnly, body: NewProduct) -> Response:
    product = catalog.create_product(actor, body)
    return versioned_json(product, product.version, status=201, headers={"Location": f"/admin/products/{product.id}"})


@app.get(
    "/admin/products/{product_id}", response_model=AdminProduct, responses={**ADMIN_ONLY, **problem_responses(404, 422)}
)
def get_product(actor: Operator, product_id: ProductIdPath) -> Response:
    product = catalog.get_product(product_id)
    return versioned_json(product, product.version)


@app.put(
    "/admin/products/{product_id}",
    response_model=AdminProduct,
    responses={**ADMIN_ONLY, **problem_responses(400, 404, 409, 412, 413, 422, 503)},
)
def replace_product(
    actor: AdminOnly, product_id: ProductIdPath, body: ProductUpdate, if_match: IfMatch = None
) -> Response:
    product = catalog.replace_product(actor, product_id, body, parse_if_match(if_match))
    return versioned_json(product, product.version)


@app.delete(
    "/admin/products/{product_id}", status_code=204, responses={**ADMIN_ONLY, **problem_responses(404, 412, 422, 503)}
)
def archive_product(actor: AdminOnly, product_id: ProductIdPath, if_match: IfMatch = None) -> Response:
    catalog.archive_product(actor, product_id, parse_if_match(if_match))
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


@app.post(
    "/admin/products/{product_id}/images",
    status_code=201,
    response_model=ImageUploadTicket,
    responses={**ADMIN_ONLY, **problem_responses(400, 404, 409, 413, 422, 503)},
)
def upload_image(actor: AdminOnly, product_id: ProductIdPath, body: ImageUpload) -> Response:
    return private_json(images().start_upload(actor, product_id, body), status=201)


# ---------------------------------------------------------------- inventory


@app.get(
    "/admin/inventory/{sku}", response_model=InventoryView, responses={**ADMIN_ONLY, **problem_responses(400, 404, 422)}
)
def get_inventory(actor: Operator, sku: SkuPath, limit: Limit = DEFAULT_PAGE_SIZE, cursor: Cursor = None) -> Response:
    return private_json(stock().view(sku, limit, cursor))


@app.post(
    "/admin/inventory/{sku}/adjustments",
    status_code=201,
    response_model=StockLevel,
    responses={**ADMIN_ONLY, **problem_responses(400, 404, 409, 413, 422, 503)},
)
def adjust_stock(
    actor: Operator, sku: SkuPath, body: AdjustmentInput, idempotency_key: IdempotencyKey = None
) -> Response:
    answer = stock().adjust(actor, sku, body, idempotency_key)
    return Response(
        answer.body, status_code=answer.status, media_type="application/json", headers={"Cache-Control": "no-store"}
    )


@app.patch(
    "/admin/inventory/{sku}",
    response_model=StockLevel,
    responses={**ADMIN_ONLY, **problem_responses(400, 404, 413, 422, 503)},
)
def set_low_stock_threshold(actor: Operator, sku: SkuPath, body: ThresholdInput) -> Response:
    return private_json(stock().set_threshold(actor, sku, body))


# ---------------------------------------------------------------- orders


@app.get("/admin/orders", response_model=OrderPage, responses={**ADMIN_ONLY, **problem_responses(400, 422)})
def list_orders(
    actor: Operator,
    status: OrderStatus | None = None,
    email: Annotated[
        str | None, Query(min_length=3, max_length=254, description="Any case; spaces around ignored")
    ] = None,
    created_from: Annotated[
        Moment | None, Query(description="A time with its offset, or a date (from its start, UTC)")
    ] = None,
    created_to: Annotated[
        Moment | None, Query(description="A time with its offset, or a date (to its end, UTC)")
    ] = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Response:
    query = OrderQuery(status=status, email=email, created_from=created_from, created_to=created_to)
    return private_json(orders.list(query, limit, cursor))


@app.get("/admin/orders/{order_id}", response_model=AdminOrder, responses={**ADMIN_ONLY, **problem_responses(404, 422)})
def get_order(actor: Operator, order_id: Annotated[str, Path(min_length=1, max_length=64)]) -> Response:
    return private_json(orders.get(order_id))


# ---------------------------------------------------------------- audit


@app.get("/admin/audit", response_model=AuditPage, responses={**ADMIN_ONLY, **problem_responses(400, 422)})
def list_audit(actor: AdminOnly, limit: Limit = DEFAULT_PAGE_SIZE, cursor: Cursor = None) -> Response:
    return private_json(audit.list(limit, cursor, cursors))


handler = http_handler(app, logger)
