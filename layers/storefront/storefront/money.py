"""Money: an integer amount of a currency's minor unit, and the currency's ISO 4217 code.

Never a float. The exponent says how many minor units make a major one (EUR 2, JPY 0, KWD 3).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

# ISO 4217 minor-unit exponents of the currencies the shop can sell in.
CURRENCY_EXPONENTS: dict[str, int] = {
    "EUR": 2,
    "USD": 2,
    "GBP": 2,
    "CHF": 2,
    "SEK": 2,
    "DKK": 2,
    "NOK": 2,
    "PLN": 2,
    "CZK": 2,
    "CAD": 2,
    "AUD": 2,
    "JPY": 0,
    "KRW": 0,
    "KWD": 3,
    "BHD": 3,
    "JOD": 3,
}

MAX_AMOUNT = 10**15  # far above any order, far below float and DynamoDB number limits


class CurrencyMismatch(ValueError):
    pass


class Money(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: Annotated[int, Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT, strict=True)]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if value not in CURRENCY_EXPONENTS:
            raise ValueError(f"unsupported currency {value!r}")
        return value

    @property
    def exponent(self) -> int:
        return CURRENCY_EXPONENTS[self.currency]

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def times(self, quantity: int) -> Money:
        return Money(amount=self.amount * quantity, currency=self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot mix {self.currency} and {other.currency}")

    def __str__(self) -> str:
        sign = "-" if self.amount < 0 else ""
        major, minor = divmod(abs(self.amount), 10**self.exponent)
        return (
            f"{sign}{major}.{minor:0{self.exponent}d} {self.currency}"
            if self.exponent
            else f"{sign}{major} {self.currency}"
        )
