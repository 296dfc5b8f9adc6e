"""Customer emails' content: both languages, the order's real figures in the shop's locale, and hostile input
(markup, bidi overrides, control characters, very long values) shown as harmless text or refused."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from babel.numbers import get_currency_precision
from storefront.money import CURRENCY_EXPONENTS, Money
from storefront.notifications.addresses import deliverable
from storefront.notifications.content import TEMPLATES, EmailContent, languages, printable, web_link
from storefront.notifications.models import EMAIL_FOR_EVENT, EmailKind, MailableOrder
from storefront.shop import ShopConfig, load_shop_config

ORDER_ID = "Dm0oRdEr7kJ3hG8fD5aS2nB6vC1xZ9qW"
TRACKING_NUMBER = "LC402871599316"
TRACKING_URL = f"https://carrier.example/track/{TRACKING_NUMBER}"


def order(**changes: Any) -> MailableOrder:
    """Three linen shirts by express to Berlin: 177.00 + 14.90 shipping = 191.90, of which 30.64 is 19 % VAT."""
    data: dict[str, Any] = {
        "id": ORDER_ID,
        "status": "shipped",
        "email": "ada@example.com",
        "lines": [
            {
                "sku": "LINEN-SHIRT-M",
                "product_id": "linen-shirt",
                "title": "Linen shirt – Medium",
                "quantity": 3,
                "unit_price": {"amount": 5900, "currency": "EUR"},
                "line_total": {"amount": 17700, "currency": "EUR"},
            }
        ],
        "totals": {
            "subtotal": {"amount": 17700, "currency": "EUR"},
            "shipping": {"amount": 1490, "currency": "EUR"},
            "tax": {"amount": 3064, "currency": "EUR"},
            "total": {"amount": 19190, "currency": "EUR"},
            "tax_included": True,
            "tax_rate_bp": 1900,
        },
        "shipping_address": {
            "name": "Ada Lovelace",
            "line1": "Unter den Linden 1",
            "city": "Berlin",
            "postal_code": "10117",
            "country": "DE",
        },
        "shipping": {
            "country": "DE",
            "method": "express",
            "price": {"amount": 1490, "currency": "EUR"},
            "estimated_delivery": {"earliest": "2026-12-01", "latest": "2026-12-03"},
        },
        "payment": {"status": "succeeded"},
        "fulfilment": {
            "status": "in_transit",
            "carrier": "local",
            "tracking_number": TRACKING_NUMBER,
            "tracking_url": TRACKING_URL,
        },
        "refunds": [
            {
                "amount": {"amount": 4200, "currency": "EUR"},
                "status": "succeeded",
                "created_at": "2026-12-05T10:00:00+00:00",
            }
        ],
        "created_at": "2026-11-30T10:00:00+00:00",
    }
    data.update(changes)
    return MailableOrder.model_validate(data)


def plain_spaces(text: str) -> str:
    """CLDR writes dates and amounts with thin and no-break spaces; compare those with ordinary ones."""
    return re.sub("[\u00a0\u2009\u202f]", " ", text)


def shop(locale: str) -> ShopConfig:
    return load_shop_config().model_copy(update={"locale": locale})


def render(kind: EmailKind, locale: str = "de-DE", the_order: MailableOrder | None = None) -> tuple[str, str, str]:
    return EmailContent(shop(locale)).render(kind, the_order or order())


# ---------------------------------------------------------------- templates and languages


def test_every_email_kind_has_both_parts_in_every_language() -> None:
    assert {"en", "de"} <= languages()
    expected = {f"{kind}.{part}" for kind in EmailKind for part in ("txt", "html")}
    for language in languages():
        files = {p.name for p in (TEMPLATES / language).iterdir() if not p.name.startswith("_")}
        assert files == expected, f"{language}: {sorted(files ^ expected)}"
    assert set(EMAIL_FOR_EVENT.values()) == set(EmailKind), "an email kind no event sends"


@pytest.mark.parametrize("locale", ["de-DE", "en-GB"])
@pytest.mark.parametrize("kind", list(EmailKind))
def test_each_kind_renders_with_a_one_line_subject_naming_the_order(kind: EmailKind, locale: str) -> None:
    subject, text, html = render(kind, locale)
    assert ORDER_ID in subject and "\n" not in subject and "\r" not in subject and len(subject) <= 200
    assert ORDER_ID in text and ORDER_ID in html
    assert html.startswith("<!DOCTYPE html>") and f'<html lang="{locale[:2]}">' in html
    assert f"<title>{subject}</title>" in html
    # The shop's contact, in every mail; nothing remote to load (no images, no tracking pixels, no scripts).
    assert "help@storefront.example" in text and 'href="mailto:help@storefront.example"' in html
    assert not re.search(r"<(img|script|iframe|link|object)\b", html, re.I)
    assert "src=" not in html and "url(" not in html


def test_the_confirmation_in_german_has_the_orders_real_figures() -> None:
    subject, text, html = render(EmailKind.ORDER_CONFIRMED, "de-DE")
    assert subject == f"Ihre Bestellung {ORDER_ID} ist bestätigt"
    nbsp = "\u00a0"  # CLDR puts a no-break space between amount and symbol
    for part in (text, html):
        assert "3 × Linen shirt – Medium" in part
        assert f"177,00{nbsp}€" in part  # line total and subtotal
        assert f"14,90{nbsp}€" in part and "Express (next business day)" in part
        assert f"191,90{nbsp}€" in part and f"19{nbsp}% MwSt." in part and f"30,64{nbsp}€" in part
        assert "Di., 1. – Do., 3. Dez. 2026" in plain_spaces(part)  # the delivery estimate
        assert "Unter den Linden 1" in part and "Deutschland" in part
    assert f"Gesamt: 191,90{nbsp}€ (inkl. 19{nbsp}% MwSt.: 30,64{nbsp}€)" in text


def test_the_confirmation_in_english_has_the_orders_real_figures() -> None:
    subject, text, html = render(EmailKind.ORDER_CONFIRMED, "en-GB")
    assert subject == f"Your order {ORDER_ID} is confirmed"
    assert "Total: €191.90 (including 19% VAT: €30.64)" in text
    for part in (text, html):
        assert "€177.00" in part and "€14.90" in part and "Tue, 1 Dec – Thu, 3 Dec 2026" in plain_spaces(part)
        assert "Germany" in part


def test_prices_without_tax_add_the_tax_line() -> None:
    net = order(
        totals={
            "subtotal": {"amount": 17700, "currency": "EUR"},
            "shipping": {"amount": 1490, "currency": "EUR"},
            "tax": {"amount": 3646, "currency": "EUR"},
            "total": {"amount": 22836, "currency": "EUR"},
            "tax_included": False,
            "tax_rate_bp": 1900,
        }
    )
    _, text, _ = render(EmailKind.ORDER_CONFIRMED, "en-GB", net)
    assert "VAT (19%): €36.46\nTotal: €228.36" in text


@pytest.mark.parametrize("locale", ["de-DE", "en-GB"])
def test_the_shipping_mail_has_the_tracking_number_and_link(locale: str) -> None:
    _, text, html = render(EmailKind.ORDER_SHIPPED, locale)
    assert TRACKING_NUMBER in text and TRACKING_URL in text
    assert f"<strong>{TRACKING_NUMBER}</strong>" in html and f'<a href="{TRACKING_URL}"' in html


def test_a_tracking_link_that_is_not_http_is_not_linked() -> None:
    hostile = order(
        fulfilment={
            "status": "in_transit",
            "carrier": "local",
            "tracking_number": TRACKING_NUMBER,
            "tracking_url": "javascript:alert(document.cookie)",
        }
    )
    _, text, html = render(EmailKind.ORDER_SHIPPED, "en-GB", hostile)
    assert "javascript" not in text and "javascript" not in html
    assert TRACKING_NUMBER in text  # the number still helps
    assert web_link("https://carrier.example/t?n=1") == "https://carrier.example/t?n=1"
    for url in ("data:text/html,x", "https://x.example/a b", 'https://x.example/"onmouseover=', None, ""):
        assert web_link(url) is None


@pytest.mark.parametrize(
    ("locale", "headline"),
    [("de-DE", "wir haben Ihnen 42,00\u00a0€ des Bestellwerts"), ("en-GB", "We have refunded €42.00 of your order's")],
)
def test_the_refund_mail_has_the_refunded_amount(locale: str, headline: str) -> None:
    _, text, html = render(EmailKind.ORDER_REFUNDED, locale)
    assert headline in text  # the headline sums the refunds that succeeded, not only each refund's own line
    assert (
        headline.replace("€42.00", "<strong>€42.00</strong>").replace("42,00\u00a0€", "<strong>42,00\u00a0€</strong>")
        in html
    )


def test_the_refund_mail_counts_only_refunds_that_succeeded() -> None:
    refunds = [
        {"amount": {"amount": 1000, "currency": "EUR"}, "status": "succeeded", "created_at": "2026-12-05T10:00"},
        {"amount": {"amount": 500, "currency": "EUR"}, "status": "succeeded", "created_at": "2026-12-06T10:00"},
        {"amount": {"amount": 900, "currency": "EUR"}, "status": "pending", "created_at": "2026-12-07T10:00"},
        {"amount": {"amount": 700, "currency": "EUR"}, "status": "failed", "created_at": "2026-12-07T11:00"},
    ]
    _, text, _ = render(EmailKind.ORDER_REFUNDED, "en-GB", order(refunds=refunds))
    assert "We have refunded €15.00 of your order's €191.90" in text


def test_a_cancelled_paid_order_says_it_is_refunded_an_unpaid_one_that_nothing_was_charged() -> None:
    _, refunded, _ = render(EmailKind.ORDER_CANCELLED, "en-GB")
    assert "We have refunded €42.00" in refunded
    _, unpaid, _ = render(EmailKind.ORDER_CANCELLED, "en-GB", order(payment=None, refunds=[]))
    assert "You have not been charged." in unpaid


def test_a_decline_says_which_attempt() -> None:
    declined = order(
        status="awaiting_payment",
        payment={"status": "declined", "attempts": 2, "last_error": {"code": "card_declined", "message": "x"}},
    )
    subject, text, _ = render(EmailKind.PAYMENT_DECLINED, "de-DE", declined)
    assert subject == f"Ihre Zahlung für Bestellung {ORDER_ID} wurde abgelehnt"
    assert "(2. Versuch)" in text and "Ihnen wurde nichts berechnet." in text


def test_a_locale_without_templates_writes_english_with_its_own_formats() -> None:
    content = EmailContent(shop("fr-FR"))
    assert content.language == "en"
    _, text, _ = content.render(EmailKind.ORDER_CONFIRMED, order())
    assert "Thank you for your order" in text and "191,90\u00a0€" in text and "Allemagne" in text


# ---------------------------------------------------------------- money per currency and locale


def test_cldr_agrees_with_our_currency_exponents() -> None:
    """Babel formats with CLDR's digits per currency; they must be ISO 4217's, or a minor unit would be lost."""
    assert {c: get_currency_precision(c) for c in CURRENCY_EXPONENTS} == CURRENCY_EXPONENTS


@pytest.mark.parametrize(
    ("money", "locale", "expected"),
    [
        (Money(amount=123456, currency="EUR"), "de-DE", "1.234,56\u00a0€"),
        (Money(amount=123456, currency="EUR"), "en-GB", "€1,234.56"),
        (Money(amount=1234, currency="JPY"), "de-DE", "1.234\u00a0¥"),
        (Money(amount=1234, currency="JPY"), "en-US", "¥1,234"),
        (Money(amount=1234567, currency="KWD"), "de-DE", "1.234,567\u00a0KWD"),
        (Money(amount=1234567, currency="KWD"), "en-GB", "KWD1,234.567"),  # CLDR: no space after a code
        (Money(amount=5, currency="EUR"), "de-DE", "0,05\u00a0€"),
    ],
)
def test_money_is_written_the_locales_way_with_the_currencys_exponent(money: Money, locale: str, expected: str) -> None:
    assert EmailContent(shop(locale)).money(money) == expected


# ---------------------------------------------------------------- hostile input


HOSTILE_NAME = "Ada <script>alert('x')</script> \u202eevil\u202c \u2066iso\u2069 bell\x07 nul\x00 new\r\nline"


@pytest.mark.parametrize("locale", ["de-DE", "en-GB"])
@pytest.mark.parametrize("kind", [EmailKind.ORDER_CONFIRMED, EmailKind.ORDER_SHIPPED])
def test_hostile_names_and_addresses_are_shown_as_harmless_text(kind: EmailKind, locale: str) -> None:
    hostile = order().model_copy(
        update={
            "shipping_address": order().shipping_address.model_copy(
                update={
                    "name": HOSTILE_NAME,
                    "line1": "x" * 5000,
                    "line2": "</td></tr></table><a href='https://evil.example'>win</a>",
                    "city": "<img src=https://evil.example/pixel.gif>",
                }
            )
        }
    )
    subject, text, html = render(kind, locale, hostile)
    for part in (subject, text, html):
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]", part), "a control or bidi char"
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img" not in html and "&lt;img src=https://evil.example/pixel.gif&gt;" in html
    assert "<a href='https://evil.example'>" not in html and 'href="https://evil.example' not in html
    assert "Ada <script>alert('x')</script> evil iso bell nul new line" in text  # readable, inert in text/plain
    assert "x" * 5000 not in text and "x" * 299 + "…" in text  # a very long value is cut, visibly
    assert max(len(line) for line in text.splitlines()) < 400
    assert "\n" not in subject


def test_printable_removes_line_breaks_controls_and_bidi_overrides() -> None:
    assert printable("Totally\r\nBcc: victim@example.com") == "Totally Bcc: victim@example.com"
    assert printable("\u202eabc\u202c") == "abc"
    assert printable("e\u0301") == "é"  # NFC: one character, as mail clients expect
    assert printable(None) == "" and printable(42) == 42


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("ada@example.com", "ada@example.com"),
        ("Ada.Lovelace+shop@Example.COM", "Ada.Lovelace+shop@example.com"),
        ("jörg@bücher.example", None),  # a non-ASCII local part: SES cannot send to it
        ("joerg@bücher.example", "joerg@xn--bcher-kva.example"),
        ("a,b@example.com", None),  # another recipient
        ("victim@example.com>,<other@example.com", None),
        ('"x"@example.com', None),
        ("ada@example.com\r\nBcc: other@example.com", None),  # header injection
        ("ada\u202e@example.com", None),
        ("ada@-example.com", None),
        ("ada@example", None),
        ("ada@127.0.0.1", None),
        (".ada@example.com", None),
        ("a" * 65 + "@example.com", None),
        ("ada@" + "a" * 250 + ".com", None),
    ],
)
def test_only_plain_mailboxes_are_deliverable(address: str, expected: str | None) -> None:
    assert deliverable(address) == expected


def test_the_shops_own_configuration_is_refused_with_unsafe_text() -> None:
    data = load_shop_config().model_dump(by_alias=True)
    for field, value in [("name", "Shop\r\nBcc: x@example.com"), ("name", "\u202epohS")]:
        with pytest.raises(ValueError, match="control characters and bidirectional formatting characters"):
            ShopConfig.model_validate({**data, field: value})
    with pytest.raises(ValueError, match="is not a plain email address"):
        ShopConfig.model_validate({**data, "support": {"email": "help@example.com, other@example.com"}})


def test_templates_live_in_the_layer() -> None:
    assert Path(TEMPLATES).is_relative_to(Path(__file__).resolve().parents[2] / "layers" / "storefront")
