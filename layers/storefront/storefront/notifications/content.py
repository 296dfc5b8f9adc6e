"""Email content: Jinja2 templates in the shop's language, amounts and dates in the shop's locale (Babel, CLDR).

templates/<language>/<kind>.txt is the plain-text part and sets the subject (`{% set subject %}`);
<kind>.html is the HTML part (autoescaped: names and addresses are shopper input). A shop whose locale's
language has no templates writes English, with its own locale's amounts and dates.

Every value a template prints passes `printable` first (Jinja's `finalize`), whatever the template author
remembered: control characters and bidirectional overrides (U+202E "RTL override" and its kin, which can make
a name read backwards or hide text) are removed and over-long values cut, in both parts; the HTML part is
escaped after that. So `<script>` is shown as text, never run, and nothing reaches a header it was not meant
for (the subject is one line, built from the order number and the shop's name only).

Only the notifications function imports this module: Jinja2 and Babel add some 60-160 ms to its cold start
(docs/benchmarks.md, measured on a loaded machine), and nothing to any other function's (a test checks).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel import Locale
from babel.dates import format_date, format_interval
from babel.numbers import format_currency, format_percent
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from storefront.cart.delivery import DeliveryWindow
from storefront.money import Money
from storefront.notifications.models import EmailKind, MailableOrder
from storefront.shop import ShopConfig

TEMPLATES = Path(__file__).with_name("templates")
FALLBACK_LANGUAGE = "en"
MAX_VALUE_LENGTH = 300  # longer than any field the shop accepts (an address line: 200); a cut shows with "…"
MAX_SUBJECT_LENGTH = 200
# Cc (controls, line breaks included), Unicode's line and paragraph separators, and the bidirectional
# formatting characters: LRM/RLM, embeddings and overrides (U+202A-U+202E), isolates (U+2066-U+2069).
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069]+")
_WEB_LINK = re.compile(r"^https?://[^\s<>\"'`\\]+$")


def printable(value: Any) -> Any:
    """What a template prints: text without control or bidi-formatting characters, at most MAX_VALUE_LENGTH long."""
    if value is None:
        return ""
    if isinstance(value, Markup) or not isinstance(value, str):
        return value  # Markup is the templates' own; numbers are numbers
    text = unicodedata.normalize("NFC", _UNPRINTABLE.sub(" ", value))
    text = re.sub(r" {2,}", " ", text).strip(" ")  # no-break spaces stay: CLDR puts them in amounts
    return text if len(text) <= MAX_VALUE_LENGTH else text[: MAX_VALUE_LENGTH - 1] + "…"


def languages() -> frozenset[str]:
    """The languages that have templates."""
    return frozenset(path.name for path in TEMPLATES.iterdir() if path.is_dir())


class EmailContent:
    """Renders an email kind for an order, in the shop's language and locale."""

    def __init__(self, shop: ShopConfig, templates: Path = TEMPLATES) -> None:
        self._shop = shop
        self._locale = Locale.parse(shop.locale, sep="-")
        language = self._locale.language if (templates / self._locale.language).is_dir() else FALLBACK_LANGUAGE
        self.language = language
        self._env = Environment(
            loader=FileSystemLoader(templates / language),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
            undefined=StrictUndefined,  # a misspelt field fails the tests instead of printing nothing
            finalize=printable,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self._env.filters.update(
            money=self.money,
            day=self.day,
            window=self.window,
            percent=self.percent,
            country=self.country,
            web_link=web_link,
        )
        self._env.globals.update(shop=shop, method_name=self.method_name, language=language)

    def render(self, kind: EmailKind, order: MailableOrder) -> tuple[str, str, str]:
        """(subject, text, html) of `kind` for `order`."""
        context = {"order": order}
        text = self._env.get_template(f"{kind}.txt").make_module(context)
        # The template's {% set subject %} export: TemplateModule holds its exports as attributes the stubs cannot list.
        exported = text.subject  # type: ignore[attr-defined]
        subject = " ".join(str(exported).split())[:MAX_SUBJECT_LENGTH]  # one line, whatever the template says
        html = self._env.get_template(f"{kind}.html").render(context, subject=subject)
        return subject, str(text), html

    # ---------------------------------------------------------------- formats of the shop's locale

    def money(self, value: Money) -> str:
        # CLDR's digits per currency equal ISO 4217's exponents for every currency the shop can sell in
        # (tests/unit/test_notification_content.py checks), so the minor unit is never rounded away.
        return format_currency(Decimal(value.amount).scaleb(-value.exponent), value.currency, locale=self._locale)

    def day(self, value: date | datetime) -> str:
        if isinstance(value, datetime):
            value = value.astimezone(self._shop.zone).date()
        return format_date(value, "long", locale=self._locale)

    def window(self, value: DeliveryWindow) -> str:
        if value.earliest == value.latest:
            return format_date(value.earliest, "full", locale=self._locale)
        return format_interval(value.earliest, value.latest, "yMMMEd", locale=self._locale)

    def percent(self, basis_points: int) -> str:
        return format_percent(Decimal(basis_points) / 10_000, locale=self._locale)

    def country(self, code: str) -> str:
        name: str = self._locale.territories.get(code, code)
        return name

    def method_name(self, country: str, method: str) -> str:
        """The shipping method's name in shop.json (the id, should the method have been removed since)."""
        methods = self._shop.countries[country].methods if country in self._shop.countries else []
        return next((m.name for m in methods if m.id == method), method)


def web_link(url: str | None) -> str | None:
    """An http(s) URL to link to, or None (then the template shows no link): never javascript:, data: or worse."""
    return url if url and _WEB_LINK.fullmatch(url) else None
