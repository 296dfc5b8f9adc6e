"""Cart arithmetic: line totals, shipping, tax and the total, in integer minor units. Pure functions.

The one rounding rule: amounts are rounded once, to the currency's minor unit, half away from zero
("commercial rounding"), and only where a division happens — the tax. Line totals are exact
(unit price × quantity), the subtotal is their exact sum, and so the figures always add up:
  prices include tax:   total = subtotal + shipping,        tax = the part of the total that is tax
  prices exclude tax:   total = subtotal + shipping + tax
Tax is computed on the whole taxable amount (goods and shipping) at the destination country's rate,
not per line, so it never drifts by a cent per line.
"""

from __future__ import annotations

from pydantic import BaseModel

from storefront.money import Money

BASIS_POINTS = 10_000


def divide_rounding_half_away_from_zero(numerator: int, denominator: int) -> int:
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    magnitude = (2 * abs(numerator) + denominator) // (2 * denominator)
    return magnitude if numerator >= 0 else -magnitude


def tax_of(taxable: Money, rate_bp: int, prices_include_tax: bool) -> Money:
    if prices_include_tax:
        net = divide_rounding_half_away_from_zero(taxable.amount * BASIS_POINTS, BASIS_POINTS + rate_bp)
        return Money(amount=taxable.amount - net, currency=taxable.currency)
    return Money(
        amount=divide_rounding_half_away_from_zero(taxable.amount * rate_bp, BASIS_POINTS), currency=taxable.currency
    )


class Totals(BaseModel):
    subtotal: Money
    shipping: Money
    tax: Money
    total: Money
    tax_included: bool  # true: prices and total include the tax shown; false: tax is added to the total
    tax_rate_bp: int  # the destination's rate used, in basis points (1900 = 19 %)


def totals(line_totals: list[Money], shipping: Money, rate_bp: int, prices_include_tax: bool) -> Totals:
    subtotal = Money(amount=0, currency=shipping.currency)
    for line_total in line_totals:
        subtotal = subtotal + line_total  # Money refuses to mix currencies
    taxable = subtotal + shipping
    tax = tax_of(taxable, rate_bp, prices_include_tax)
    total = taxable if prices_include_tax else taxable + tax
    return Totals(
        subtotal=subtotal, shipping=shipping, tax=tax, total=total, tax_included=prices_include_tax, tax_rate_bp=rate_bp
    )
