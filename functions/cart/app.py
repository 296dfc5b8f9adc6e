"""Cart function: guest carts, lines, shipping choice and transparent totals (public, never cached)."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

import boto3
from aws_lambda_powertools import Logger
from fastapi import Header, Path, Query, Response
from storefront.cart.models import AddItem, Cart, ChooseShipping, CreateCart, SetQuantity, ShippingMethodList
from storefront.cart.repository import CartRepository
from storefront.cart.service import CartService
from storefront.catalog.models import SKU_PATTERN
from storefront.catalog.repository import CatalogRepository
from storefront.config import CartSettings
from storefront.http import create_app, parse_if_match, problem_responses, versioned_json
from storefront.inventory.repository import InventoryRepository
from storefront.observability import http_handler
from storefront.shop import load_shop_config

settings = CartSettings.from_env()
logger = Logger()
dynamodb = boto3.client("dynamodb")
service = CartService(
    CartRepository(dynamodb, settings.cart_table),
    CatalogRepository(dynamodb, settings.catalog_table),
    InventoryRepository(dynamodb, settings.inventory_table),
    load_shop_config(),
    idle_lifetime=timedelta(hours=settings.idle_hours),
    now=lambda: datetime.now(UTC),
)

app = create_app("Storefront cart", "Guest carts with shipping options, delivery windows, tax and totals.")
CartId = Annotated[str, Path(min_length=1, max_length=64, description="The cart id from POST /carts")]
SkuPath = Annotated[str, Path(pattern=SKU_PATTERN)]
IfMatch = Annotated[str | None, Header(max_length=64, description="The cart version last seen (412 if stale)")]
MUTATION_ERRORS = problem_responses(400, 404, 409, 412, 413, 422, 500, 503)


@app.post("/carts", status_code=201, response_model=Cart, responses=problem_responses(400, 413, 422, 500))
def create_cart(body: CreateCart | None = None) -> Response:
    cart = service.create(body.currency if body else None)
    return versioned_json(cart, cart.version, 201, {"Location": f"/carts/{cart.id}"})


@app.get("/carts/{cart_id}", response_model=Cart, responses=problem_responses(404, 422, 500))
def get_cart(cart_id: CartId) -> Response:
    cart = service.get(cart_id)
    return versioned_json(cart, cart.version)


@app.post("/carts/{cart_id}/items", response_model=Cart, responses=MUTATION_ERRORS)
def add_item(cart_id: CartId, body: AddItem, if_match: IfMatch = None) -> Response:
    cart = service.add_item(cart_id, body.sku, body.quantity, parse_if_match(if_match))
    return versioned_json(cart, cart.version)


@app.put("/carts/{cart_id}/items/{sku}", response_model=Cart, responses=MUTATION_ERRORS)
def set_quantity(cart_id: CartId, sku: SkuPath, body: SetQuantity, if_match: IfMatch = None) -> Response:
    cart = service.set_quantity(cart_id, sku, body.quantity, parse_if_match(if_match))
    return versioned_json(cart, cart.version)


@app.delete("/carts/{cart_id}/items/{sku}", response_model=Cart, responses=MUTATION_ERRORS)
def remove_item(cart_id: CartId, sku: SkuPath, if_match: IfMatch = None) -> Response:
    cart = service.remove_item(cart_id, sku, parse_if_match(if_match))
    return versioned_json(cart, cart.version)


@app.put("/carts/{cart_id}/shipping", response_model=Cart, responses=MUTATION_ERRORS)
def choose_shipping(cart_id: CartId, body: ChooseShipping, if_match: IfMatch = None) -> Response:
    cart = service.choose_shipping(cart_id, body.country, body.method, parse_if_match(if_match))
    return versioned_json(cart, cart.version)


@app.get("/shipping-methods", response_model=ShippingMethodList, responses=problem_responses(422, 500))
def shipping_methods(
    country: Annotated[str, Query(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 destination")],
    currency: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")] = None,
) -> Response:
    listing = ShippingMethodList(items=service.shipping_methods(country, currency))
    return Response(
        listing.model_dump_json(), media_type="application/json", headers={"Cache-Control": "public, max-age=60"}
    )


handler = http_handler(app, logger)
