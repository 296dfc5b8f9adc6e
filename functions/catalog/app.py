"""Catalog function: GET /products, GET /products/{product_id}, GET /categories (public, cacheable)."""

from typing import Annotated, Any

import boto3
from aws_lambda_powertools import Logger
from fastapi import Header, Path, Query, Request, Response
from storefront.catalog.models import ID_PATTERN, CategoryList, Product, ProductPage
from storefront.catalog.repository import CatalogRepository
from storefront.catalog.service import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, CatalogService
from storefront.config import CatalogSettings
from storefront.http import cacheable_json, create_app, problem_responses
from storefront.inventory.repository import InventoryRepository
from storefront.observability import http_handler
from storefront.pagination import MAX_CURSOR_LENGTH, CursorCodec
from storefront.secrets import get_secret
from storefront.shop import PublicShop, load_shop_config

settings = CatalogSettings.from_env()
logger = Logger()
dynamodb = boto3.client("dynamodb")
service = CatalogService(
    CatalogRepository(dynamodb, settings.catalog_table),
    InventoryRepository(dynamodb, settings.inventory_table),
    CursorCodec(lambda: get_secret(settings.cursor_secret_id)),
)

shop = load_shop_config().public()  # validated at cold start, like every function that reads shop.json
app = create_app("Storefront catalog", "The shop's settings, products with live availability, and categories.")
IfNoneMatch = Annotated[str | None, Header(max_length=1024, description="An ETag from an earlier response")]
CACHED: dict[int | str, dict[str, Any]] = {304: {"description": "Not modified: the ETag in If-None-Match is current"}}


@app.get("/products", response_model=ProductPage, responses={**CACHED, **problem_responses(400, 422, 500)})
def list_products(
    request: Request,
    category: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(min_length=1, max_length=MAX_CURSOR_LENGTH)] = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    return cacheable_json(request, service.list_products(category, limit, cursor), settings.cache_max_age)


@app.get("/products/{product_id}", response_model=Product, responses={**CACHED, **problem_responses(404, 422, 500)})
def get_product(
    request: Request,
    product_id: Annotated[str, Path(min_length=1, max_length=128)],
    if_none_match: IfNoneMatch = None,
) -> Response:
    return cacheable_json(request, service.get_product(product_id), settings.cache_max_age)


@app.get("/shop", response_model=PublicShop, responses={**CACHED, **problem_responses(422, 500)})
def get_shop(request: Request, if_none_match: IfNoneMatch = None) -> Response:
    return cacheable_json(request, shop, settings.cache_max_age)


@app.get("/categories", response_model=CategoryList, responses={**CACHED, **problem_responses(422, 500)})
def list_categories(request: Request, if_none_match: IfNoneMatch = None) -> Response:
    return cacheable_json(request, CategoryList(items=service.list_categories()), settings.cache_max_age)


handler = http_handler(app, logger)
