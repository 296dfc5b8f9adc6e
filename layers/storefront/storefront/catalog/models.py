"""Catalog shapes, exactly as docs/api.md publishes them (the shop's and the admin's), and the status rules."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

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


# --- status: only active products are sold ---

ProductStatus = Literal["draft", "active", "archived"]
# The statuses a product may move to from each. Archiving is never final, but an archived product comes back as a
# draft, to be looked over before it is sold again (as Shopify unarchives).
STATUS_CHANGES: dict[str, frozenset[str]] = {
    "draft": frozenset({"draft", "active", "archived"}),
    "active": frozenset({"active", "draft", "archived"}),
    "archived": frozenset({"archived", "draft"}),
}
MAX_VARIANTS = 50
MAX_IMAGES = 20


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
    variants: Annotated[list[StoredVariant], Field(min_length=1, max_length=MAX_VARIANTS)]
    # Products stored before the admin API existed were all for sale, at their first version.
    status: ProductStatus = "active"
    version: int = 1
    updated_at: datetime | None = None


class VariantInfo(BaseModel):
    """What pricing a SKU needs, without its product: stored once per variant."""

    model_config = ConfigDict(frozen=True)
    sku: Sku
    product_id: ProductId
    product_name: str
    title: str
    price: Money


# --- the admin API ---


class AdminProduct(Product):
    """A product as the admin sees it: whatever its status, with the version that If-Match takes."""

    status: ProductStatus
    version: int
    updated_at: datetime | None


class AdminProductPage(BaseModel):
    items: list[AdminProduct]
    next_cursor: str | None


Title = Annotated[str, Field(min_length=1, max_length=120)]
ImageUrl = Annotated[
    str,
    Field(
        max_length=2048,
        pattern=r"^https?://[^\s/]+/\S*$",
        examples=["https://shop.example.com/images/linen-shirt/3f2a.jpg"],
    ),
]


class VariantInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    sku: Sku
    title: Title
    price: Money

    @field_validator("price")
    @classmethod
    def _not_negative(cls, price: Money) -> Money:
        if price.amount < 0:
            raise ValueError("a price cannot be negative")
        return price


class _ProductFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=5000)]
    category: CategoryId
    images: Annotated[list[ImageUrl], Field(max_length=MAX_IMAGES)]
    variants: Annotated[list[VariantInput], Field(min_length=1, max_length=MAX_VARIANTS)]

    @field_validator("variants")
    @classmethod
    def _skus_once(cls, variants: list[VariantInput]) -> list[VariantInput]:
        skus = [variant.sku for variant in variants]
        if len(set(skus)) != len(skus):
            raise ValueError(f"each SKU once per product: {sorted({s for s in skus if skus.count(s) > 1})}")
        return variants


class NewProduct(_ProductFields):
    """POST /admin/products: without an id, one is made from the name."""

    id: ProductId | None = None
    status: Literal["active", "draft"]


class ProductUpdate(_ProductFields):
    """PUT /admin/products/{id}: the whole product (archived too: the same as DELETE)."""

    status: ProductStatus


class NewCategory(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    id: CategoryId
    name: Title


class CategoryUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: Title
