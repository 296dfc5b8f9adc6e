from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from storefront.money import CURRENCY_EXPONENTS, CurrencyMismatch, Money


@pytest.mark.parametrize(("currency", "exponent"), [("EUR", 2), ("USD", 2), ("GBP", 2), ("JPY", 0), ("KWD", 3)])
def test_iso_4217_exponents(currency: str, exponent: int) -> None:
    assert Money(amount=1, currency=currency).exponent == exponent


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(amount=5900, currency="EUR"), "59.00 EUR"),
        (Money(amount=-5, currency="USD"), "-0.05 USD"),
        (Money(amount=1500, currency="JPY"), "1500 JPY"),
        (Money(amount=1234, currency="KWD"), "1.234 KWD"),
    ],
)
def test_display(money: Money, text: str) -> None:
    assert str(money) == text


@pytest.mark.parametrize(
    "bad",
    [
        {"amount": 1.5, "currency": "EUR"},  # never a float
        {"amount": "100", "currency": "EUR"},  # never a string either
        {"amount": 100, "currency": "eur"},
        {"amount": 100, "currency": "XXX"},
        {"amount": 10**16, "currency": "EUR"},
        {"amount": 100, "currency": "EUR", "extra": 1},
    ],
)
def test_rejects_what_is_not_money(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Money.model_validate(bad)


def test_mixing_currencies_is_refused() -> None:
    with pytest.raises(CurrencyMismatch):
        _ = Money(amount=1, currency="EUR") + Money(amount=1, currency="USD")
    with pytest.raises(CurrencyMismatch):
        _ = Money(amount=1, currency="EUR") - Money(amount=1, currency="GBP")


@given(st.sampled_from(sorted(CURRENCY_EXPONENTS)), st.integers(0, 10**9), st.integers(0, 10**9), st.integers(1, 99))
def test_arithmetic_is_exact_integer_arithmetic(currency: str, a: int, b: int, quantity: int) -> None:
    x, y = Money(amount=a, currency=currency), Money(amount=b, currency=currency)
    assert (x + y).amount == a + b
    assert (x + y - y) == x
    assert x.times(quantity).amount == a * quantity
    assert Money.model_validate_json(x.model_dump_json()) == x
