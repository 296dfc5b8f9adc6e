"""Cart shapes: requests, the Cart the API returns (docs/api.md, "Cart"), and what is stored."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from storefront.cart.delivery import DeliveryWindow
from storefront.cart.pricing import Totals
from storefront.catalog.models import ProductId, Sku
from storefront.money import Money
from storefront.shop import CountryCode, DeliveryDays

MAX_QUANTITY = 99
MAX_LINES = 50
CART_ID_PATTERN = r"^[A-Za-z0-9_-]{32}$"

Quantity = Annotated[int, Field(strict=True, ge=1, le=MAX_QUANTITY)]
QuantityOrZero = Annotated[int, Field(strict=True, ge=0, le=MAX_QUANTITY)]
MethodId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")  # unknown fields are a 422, per the contract


class CreateCart(_Request):
    currency: Annotated[str | None, Field(pattern=r"^[A-Z]{3}$")] = None


class AddItem(_Request):
    sku: Sku
    quantity: Quantity


class SetQuantity(_Request):
    quantity: QuantityOrZero


class ChooseShipping(_Request):
    country: CountryCode
    method: MethodId


# --- responses ---


class CartLine(BaseModel):
    sku: Sku
    product_id: ProductId
    title: str
    quantity: int
    unit_price: Money
    line_total: Money


class CartShipping(BaseModel):
    country: CountryCode
    method: str
    price: Money
    estimated_delivery: DeliveryWindow


class Warning(BaseModel):
    code: str  # price_changed | insufficient_stock | product_unavailable
    sku: Sku
    message: str


class Cart(BaseModel):
    id: str
    currency: str
    version: int
    expires_at: datetime
    lines: list[CartLine]
    shipping: CartShipping | None
    totals: Totals
    warnings: list[Warning]


class ShippingMethod(BaseModel):
    id: str
    name: str
    price: Money
    free_over: Money | None  # the subtotal from which this method is free
    delivery_days: DeliveryDays
    estimated_delivery: DeliveryWindow


class ShippingMethodList(BaseModel):
    items: list[ShippingMethod]


# --- stored ---


class StoredLine(BaseModel):
    sku: Sku
    quantity: int
    seen_price: Money  # the price when the shopper last touched the line: a change shows as price_changed


class StoredShipping(BaseModel):
    country: CountryCode
    method: str


class StoredCart(BaseModel):
    id: str
    currency: str
    version: int
    lines: list[StoredLine]
    shipping: StoredShipping | None = None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime

    def line(self, sku: str) -> StoredLine | None:
        return next((line for line in self.lines if line.sku == sku), None)
