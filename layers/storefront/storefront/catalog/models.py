"""Catalog shapes, exactly as docs/api.md publishes them."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from storefront.money import Money

ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"
SKU_PATTERN = r"^[A-Z0-9][A-Z0-9-]{0,63}$"

ProductId = Annotated[str, Field(pattern=ID_PATTERN, examples=["linen-shirt"])]
CategoryId = Annotated[str, Field(pattern=ID_PATTERN, examples=["shirts"])]
Sku = Annotated[str, Field(pattern=SKU_PATTERN, examples=["LINEN-SHIRT-M"])]


class Variant(BaseModel):
    sku: Sku
    title: str
    price: Money
    available: Annotated[int, Field(ge=0)]
    in_stock: bool


class Product(BaseModel):
    id: ProductId
    name: str
    description: str
    category: CategoryId
    images: list[str]
    variants: list[Variant]


class ProductPage(BaseModel):
    items: list[Product]
    next_cursor: str | None


class Category(BaseModel):
    id: CategoryId
    name: str


class CategoryList(BaseModel):
    items: list[Category]


# --- what the repository stores and returns (availability lives in the inventory, not here) ---

class StoredVariant(BaseModel):
    model_config = ConfigDict(frozen=True)
    sku: Sku
    title: str
    price: Money


class StoredProduct(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: ProductId
    name: str
    description: str
    category: CategoryId
    images: list[str]
    variants: Annotated[list[StoredVariant], Field(min_length=1, max_length=50)]


class VariantInfo(BaseModel):
    """What pricing a SKU needs, without its product: stored once per variant."""

    model_config = ConfigDict(frozen=True)
    sku: Sku
    product_id: ProductId
    product_name: str
    title: str
    price: Money
