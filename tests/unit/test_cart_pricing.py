"""Cart arithmetic: totals add up to the minor unit, for any lines, currency, tax rate and tax mode."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from storefront.cart.pricing import divide_rounding_half_away_from_zero, tax_of, totals
from storefront.money import CURRENCY_EXPONENTS, CurrencyMismatch, Money

currencies = st.sampled_from(sorted(CURRENCY_EXPONENTS))
rates = st.integers(0, 10_000)


@st.composite
def carts(draw: st.DrawFn) -> tuple[str, list[tuple[int, int]], int]:
    currency = draw(currencies)
    lines = draw(st.lists(st.tuples(st.integers(0, 10**7), st.integers(1, 99)), max_size=50))
    shipping = draw(st.integers(0, 10**5))
    return currency, lines, shipping


@given(carts(), rates, st.booleans())
def test_totals_add_up_to_the_minor_unit(
    cart: tuple[str, list[tuple[int, int]], int], rate: int, included: bool
) -> None:
    currency, lines, shipping_amount = cart
    line_totals = [Money(amount=unit, currency=currency).times(quantity) for unit, quantity in lines]
    result = totals(line_totals, Money(amount=shipping_amount, currency=currency), rate, included)
    assert result.subtotal.amount == sum(unit * quantity for unit, quantity in lines)  # exact, no drift
    if included:
        assert result.total.amount == result.subtotal.amount + shipping_amount
    else:
        assert result.total.amount == result.subtotal.amount + shipping_amount + result.tax.amount
    assert {m.currency for m in (result.subtotal, result.shipping, result.tax, result.total)} == {currency}
    # tax is the rate applied once, rounded once: within half a minor unit of the exact value
    taxable = result.subtotal.amount + shipping_amount
    exact = taxable * rate / (10_000 + rate) if included else taxable * rate / 10_000
    assert abs(result.tax.amount - exact) <= 0.5 + 1e-9
    assert 0 <= result.tax.amount <= taxable


@given(currencies, st.integers(0, 10**9), st.integers(1, 99))
def test_a_line_total_is_exactly_unit_price_times_quantity(currency: str, unit: int, quantity: int) -> None:
    price = Money(amount=unit, currency=currency)
    assert price.times(quantity).amount == unit * quantity
    assert sum([price] * quantity, Money(amount=0, currency=currency)) == price.times(quantity)


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [
        (5, 10, 1),
        (4, 10, 0),
        (15, 10, 2),
        (25, 10, 3),
        (-5, 10, -1),
        (-15, 10, -2),
        (0, 7, 0),
        (10, 4, 3),
    ],
)
def test_rounding_is_half_away_from_zero(numerator: int, denominator: int, expected: int) -> None:
    assert divide_rounding_half_away_from_zero(numerator, denominator) == expected


@pytest.mark.parametrize(
    ("gross", "rate", "included", "tax"),
    [
        (11900, 1900, True, 1900),  # 119.00 incl. 19 % -> 19.00
        (10000, 1900, False, 1900),  # 100.00 excl. 19 % -> 19.00
        (1, 1900, False, 0),  # 0.19 cent rounds to 0
        (3, 1900, False, 1),  # 0.57 cent rounds to 1
        (1000, 770, True, 71),  # 7.7 %: 10.00 - 9.285... -> 0.71
        (999, 1000, True, 91),  # JPY-like integer amounts
    ],
)
def test_tax_examples(gross: int, rate: int, included: bool, tax: int) -> None:
    assert tax_of(Money(amount=gross, currency="EUR"), rate, included).amount == tax


def test_mixing_currencies_in_a_cart_is_refused() -> None:
    with pytest.raises(CurrencyMismatch):
        totals(
            [Money(amount=1, currency="EUR"), Money(amount=1, currency="USD")],
            Money(amount=0, currency="EUR"),
            1900,
            True,
        )
