"""Cart rules: lines, limits, stock checks, shipping, and totals always priced from the current catalog.

Writes use optimistic concurrency: read, change, save-if-version-unchanged. A client that sent
If-Match gets 412 when it lost the race (it saw a cart that no longer exists); a client that did not
is retried here, so concurrent writers never lose each other's lines.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from storefront.cart.delivery import DeliveryWindow, delivery_window
from storefront.cart.models import (
    MAX_LINES,
    MAX_QUANTITY,
    Cart,
    CartLine,
    CartShipping,
    ShippingMethod,
    StoredCart,
    StoredLine,
    StoredShipping,
    Warning,
)
from storefront.cart.pricing import totals
from storefront.cart.repository import CartRepository, StaleVersion
from storefront.catalog.models import VariantInfo
from storefront.catalog.repository import CatalogRepository
from storefront.errors import Busy, InsufficientStock, NotFound, ValidationFailed, VersionConflict
from storefront.inventory.repository import InventoryRepository
from storefront.money import Money
from storefront.shop import ShopConfig

_MAX_ATTEMPTS = 8
CART_ID_BYTES = 24  # 192 random bits, base64url: 32 characters


class CartService:
    def __init__(
        self,
        carts: CartRepository,
        catalog: CatalogRepository,
        inventory: InventoryRepository,
        shop: ShopConfig,
        idle_lifetime: timedelta,
        now: Callable[[], datetime],
    ) -> None:
        self._carts = carts
        self._catalog = catalog
        self._inventory = inventory
        self._shop = shop
        self._idle = idle_lifetime
        self._now = now

    # ---------------------------------------------------------------- reads

    def create(self, currency: str | None) -> Cart:
        currency = currency or self._shop.currency
        if currency not in self._shop.currencies:
            raise ValidationFailed(
                "unsupported_currency",
                f"This shop sells in {', '.join(self._shop.currencies)}.",
                [{"field": "currency", "code": "unsupported_currency", "message": f"{currency} is not sold in"}],
            )
        now = self._now()
        cart = StoredCart(
            id=secrets.token_urlsafe(CART_ID_BYTES),
            currency=currency,
            version=1,
            lines=[],
            shipping=None,
            created_at=now,
            updated_at=now,
            expires_at=now + self._idle,
        )
        self._carts.create(cart)
        return self.price(cart)

    def get(self, cart_id: str) -> Cart:
        return self.price(self._load(cart_id))

    def shipping_methods(self, country: str, currency: str | None = None) -> list[ShippingMethod]:
        currency = currency or self._shop.currency
        config = self._shop.countries.get(country)
        if config is None:
            return []
        return [
            ShippingMethod(
                id=m.id,
                name=m.name,
                price=m.price,
                free_over=m.free_over,
                delivery_days=m.delivery_days,
                estimated_delivery=self._window(m.delivery_days.min, m.delivery_days.max),
            )
            for m in config.methods
            if m.price.currency == currency
        ]

    # ---------------------------------------------------------------- writes

    def add_item(self, cart_id: str, sku: str, quantity: int, if_match: int | None) -> Cart:
        def change(cart: StoredCart) -> None:
            variant = self._variant(sku, cart.currency)
            line = cart.line(sku)
            wanted = quantity + (line.quantity if line else 0)
            if wanted > MAX_QUANTITY:
                raise ValidationFailed(
                    "quantity_limit",
                    f"At most {MAX_QUANTITY} of one item per cart.",
                    [{"sku": sku, "code": "quantity_limit", "message": f"{wanted} would exceed {MAX_QUANTITY}"}],
                )
            if line is None and len(cart.lines) >= MAX_LINES:
                raise ValidationFailed(
                    "too_many_lines",
                    f"A cart holds at most {MAX_LINES} different items.",
                    [{"field": "sku", "code": "too_many_lines", "message": "the cart is full"}],
                )
            self._check_stock(sku, wanted)
            if line is None:
                cart.lines.append(StoredLine(sku=sku, quantity=wanted, seen_price=variant.price))
            else:
                line.quantity, line.seen_price = wanted, variant.price

        return self._mutate(cart_id, if_match, change)

    def set_quantity(self, cart_id: str, sku: str, quantity: int, if_match: int | None) -> Cart:
        def change(cart: StoredCart) -> None:
            line = cart.line(sku)
            if line is None:
                raise NotFound(f"The cart has no line {sku!r}.")
            if quantity == 0:
                cart.lines.remove(line)
                return
            variant = self._variant(sku, cart.currency)
            if quantity > line.quantity:  # lowering a quantity is always allowed
                self._check_stock(sku, quantity)
            line.quantity, line.seen_price = quantity, variant.price

        return self._mutate(cart_id, if_match, change)

    def remove_item(self, cart_id: str, sku: str, if_match: int | None) -> Cart:
        def change(cart: StoredCart) -> None:
            line = cart.line(sku)
            if line is None:
                raise NotFound(f"The cart has no line {sku!r}.")
            cart.lines.remove(line)

        return self._mutate(cart_id, if_match, change)

    def choose_shipping(self, cart_id: str, country: str, method: str, if_match: int | None) -> Cart:
        def change(cart: StoredCart) -> None:
            offered = {m.id for m in self.shipping_methods(country, cart.currency)}
            if country not in self._shop.countries:
                raise ValidationFailed(
                    "unsupported_country",
                    f"We do not ship to {country}.",
                    [
                        {
                            "field": "country",
                            "code": "unsupported_country",
                            "message": f"ships to {', '.join(sorted(self._shop.countries))}",
                        }
                    ],
                )
            if method not in offered:
                raise ValidationFailed(
                    "unsupported_shipping_method",
                    f"No method {method!r} to {country}.",
                    [
                        {
                            "field": "method",
                            "code": "unsupported_shipping_method",
                            "message": f"offered: {', '.join(sorted(offered))}",
                        }
                    ],
                )
            cart.shipping = StoredShipping(country=country, method=method)

        return self._mutate(cart_id, if_match, change)

    # ---------------------------------------------------------------- pricing

    def price(self, cart: StoredCart) -> Cart:
        """The cart as the API shows it: current prices and stock, shipping, delivery window, totals, warnings."""
        variants = self._catalog.get_variants(line.sku for line in cart.lines)
        available = self._inventory.available(line.sku for line in cart.lines)
        lines: list[CartLine] = []
        warnings: list[Warning] = []
        for line in cart.lines:
            variant = variants.get(line.sku)
            if variant is None or variant.price.currency != cart.currency:
                warnings.append(
                    Warning(
                        code="product_unavailable",
                        sku=line.sku,
                        message="This item is no longer sold; it is left out of the totals.",
                    )
                )
                continue
            if variant.price != line.seen_price:
                warnings.append(
                    Warning(
                        code="price_changed",
                        sku=line.sku,
                        message=f"The price changed from {line.seen_price} to {variant.price}.",
                    )
                )
            if line.quantity > available[line.sku]:
                warnings.append(
                    Warning(
                        code="insufficient_stock",
                        sku=line.sku,
                        message=f"Only {available[line.sku]} left; you have {line.quantity}.",
                    )
                )
            lines.append(
                CartLine(
                    sku=line.sku,
                    product_id=variant.product_id,
                    title=f"{variant.product_name} – {variant.title}",
                    quantity=line.quantity,
                    unit_price=variant.price,
                    line_total=variant.price.times(line.quantity),
                )
            )
        subtotal = Money(amount=sum(line.line_total.amount for line in lines), currency=cart.currency)
        shipping = self._shipping(cart, subtotal)
        country = cart.shipping.country if cart.shipping else None
        return Cart(
            id=cart.id,
            currency=cart.currency,
            version=cart.version,
            expires_at=cart.expires_at,
            lines=lines,
            shipping=shipping,
            totals=totals(
                [line.line_total for line in lines],
                shipping.price if shipping else Money(amount=0, currency=cart.currency),
                self._shop.tax_rate_bp(country),
                self._shop.prices_include_tax,
            ),
            warnings=warnings,
        )

    def _shipping(self, cart: StoredCart, subtotal: Money) -> CartShipping | None:
        if cart.shipping is None:
            return None
        method = next(
            (m for m in self._shop.countries[cart.shipping.country].methods if m.id == cart.shipping.method), None
        )
        if method is None:  # the shop stopped offering it: the shopper must choose again
            return None
        free = method.free_over is not None and subtotal.amount >= method.free_over.amount
        price = Money(amount=0, currency=cart.currency) if free else method.price
        return CartShipping(
            country=cart.shipping.country,
            method=method.id,
            price=price,
            estimated_delivery=self._window(method.delivery_days.min, method.delivery_days.max),
        )

    # ---------------------------------------------------------------- helpers

    def _window(self, min_days: int, max_days: int) -> DeliveryWindow:
        shop = self._shop
        return delivery_window(
            self._now(), shop.zone, shop.dispatch_cutoff_hour, set(shop.holidays), min_days, max_days
        )

    def _load(self, cart_id: str) -> StoredCart:
        cart = self._carts.get(cart_id) if _looks_like_cart_id(cart_id) else None
        if cart is None or cart.expires_at <= self._now():  # TTL deletion is lazy: expired reads as gone
            raise NotFound("There is no such cart, or it expired.")
        return cart

    def _variant(self, sku: str, currency: str) -> VariantInfo:
        variant = self._catalog.get_variants([sku]).get(sku)
        if variant is None:
            raise ValidationFailed(
                "unknown_sku",
                f"There is no product variant {sku!r}.",
                [{"sku": sku, "code": "unknown_sku", "message": "not in the catalog"}],
            )
        if variant.price.currency != currency:
            raise ValidationFailed(
                "currency_mismatch",
                f"{sku} is priced in {variant.price.currency}, the cart in {currency}.",
                [{"sku": sku, "code": "currency_mismatch", "message": "currencies differ"}],
            )
        return variant

    def _check_stock(self, sku: str, wanted: int) -> None:
        available = self._inventory.available([sku])[sku]
        if wanted > available:
            raise InsufficientStock(
                f"Only {available} of {sku} available.",
                [
                    {
                        "sku": sku,
                        "code": "insufficient_stock",
                        "available": available,
                        "message": f"{wanted} requested, {available} available",
                    }
                ],
            )

    def _mutate(self, cart_id: str, if_match: int | None, change: Callable[[StoredCart], None]) -> Cart:
        for attempt in range(_MAX_ATTEMPTS):
            cart = self._load(cart_id)
            if if_match is not None and cart.version != if_match:
                raise VersionConflict(f"The cart is at version {cart.version}, not {if_match}; reload it.")
            read_version = cart.version
            change(cart)
            now = self._now()
            cart.version, cart.updated_at, cart.expires_at = read_version + 1, now, now + self._idle
            try:
                self._carts.save(cart, read_version)
            except StaleVersion:
                if if_match is not None:
                    raise VersionConflict("The cart changed while this request ran; reload it.") from None
                time.sleep(random.uniform(0, 0.01 * 2**attempt))  # noqa: S311  jittered backoff before re-reading, not a secret
                continue
            return self.price(cart)
        raise Busy("The cart is being changed by many requests at once; retry shortly.")


def _looks_like_cart_id(cart_id: str) -> bool:
    return len(cart_id) == 32 and all(c.isalnum() or c in "-_" for c in cart_id) and cart_id.isascii()
