"""The shop's commercial configuration (currencies, tax, shipping, dispatch), from shop.json beside this file.

It is versioned with the code and validated at cold start, so a typo fails the deploy's smoke test, not a
shopper's checkout. SHOP_CONFIG_FILE names another file (tests use it).
"""

from __future__ import annotations

import json
import os
from datetime import date
from functools import cache
from pathlib import Path
from typing import Annotated, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, model_validator

from storefront.money import CURRENCY_EXPONENTS, Money

CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
DEFAULT_FILE = Path(__file__).with_name("shop.json")


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
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    comment: str = Field(default="", alias="$comment")
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


def load_shop_config(path: str | None = None) -> ShopConfig:
    """The configuration in `path`, else in the file SHOP_CONFIG_FILE names, else shop.json beside this module."""
    return _load(path or os.environ.get("SHOP_CONFIG_FILE") or str(DEFAULT_FILE))


@cache
def _load(path: str) -> ShopConfig:
    return ShopConfig.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
