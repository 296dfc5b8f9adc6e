"""CartService rules on in-memory fakes: limits, stock, expiry, currencies, tax modes, lost-update retries."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from storefront.cart.models import MAX_LINES, StoredCart
from storefront.cart.repository import StaleVersion
from storefront.cart.service import CartService
from storefront.catalog.models import VariantInfo
from storefront.errors import Busy, InsufficientStock, NotFound, ValidationFailed, VersionConflict
from storefront.money import CURRENCY_EXPONENTS, Money
from storefront.shop import DEFAULT_FILE, ShopConfig

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


class FakeCarts:
    def __init__(self) -> None:
        self.items: dict[str, str] = {}
        self.conflicts_to_inject = 0

    def get(self, cart_id: str) -> StoredCart | None:
        raw = self.items.get(cart_id)
        return StoredCart.model_validate_json(raw) if raw else None

    def create(self, cart: StoredCart) -> None:
        assert cart.id not in self.items
        self.items[cart.id] = cart.model_dump_json()

    def save(self, cart: StoredCart, read_version: int) -> None:
        if self.conflicts_to_inject:
            self.conflicts_to_inject -= 1
            raise StaleVersion(cart.id)
        stored = self.get(cart.id)
        if stored is None or stored.version != read_version:
            raise StaleVersion(cart.id)
        self.items[cart.id] = cart.model_dump_json()


class FakeCatalog:
    def __init__(self, variants: dict[str, VariantInfo]) -> None:
        self.variants = variants

    def get_variants(self, skus: Iterable[str]) -> dict[str, VariantInfo]:
        return {s: self.variants[s] for s in skus if s in self.variants}


class FakeInventory:
    def __init__(self, levels: dict[str, int]) -> None:
        self.levels = levels

    def available(self, skus: Iterable[str]) -> dict[str, int]:
        return {s: self.levels.get(s, 0) for s in skus}


def shop(**changes: Any) -> ShopConfig:
    data = json.loads(DEFAULT_FILE.read_text())
    data.update(changes)
    return ShopConfig.model_validate(data)


class World:
    def __init__(self, currency: str = "EUR", shop_config: ShopConfig | None = None, skus: int = 60) -> None:
        self.now = NOW
        self.carts = FakeCarts()
        self.catalog = FakeCatalog(
            {
                f"SKU-{i}": VariantInfo(
                    sku=f"SKU-{i}",
                    product_id=f"p-{i}",
                    product_name=f"P{i}",
                    title="One",
                    price=Money(amount=100 * (i + 1), currency=currency),
                )
                for i in range(skus)
            }
        )
        self.inventory = FakeInventory({f"SKU-{i}": 10 for i in range(skus)})
        self.service = CartService(
            self.carts,
            self.catalog,
            self.inventory,
            shop_config or shop(),  # type: ignore[arg-type]
            timedelta(hours=72),
            lambda: self.now,
        )


@pytest.fixture
def world() -> World:
    return World()


def test_adding_the_same_sku_adds_to_its_line(world: World) -> None:
    cart = world.service.create(None)
    world.service.add_item(cart.id, "SKU-1", 2, None)
    cart = world.service.add_item(cart.id, "SKU-1", 3, None)
    assert [(line.sku, line.quantity) for line in cart.lines] == [("SKU-1", 5)]
    assert cart.version == 3


def test_quantity_zero_removes_and_lowering_is_always_allowed(world: World) -> None:
    cart = world.service.create(None)
    world.service.add_item(cart.id, "SKU-1", 5, None)
    world.inventory.levels["SKU-1"] = 1
    assert world.service.set_quantity(cart.id, "SKU-1", 2, None).lines[0].quantity == 2
    with pytest.raises(InsufficientStock):
        world.service.set_quantity(cart.id, "SKU-1", 3, None)
    assert world.service.set_quantity(cart.id, "SKU-1", 0, None).lines == []


def test_limits(world: World) -> None:
    cart = world.service.create(None)
    world.inventory.levels["SKU-0"] = 500
    world.service.add_item(cart.id, "SKU-0", 99, None)
    with pytest.raises(ValidationFailed) as too_many:
        world.service.add_item(cart.id, "SKU-0", 1, None)
    assert too_many.value.code == "quantity_limit"
    for i in range(1, MAX_LINES):
        world.service.add_item(cart.id, f"SKU-{i}", 1, None)
    with pytest.raises(ValidationFailed) as full:
        world.service.add_item(cart.id, f"SKU-{MAX_LINES}", 1, None)
    assert full.value.code == "too_many_lines"
    assert len(world.service.get(cart.id).lines) == MAX_LINES


def test_unknown_sku_and_insufficient_stock_name_the_sku(world: World) -> None:
    cart = world.service.create(None)
    with pytest.raises(ValidationFailed) as unknown:
        world.service.add_item(cart.id, "NOPE", 1, None)
    assert unknown.value.code == "unknown_sku"
    with pytest.raises(InsufficientStock) as short:
        world.service.add_item(cart.id, "SKU-3", 11, None)
    assert short.value.errors == [
        {"sku": "SKU-3", "code": "insufficient_stock", "available": 10, "message": "11 requested, 10 available"}
    ]
    assert world.service.get(cart.id).version == 1  # nothing changed


def test_an_expired_cart_reads_as_gone_before_ttl_deletes_it(world: World) -> None:
    cart = world.service.create(None)
    world.now = NOW + timedelta(hours=71)
    world.service.add_item(cart.id, "SKU-1", 1, None)  # touching it extends its life
    world.now = NOW + timedelta(hours=71 + 72)
    with pytest.raises(NotFound):
        world.service.get(cart.id)
    with pytest.raises(NotFound):
        world.service.add_item(cart.id, "SKU-1", 1, None)
    assert cart.id in world.carts.items  # still stored: TTL deletion is lazy


def test_malformed_ids_are_not_found_without_a_lookup(world: World) -> None:
    for bad in ("", "x", "../../etc", "a" * 33, "é" * 32):
        with pytest.raises(NotFound):
            world.service.get(bad)


def test_if_match_makes_a_stale_writer_fail_with_412(world: World) -> None:
    cart = world.service.create(None)
    world.service.add_item(cart.id, "SKU-1", 1, if_match=1)
    with pytest.raises(VersionConflict):
        world.service.add_item(cart.id, "SKU-2", 1, if_match=1)
    world.carts.conflicts_to_inject = 1  # lost the race between read and write
    with pytest.raises(VersionConflict):
        world.service.add_item(cart.id, "SKU-2", 1, if_match=2)


@pytest.mark.slow("race")
def test_without_if_match_lost_races_are_retried_and_then_reported_busy(world: World) -> None:
    cart = world.service.create(None)
    world.carts.conflicts_to_inject = 3
    assert world.service.add_item(cart.id, "SKU-1", 1, None).lines[0].quantity == 1
    world.carts.conflicts_to_inject = 100
    with pytest.raises(Busy):
        world.service.add_item(cart.id, "SKU-2", 1, None)
    assert [line.sku for line in world.service.get(cart.id).lines] == ["SKU-1"]


def test_unsupported_currency_and_currency_mismatch(world: World) -> None:
    with pytest.raises(ValidationFailed) as unsupported:
        world.service.create("USD")
    assert unsupported.value.code == "unsupported_currency"
    multi = World(shop_config=shop(currencies=["EUR", "USD"]))
    cart = multi.service.create("USD")
    with pytest.raises(ValidationFailed) as mismatch:
        multi.service.add_item(cart.id, "SKU-1", 1, None)  # priced in EUR
    assert mismatch.value.code == "currency_mismatch"


def test_free_shipping_threshold(world: World) -> None:
    cart = world.service.create(None)
    world.service.add_item(cart.id, "SKU-48", 1, None)  # 49.00
    assert world.service.choose_shipping(cart.id, "DE", "standard", None).shipping.price.amount == 495
    cart = world.service.add_item(cart.id, "SKU-0", 1, None)  # 50.00 in all
    assert cart.totals.subtotal.amount == 5000
    assert cart.shipping.price.amount == 0 and cart.totals.shipping.amount == 0


def test_shipping_choice_is_validated(world: World) -> None:
    cart = world.service.create(None)
    for country, method, code in [
        ("US", "standard", "unsupported_country"),
        ("DE", "teleport", "unsupported_shipping_method"),
    ]:
        with pytest.raises(ValidationFailed) as error:
            world.service.choose_shipping(cart.id, country, method, None)
        assert error.value.code == code
    assert world.service.get(cart.id).shipping is None


def test_tax_exclusive_mode_adds_tax_to_the_total() -> None:
    world = World(shop_config=shop(prices_include_tax=False))
    cart = world.service.create(None)
    world.service.add_item(cart.id, "SKU-9", 1, None)  # 10.00
    cart = world.service.choose_shipping(cart.id, "NL", "express", None)  # 18.90, NL 21 %
    assert cart.totals.tax_included is False
    assert (cart.totals.subtotal.amount, cart.totals.shipping.amount) == (1000, 1890)
    assert cart.totals.tax.amount == 607  # 28.90 * 21 % = 6.069 -> 6.07
    assert cart.totals.total.amount == 1000 + 1890 + 607


def test_price_and_stock_changes_show_as_warnings_and_new_totals(world: World) -> None:
    cart = world.service.create(None)
    world.service.add_item(cart.id, "SKU-1", 3, None)
    world.catalog.variants["SKU-1"] = world.catalog.variants["SKU-1"].model_copy(
        update={"price": Money(amount=250, currency="EUR")}
    )
    world.inventory.levels["SKU-1"] = 2
    cart = world.service.get(cart.id)
    assert {w.code for w in cart.warnings} == {"price_changed", "insufficient_stock"}
    assert cart.lines[0].unit_price.amount == 250 and cart.totals.subtotal.amount == 750
    del world.catalog.variants["SKU-1"]
    cart = world.service.get(cart.id)
    assert [w.code for w in cart.warnings] == ["product_unavailable"] and cart.lines == []


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(sorted(CURRENCY_EXPONENTS)),
    st.booleans(),
    st.lists(st.tuples(st.integers(0, 59), st.integers(1, 10)), min_size=1, max_size=12),
    st.sampled_from([None, ("DE", "standard"), ("DE", "express"), ("NL", "standard"), ("FR", "express")]),
)
def test_any_cart_in_any_currency_and_tax_mode_adds_up(
    currency: str, included: bool, adds: list[tuple[int, int]], shipping: tuple[str, str] | None
) -> None:
    config = json.loads(DEFAULT_FILE.read_text())
    for country in config["countries"].values():
        for method in country["methods"]:
            method["price"]["currency"] = currency
            if method.get("free_over"):
                method["free_over"]["currency"] = currency
    config.update(currency=currency, currencies=[currency], prices_include_tax=included)
    world = World(currency=currency, shop_config=ShopConfig.model_validate(config))
    cart = world.service.create(None)
    for index, quantity in adds:
        world.inventory.levels[f"SKU-{index}"] = 99
        cart = world.service.add_item(cart.id, f"SKU-{index}", quantity, None)
    if shipping:
        cart = world.service.choose_shipping(cart.id, *shipping, None)
    for line in cart.lines:
        assert line.line_total.amount == line.unit_price.amount * line.quantity
    t = cart.totals
    assert t.subtotal.amount == sum(line.line_total.amount for line in cart.lines)
    assert t.shipping.amount == (cart.shipping.price.amount if cart.shipping else 0)
    assert t.total.amount == t.subtotal.amount + t.shipping.amount + (0 if included else t.tax.amount)
    assert {t.subtotal.currency, t.shipping.currency, t.tax.currency, t.total.currency} == {currency}
