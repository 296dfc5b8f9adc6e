"""The shop's configuration (name, locale, address and support contact; currencies, tax, shipping, dispatch),
from shop.json beside this file.

It is versioned with the code and validated at cold start, so a typo fails the deploy's smoke test, not a
shopper's checkout. SHOP_CONFIG_FILE (or load_shop_config(path)) names another file (tests use it).
"""

from __future__ import annotations

import json
import os
import re
from datetime import date
from functools import cache
from pathlib import Path
from typing import Annotated, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from storefront.money import CURRENCY_EXPONENTS, Money
from storefront.notifications.addresses import deliverable

CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
DEFAULT_FILE = Path(__file__).with_name("shop.json")
SCHEMA_FILE = Path(__file__).with_name("shop.schema.json")
# Control characters (line breaks included) and bidirectional overrides: nothing a shop's name or address, which
# go into every mail's From header and footer, may contain.
_UNSAFE_TEXT = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _plain_text(value: str) -> str:
    if _UNSAFE_TEXT.search(value):
        raise ValueError("control characters and bidirectional formatting characters are not allowed")
    return value


def _mailbox(value: str) -> str:
    if deliverable(value) != value:
        raise ValueError(f"{value!r} is not a plain email address (lower-case ASCII domain)")
    return value


ShopText = Annotated[str, Field(min_length=1, max_length=120), AfterValidator(_plain_text)]
EmailAddress = Annotated[str, AfterValidator(_mailbox)]


class DeliveryDays(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    min: Annotated[int, Field(ge=0, le=60)]
    max: Annotated[int, Field(ge=0, le=60)]

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.max < self.min:
            raise ValueError("delivery_days.max is below min")
        return self


class ShippingMethodConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
    name: str
    price: Money
    delivery_days: DeliveryDays
    free_over: Money | None = None  # a subtotal at or above this ships free


class CountryConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    tax_rate_bp: Annotated[int, Field(ge=0, le=10_000)]  # basis points: 1900 = 19 %
    methods: list[ShippingMethodConfig]


class ShopAddress(BaseModel):
    """The shop's postal address, printed at the foot of every customer email."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    company: ShopText  # the legal name, which may differ from the shop's name
    line1: ShopText
    line2: ShopText | None = None
    postal_code: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 -]{1,11}$")]
    city: ShopText
    country: CountryCode


class Support(BaseModel):
    """Where shoppers get help: shown in emails (and replies to them go here), and by GET /shop."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    email: EmailAddress
    url: Annotated[str, Field(max_length=500, pattern=r"^https://[^\s<>\"]+$")] | None = None


# ---------------------------------------------------------------- abuse limits (docs/observability.md, "Abuse limits")
class CheckoutLimits(BaseModel):
    """Per-client limits on checkout. An order holds stock from checkout until it is paid or ends (at most the
    payment window): these keep one shopper, or one address, from holding a shop's stock without paying."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    comment: str = Field(default="", alias="$comment")
    # Orders of one email address (trimmed, case-folded) holding stock at once; one more is a 429 with Retry-After.
    orders_holding_stock_per_email: Annotated[int, Field(ge=1, le=1000)]
    # The same per source IP address (an IPv6 client counts by its /64): generous, as offices and mobile
    # carriers put many shoppers behind one address.
    orders_holding_stock_per_ip: Annotated[int, Field(ge=1, le=100_000)]
    # Units of one SKU in one order; more is a 422 naming the SKU (a cart line may hold up to 99).
    units_per_sku: Annotated[int, Field(ge=1, le=99)]


class ShopConfig(BaseModel):
    """shop.json. Its JSON Schema, for editors and reviews, is generated from this model (shop.schema.json beside it:
    `python -m storefront.shop > layers/storefront/storefront/shop.schema.json`); docs/configuration.md explains each
    field."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    schema_url: str = Field(default="", alias="$schema", description="Where editors find this file's JSON Schema.")
    comment: str = Field(default="", alias="$comment")
    name: ShopText
    # BCP 47 language-region (de-DE, en-GB): the language of customer emails and how they write amounts and dates.
    locale: Annotated[str, Field(pattern=r"^[a-z]{2}-[A-Z]{2}$")]
    address: ShopAddress
    support: Support
    currency: str
    currencies: list[str]
    timezone: str
    dispatch_cutoff_hour: Annotated[int, Field(ge=0, le=23)]
    prices_include_tax: bool
    default_country: CountryCode
    holidays: list[date] = []
    countries: dict[CountryCode, CountryConfig]
    checkout_limits: CheckoutLimits

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        unknown = [c for c in self.currencies if c not in CURRENCY_EXPONENTS]
        if unknown or self.currency not in self.currencies:
            raise ValueError(f"currencies must be known ISO 4217 codes and include {self.currency}")
        if self.default_country not in self.countries:
            raise ValueError("default_country must be one of countries")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {self.timezone!r}") from error
        for code, country in self.countries.items():
            ids = [m.id for m in country.methods]
            if len(ids) != len(set(ids)):
                raise ValueError(f"{code}: shipping method ids repeat")
            for method in country.methods:
                if method.price.currency not in self.currencies:
                    raise ValueError(f"{code}/{method.id}: price in a currency the shop does not sell in")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def tax_rate_bp(self, country: str | None) -> int:
        return self.countries[country or self.default_country].tax_rate_bp

    def public(self) -> PublicShop:
        """What a frontend may know (GET /shop): never the address of the business, taxes or shipping prices
        (those come priced with the cart and GET /shipping-methods)."""
        return PublicShop(
            name=self.name,
            currency=self.currency,
            currencies=self.currencies,
            locale=self.locale,
            prices_include_tax=self.prices_include_tax,
            default_country=self.default_country,
            countries=[PublicCountry(code=code, name=country.name) for code, country in self.countries.items()],
            support=self.support,
        )


class PublicCountry(BaseModel):
    code: CountryCode
    name: str


class PublicShop(BaseModel):
    """GET /shop: what the shop's configuration tells a frontend, so it never hard-codes it."""

    name: str
    currency: str
    currencies: list[str]
    locale: str
    prices_include_tax: bool
    default_country: CountryCode
    countries: list[PublicCountry]
    support: Support


def load_shop_config(path: str | None = None) -> ShopConfig:
    """The configuration in `path`, else in the file SHOP_CONFIG_FILE names, else shop.json beside this module."""
    return _load(path or os.environ.get("SHOP_CONFIG_FILE") or str(DEFAULT_FILE))


@cache
def _load(path: str) -> ShopConfig:
    return ShopConfig.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))


def json_schema() -> str:
    """shop.json's JSON Schema, as committed in shop.schema.json (a test keeps the two equal)."""
    schema = ShopConfig.model_json_schema(by_alias=True)
    return (
        json.dumps(
            {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema, "title": "shop.json"},
            indent=2,
            ensure_ascii=False,
        )
        + "\n"
    )


if __name__ == "__main__":
    print(json_schema(), end="")  # noqa: T201  the module's command line writes the schema to stdout
