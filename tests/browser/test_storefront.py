"""A shopper in a real browser (Debian's chromium) on the demo storefront (web/), served by the local stack:
one purchase all the way to delivered, one declined payment on a phone-sized screen, one checkout that loses
the last item in stock to another shopper, and a rejected order. Every page must stay free of console errors.

Screenshots of each step land in tests/browser/screenshots/ (gitignored).
"""

from __future__ import annotations

import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import boto3
import httpx
import pytest
from playwright.sync_api import Locator, Page, Request, Route, expect
from storefront.orders.models import OrderStatus, StoredOrder
from storefront.orders.repository import OrderRepository
from storefront_browser import WEB, Console, Stack, override_config, screenshot, static_site

pytestmark = pytest.mark.slow("browser")

ADDRESS = {"Full name": "Ada Lovelace", "Address": "Unter den Linden 1", "Postal code": "10117", "City": "Berlin"}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
DELIVERY_SECONDS = 30  # paid -> fulfilling -> shipped -> delivered, one carrier step a second, plus polling
PROGRESS = ["pending", "awaiting_payment", "paid", "fulfilling", "shipped", "delivered"]


def heading(page: Page) -> Locator:
    return page.get_by_role("heading", level=1)


def status_panel(page: Page) -> Locator:
    return page.locator(".order-status")


def add_to_cart(page: Page, category: str, product: str, quantity: int, variant: str | None = None) -> None:
    page.get_by_role("navigation", name="Categories").get_by_role("link", name=category, exact=True).click()
    expect(heading(page)).to_have_text(category)
    page.get_by_role("link", name=product, exact=True).click()
    expect(heading(page)).to_have_text(product)
    if variant:
        page.get_by_role("radio", name=re.compile(f"^{variant}")).check()
    page.get_by_label("Quantity").fill(str(quantity))
    page.get_by_role("button", name="Add to cart").click()
    expect(page.get_by_role("status").filter(has_text="to your cart")).to_contain_text(f"Added {quantity} ×")


def fill_address(page: Page, email: str) -> None:
    page.get_by_label("Email").fill(email)
    for label, value in ADDRESS.items():
        page.get_by_label(label, exact=True).fill(value)


def order_id_from(page: Page) -> str:
    expect(heading(page)).to_have_text("Your order")
    match = re.search(r"#/orders/([A-Za-z0-9_-]+)$", page.url)
    assert match, page.url
    return match.group(1)


def wait_for_order(api: httpx.Client, order_id: str, *statuses: str, seconds: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        order = api.get(f"/orders/{order_id}").json()
        if order["status"] in statuses or time.monotonic() > deadline:
            assert order["status"] in statuses, order
            return order
        time.sleep(0.1)


def record_statuses(page: Page) -> None:
    """Every status the order page shows, in order, on every page load (see statuses_shown)."""
    page.add_init_script("""
        window.statusesShown = [];
        new MutationObserver((changes) => changes.forEach(({ target }) => {
          if (target.dataset.status !== window.statusesShown.at(-1)) window.statusesShown.push(target.dataset.status);
        })).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-status"] });
    """)


def statuses_shown(page: Page) -> list[str]:
    return page.evaluate("window.statusesShown")


def set_tab_hidden(page: Page, hidden: bool) -> None:
    """What the page sees when the shopper switches to another tab and back."""
    page.evaluate(
        """(hidden) => {
        Object.defineProperty(document, "hidden", { value: hidden, configurable: true });
        document.dispatchEvent(new Event("visibilitychange"));
    }""",
        hidden,
    )


def assert_fits(page: Page, width: int) -> None:
    """Nothing sticks out sideways: a phone shows the page without horizontal scrolling."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def assert_clean(console: Console) -> None:
    assert console.unexpected() == [], "\n".join(console.unexpected())


def test_a_purchase_from_the_catalog_to_delivered(
    desktop: tuple[Page, Console], stack: Stack, api: httpx.Client
) -> None:
    page, console = desktop
    record_statuses(page)
    page.goto(stack.url + "/")
    expect(heading(page)).to_have_text("All products")
    expect(page.get_by_role("button", name="Show more products")).to_be_visible()  # 24 products, 12 a page
    page.get_by_role("button", name="Show more products").click()
    expect(page.locator(".product-card")).to_have_count(24)
    expect(page.get_by_role("button", name="Show more products")).to_be_hidden()
    # Every demo product's picture, served by the local stack from the images bucket, as the edge serves it on AWS.
    pictures = page.locator(".product-card img.thumb")
    expect(pictures).to_have_count(24)
    page.wait_for_function("[...document.querySelectorAll('.product-card img.thumb')].every(i => i.complete)")
    assert (
        page.evaluate("[...document.querySelectorAll('.product-card img.thumb')].map(i => i.naturalWidth)")
        == [240] * 24
    )
    screenshot(page, "1-catalog")

    add_to_cart(page, "Shirts", "Linen shirt", 2, variant="Medium")
    expect(page.get_by_role("radio", name=re.compile("^Small"))).to_be_enabled()
    screenshot(page, "2-product")
    expect(page.locator("[data-cart-count]")).to_have_text("2")

    page.get_by_role("link", name=re.compile("^Cart")).click()
    expect(heading(page)).to_have_text("Your cart")
    expect(heading(page)).to_be_focused()  # after navigating, focus starts at the new page's heading
    page.get_by_role("button", name="Increase quantity of Linen shirt – Medium").click()
    expect(page.get_by_role("spinbutton", name="Quantity of Linen shirt – Medium")).to_have_value("3")
    expect(page.locator("[data-total=subtotal]")).to_have_text("€177.00")
    expect(page.get_by_role("button", name="Increase quantity of Linen shirt – Medium")).to_be_focused()

    # Another tab adds a mug: this page's cart version is now stale, the API answers 412, the page reloads
    # the cart and applies the shopper's change to the new version.
    cart_id = page.evaluate("localStorage.getItem('storefront.cart')")
    assert api.post(f"/carts/{cart_id}/items", json={"sku": "CERAMIC-MUG-ONE", "quantity": 1}).status_code == 200
    console.expect_http_error(412, f"/carts/{cart_id}/items/LINEN-SHIRT-M")
    page.get_by_role("button", name="Decrease quantity of Linen shirt – Medium").click()
    expect(page.get_by_role("spinbutton", name="Quantity of Linen shirt – Medium")).to_have_value("2")
    expect(page.get_by_role("spinbutton", name="Quantity of Ceramic mug – One size")).to_have_value("1")
    expect(page.locator("[data-announcer]")).to_contain_text("changed in another window")
    page.get_by_role("button", name="Remove Ceramic mug – One size").click()
    expect(page.locator(".line")).to_have_count(1)
    quantity = page.get_by_role("spinbutton", name="Quantity of Linen shirt – Medium")
    quantity.fill("3")
    quantity.press("Enter")
    expect(page.locator("[data-line-total=LINEN-SHIRT-M]")).to_have_text("€177.00")

    expect(page.get_by_label("Country")).to_have_value("DE")
    standard = page.get_by_role("radio", name=re.compile("^Standard"))
    # Dates in the shop's locale (GET /shop: en-IE), e.g. "Wed 2 – Fri 4 Dec" or "Mon 30 Nov – Wed 2 Dec".
    expect(standard).to_have_accessible_name(
        re.compile(r"Free Arrives \w{3} \d+( \w{3})? – \w{3} \d+ \w{3} \(1–3 business days\)")
    )
    page.get_by_role("radio", name=re.compile("^Express")).check()
    expect(page.locator("[data-total=shipping]")).to_have_text("€14.90")
    expect(page.locator("[data-total=tax]")).to_have_text("€30.64")
    expect(page.locator("[data-total=total]")).to_have_text("€191.90")
    screenshot(page, "3-cart")

    page.get_by_role("link", name="Proceed to checkout").click()
    expect(heading(page)).to_have_text("Checkout")
    checkouts: list[Request] = []
    page.on("request", lambda r: checkouts.append(r) if r.method == "POST" and r.url.endswith("/checkout") else None)
    # A mistyped email: the API's 422 problem becomes a message at the field, which gets the focus.
    fill_address(page, "ada@example")
    console.expect_http_error(422, "/checkout")
    page.get_by_role("button", name=re.compile("^Place order")).click()
    expect(page.get_by_role("alert")).to_contain_text("Email must be an email address like ada@example.com.")
    expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Email")).to_be_focused()
    screenshot(page, "4-checkout-invalid")

    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_role("button", name="Place order · €191.90").dblclick()  # an impatient shopper
    order_id = order_id_from(page)
    keys = [r.headers["idempotency-key"] for r in checkouts]
    assert len(keys) == 2, keys  # the refused attempt, then one request for the double click
    assert all(UUID.match(key) for key in keys) and keys[0] != keys[1], keys  # a changed form is a new attempt
    expect(page.locator("[data-cart-count]")).to_have_text("0")  # the cart became the order

    order = wait_for_order(api, order_id, "awaiting_payment")
    redirect = order["payment"]["redirect_url"]
    assert re.fullmatch(rf"http://127\.0\.0\.1:\d+/pay/{order['payment']['payment_id']}", redirect), order["payment"]
    pay = page.get_by_role("link", name="Pay €191.90")
    expect(pay).to_have_attribute("href", re.compile("^" + re.escape(redirect) + r"\?return_url="))
    expect(status_panel(page)).to_contain_text("Awaiting payment")
    pay.click()

    expect(heading(page)).to_have_text("Pay 191.90 EUR")
    screenshot(page, "5-payment-page")
    page.get_by_role("button", name="Pay", exact=True).click()

    assert order_id_from(page) == order_id  # back in the shop, on the order's page
    expect(status_panel(page)).to_have_attribute("data-status", "delivered", timeout=DELIVERY_SECONDS * 1000)
    expect(status_panel(page)).to_contain_text("Your parcel has been delivered.")
    shown = statuses_shown(page)  # polling saw the parcel move; "paid" may last less than one poll
    assert shown[-2:] == ["shipped", "delivered"] and shown == sorted(shown, key=PROGRESS.index), shown
    order = api.get(f"/orders/{order_id}").json()
    assert [h["status"] for h in order["history"]] == [
        "pending",
        "awaiting_payment",
        "paid",
        "fulfilling",
        "shipped",
        "delivered",
    ]
    fulfilment = order["fulfilment"]
    expect(status_panel(page).locator(".tracking-number")).to_have_text(fulfilment["tracking_number"])
    expect(status_panel(page).get_by_role("link", name=re.compile("^Track your parcel"))).to_have_attribute(
        "href", fulfilment["tracking_url"]
    )
    expect(page.locator(".history li")).to_have_count(6)
    expect(page.get_by_role("list", name="Order progress").locator("[aria-current=step]")).to_have_text("Delivered")
    screenshot(page, "6-delivered")

    # The local stack's SES: the order page lists the mails this order was sent (in shop.json's locale, en-IE), and
    # the shopper reads the confirmation and the shipping mail with its tracking link.
    emails = page.get_by_role("region", name="Emails sent (local stack)")
    expect(emails.get_by_role("link")).to_have_count(3, timeout=15_000)  # paid, shipped, delivered: one each
    screenshot(page, "7-emails-listed")
    confirmation = read_email(page, emails, f"Your order {order_id} is confirmed")
    body = confirmation.locator("body")
    expect(body).to_contain_text("Hello Ada Lovelace,")
    expect(body).to_contain_text(re.compile(r"3 × Linen shirt – Medium\s*€177\.00"))
    expect(body).to_contain_text(re.compile(r"Total\s*€191\.90"))
    expect(body).to_contain_text(re.compile(r"including 19\s?% VAT: €30\.64"))
    expect(body).to_contain_text(f"Order number: {order_id}")
    screenshot(confirmation, "8-confirmation-email")
    confirmation.close()
    shipping = read_email(page, emails, f"Your order {order_id} is on its way")
    expect(shipping.get_by_text(fulfilment["tracking_number"])).to_be_visible()
    expect(shipping.get_by_role("link", name="Track your parcel")).to_have_attribute("href", fulfilment["tracking_url"])
    shipping.close()
    assert_clean(console)


def read_email(page: Page, emails: Locator, subject: str) -> Page:
    """Open the listed email with this subject from the order page (a new tab), as the shopper would."""
    with page.context.expect_page() as opened:
        emails.get_by_role("link", name=re.compile("^" + re.escape(subject))).click()
    email = opened.value
    expect(email).to_have_title(subject)
    return email


def test_a_declined_payment_then_a_retry_on_a_phone(
    phone: tuple[Page, Console], stack: Stack, api: httpx.Client
) -> None:
    page, console = phone
    page.goto(stack.url + "/")
    expect(heading(page)).to_have_text("All products")
    assert_fits(page, 375)
    add_to_cart(page, "Accessories", "Wool beanie", 1)
    assert_fits(page, 375)

    page.get_by_role("link", name=re.compile("^Cart")).click()
    expect(heading(page)).to_have_text("Your cart")
    expect(page.get_by_role("link", name="Proceed to checkout")).to_have_count(0)  # no shipping method yet
    # Keyboard: + then − on the line. At 1, − is disabled, so the focus stays on the line's quantity field.
    page.get_by_role("button", name="Increase quantity of Wool beanie").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("spinbutton", name="Quantity of Wool beanie")).to_have_value("2")
    page.get_by_role("button", name="Decrease quantity of Wool beanie").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("spinbutton", name="Quantity of Wool beanie")).to_have_value("1")
    expect(page.get_by_role("button", name="Decrease quantity of Wool beanie")).to_be_disabled()
    expect(page.get_by_role("spinbutton", name="Quantity of Wool beanie")).to_be_focused()
    # Keyboard only: Tab to the first delivery method and choose it with Space.
    page.get_by_label("Country").focus()
    page.keyboard.press("Tab")
    expect(page.get_by_role("radio", name=re.compile("^Standard"))).to_be_focused()
    page.keyboard.press("Space")
    expect(page.locator("[data-total=shipping]")).to_have_text("€4.95")  # under the free-shipping threshold
    expect(page.locator("[data-total=total]")).to_have_text("€29.95")
    assert_fits(page, 375)
    screenshot(page, "phone-1-cart")

    page.get_by_role("link", name="Proceed to checkout").click()
    fill_address(page, "grace@example.com")
    assert_fits(page, 375)
    checkouts: list[Request] = []
    page.on("request", lambda r: checkouts.append(r) if r.method == "POST" and r.url.endswith("/checkout") else None)
    page.get_by_role("button", name="Place order · €29.95").dblclick()
    order_id = order_id_from(page)
    assert len(checkouts) == 1, [r.headers for r in checkouts]  # the button is disabled while the order is placed
    page.get_by_role("link", name="Pay €29.95").click()
    expect(heading(page)).to_have_text("Pay 29.95 EUR")
    assert_fits(page, 375)
    screenshot(page, "phone-2-payment-page")
    page.get_by_role("button", name="Decline").click()

    # A decline is not the end: the order waits, says why, and offers the same payment again.
    assert order_id_from(page) == order_id
    expect(status_panel(page)).to_have_attribute("data-status", "awaiting_payment")
    expect(status_panel(page)).to_contain_text("Your card was declined. Your items are still reserved")
    expect(page.get_by_role("link", name="Pay €29.95")).to_have_count(0)
    assert_fits(page, 375)
    screenshot(page, "phone-3-declined")
    declined = api.get(f"/orders/{order_id}").json()
    assert (declined["payment"]["status"], declined["payment"]["attempts"]) == ("declined", 1)

    page.get_by_role("link", name="Try again · €29.95").click()
    expect(heading(page)).to_have_text("Pay 29.95 EUR")
    expect(page.get_by_text("An earlier attempt was declined")).to_be_visible()
    page.get_by_role("button", name="Pay").click()
    assert order_id_from(page) == order_id
    expect(status_panel(page)).not_to_have_attribute("data-status", "awaiting_payment")
    paid = wait_for_order(api, order_id, "paid", "fulfilling", "shipped", "delivered")
    assert (paid["payment"]["status"], paid["payment"]["attempts"]) == ("succeeded", 1)
    assert_fits(page, 375)
    assert_clean(console)


def place_order_through_the_api(api: httpx.Client, sku: str) -> str:
    """A shopper checks out one `sku` over the API; the order workflow reserves it while they pay."""
    cart = api.post("/carts", json={}).json()
    assert api.post(f"/carts/{cart['id']}/items", json={"sku": sku, "quantity": 1}).status_code == 200
    assert api.put(f"/carts/{cart['id']}/shipping", json={"country": "DE", "method": "standard"}).status_code == 200
    placed = api.post(
        "/checkout",
        headers={"Idempotency-Key": f"other-shopper-{cart['id']}"},
        json={
            "cart_id": cart["id"],
            "email": "other@example.com",
            "shipping_address": {
                "name": "Other",
                "line1": "Main St 2",
                "city": "Berlin",
                "postal_code": "10115",
                "country": "DE",
            },
        },
    )
    assert placed.status_code == 202, placed.text
    wait_for_order(api, placed.json()["id"], "awaiting_payment")  # its stock is reserved now
    return placed.json()["id"]


def test_a_checkout_that_lost_the_last_item_is_refused_at_once(
    desktop: tuple[Page, Console], stack: Stack, api: httpx.Client
) -> None:
    page, console = desktop
    page.goto(stack.url + "/#/category/accessories")
    expect(heading(page)).to_have_text("Accessories")
    page.get_by_role("link", name="Card wallet", exact=True).click()
    expect(page.get_by_role("radio", name=re.compile("^One size"))).to_have_accessible_name(re.compile("Only 1 left"))

    # Asking for more than there is: the API's 409 problem, in words.
    page.get_by_label("Quantity").fill("2")
    console.expect_http_error(409, "/items")
    page.get_by_role("button", name="Add to cart").click()
    expect(page.get_by_role("alert")).to_have_text("Not enough stock.Card wallet: only 1 available.")
    page.get_by_label("Quantity").fill("1")
    page.get_by_role("button", name="Add to cart").click()
    expect(page.get_by_role("status").filter(has_text="to your cart")).to_contain_text("Added 1 × Card wallet")
    expect(page.get_by_role("alert")).to_be_empty()

    page.get_by_role("link", name=re.compile("^Cart")).click()
    page.get_by_role("radio", name=re.compile("^Standard")).check()
    expect(page.locator("[data-total=total]")).to_have_text("€39.95")
    page.get_by_role("link", name="Proceed to checkout").click()
    fill_address(page, "alan@example.com")

    # While this shopper types, someone else checks out the last wallet: the checkout is refused at once (409,
    # no order is made), and the shopper stays on the checkout page with the reason.
    place_order_through_the_api(api, "LAST-ONE-WALLET-ONE")
    console.expect_http_error(409, "/checkout")
    page.get_by_role("button", name="Place order · €39.95").click()
    expect(page.get_by_role("alert")).to_have_text("Not enough stock.Card wallet – One size is sold out.")
    expect(heading(page)).not_to_have_text("Your order")
    screenshot(page, "refused-out-of-stock")
    cart_id = page.evaluate("localStorage.getItem('storefront.cart')") or ""
    assert api.get(f"/carts/{cart_id}").status_code == 200, "the cart is still there to change"
    assert_clean(console)


def test_an_order_the_reservation_rejected_says_why(
    desktop: tuple[Page, Console], stack: Stack, api: httpx.Client
) -> None:
    """An order can still end `rejected` (availability changed between the checkout's fast path and the reservation,
    which alone is exact); no browser can force that race, so the order is written as the workflow leaves it."""
    page, console = desktop
    order_id = write_rejected_order(stack, api, "LEATHER-BELT-ONE")
    page.goto(f"{stack.url}/#/orders/{order_id}")
    expect(status_panel(page)).to_have_attribute("data-status", "rejected")
    expect(status_panel(page)).to_contain_text("Sorry, we could not accept this order.")
    expect(status_panel(page).get_by_role("listitem")).to_have_text("Leather belt – One size: 1 ordered, 0 available")
    expect(status_panel(page)).to_contain_text("You have not been charged.")
    expect(page.get_by_role("link", name=re.compile("^Pay"))).to_have_count(0)
    screenshot(page, "rejected-out-of-stock")
    assert_clean(console)


def write_rejected_order(stack: Stack, api: httpx.Client, sku: str) -> str:
    """An order for one `sku`, priced by the API's own cart, stored and rejected exactly as the workflow does it."""
    cart = api.post("/carts", json={}).json()
    api.post(f"/carts/{cart['id']}/items", json={"sku": sku, "quantity": 1})
    cart = api.put(f"/carts/{cart['id']}/shipping", json={"country": "DE", "method": "standard"}).json()
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=stack.moto_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    table = next(name for name in dynamodb.list_tables()["TableNames"] if name.endswith("-OrdersTable"))
    orders = OrderRepository(dynamodb, table)
    now = datetime.now(UTC)
    order = StoredOrder(
        id=secrets.token_urlsafe(24),
        status=OrderStatus.PENDING,
        cart_id=cart["id"],
        email="rejected@example.com",
        lines=cart["lines"],
        totals=cart["totals"],
        shipping_address={
            "name": "Ada",
            "line1": "Main St 1",
            "city": "Berlin",
            "postal_code": "10115",
            "country": "DE",
        },
        shipping=cart["shipping"],
        history=[{"status": "pending", "at": now}],
        created_at=now,
        updated_at=now,
    )
    orders.create(order)
    orders.transition(
        order.id,
        OrderStatus.REJECTED,
        now,
        reason={
            "code": "insufficient_stock",
            "detail": f"Not enough stock: {sku} (1 requested, 0 available).",
            "lines": [{"sku": sku, "requested": 1, "available": 0}],
        },
    )
    return order.id


def test_a_shop_on_another_origin_gets_its_lost_checkout_answer_by_retrying(
    desktop: tuple[Page, Console], stack: Stack, api: httpx.Client
) -> None:
    """web/ deployed apart from the API (as on S3 + CloudFront): every call is cross-origin, with CORS preflights
    for JSON bodies, If-Match and Idempotency-Key. The answer to the checkout is lost on the way back; the
    shopper clicks again, the same key goes out, and the API answers with the order it already made."""
    page, console = desktop
    origins: set[str | None] = set()
    page.on(
        "response",
        lambda r: (
            origins.add(r.headers.get("access-control-allow-origin"))  # the API's answers
            if r.url.startswith(stack.url) and r.request.resource_type == "fetch"
            else None
        ),
    )  # (images are no CORS)
    with static_site(WEB, api=stack.url) as site:  # a CSP violation would fail the test (console)
        override_config(page, apiBase=stack.url + "/")  # a trailing slash, as people paste it
        page.goto(site + "/#/products/linen-shirt")
        expect(heading(page)).to_have_text("Linen shirt")
        page.get_by_role("radio", name=re.compile("^Large")).check()
        page.get_by_role("button", name="Add to cart").click()
        expect(page.get_by_role("status").filter(has_text="to your cart")).to_contain_text("Added 1 ×")
        page.get_by_role("link", name=re.compile("^Cart")).click()
        page.get_by_role("button", name="Increase quantity of Linen shirt – Large").click()  # PUT with If-Match
        expect(page.get_by_role("spinbutton", name="Quantity of Linen shirt – Large")).to_have_value("2")
        page.get_by_role("radio", name=re.compile("^Standard")).check()
        page.get_by_role("link", name="Proceed to checkout").click()
        fill_address(page, "lin@example.com")

        answers: list[dict[str, Any]] = []
        keys: list[str] = []

        def lose_the_first_answer(route: Route) -> None:
            keys.append(route.request.headers["idempotency-key"])
            if answers:
                route.continue_()
                return
            answers.append(route.fetch().json())  # the API made the order; the shopper never hears of it
            route.abort("connectionreset")

        page.route(re.compile(r"/checkout$"), lose_the_first_answer)
        console.expect_network_error("ERR_CONNECTION_RESET", "/checkout")
        place = page.get_by_role("button", name=re.compile("^Place order"))
        place.click()
        expect(page.get_by_role("alert")).to_contain_text("The shop cannot be reached right now.")
        attempt = page.evaluate("sessionStorage.getItem('storefront.checkout-attempt')")
        assert keys[0] in attempt and "lin@example.com" not in attempt, attempt  # a fingerprint, not the address
        place.click()
        assert order_id_from(page) == answers[0]["id"]
        assert len(keys) == 2 and keys[0] == keys[1] and UUID.match(keys[0]), keys
        expect(status_panel(page)).to_have_attribute("data-status", "awaiting_payment")
        expect(page.get_by_role("link", name=re.compile("^Pay €"))).to_be_visible()
        assert origins == {site}, origins  # the API allowed this origin, and only it, on every answer
    assert_clean(console)


def test_the_order_page_polls_gently_and_stops_when_nothing_moves(
    desktop: tuple[Page, Console], stack: Stack, api: httpx.Client
) -> None:
    """Polling pauses in a background tab, slows down while the order stands still and stops after a while
    (a parcel can take days), with a button that follows the order again."""
    page, console = desktop
    override_config(page, maxPollIntervalMs=400, pollForMs=3000)
    order_id = place_order_through_the_api(api, "CERAMIC-MUG-ONE")
    polls: list[float] = []
    page.on("request", lambda r: polls.append(time.monotonic()) if r.url.endswith(f"/orders/{order_id}") else None)
    page.goto(f"{stack.url}/#/orders/{order_id}")
    expect(status_panel(page)).to_have_attribute("data-status", "awaiting_payment")

    set_tab_hidden(page, True)
    time.sleep(0.6)  # a poll that was already on its way may still finish
    asked = len(polls)
    time.sleep(2)
    assert len(polls) == asked, "a hidden tab does not poll"
    set_tab_hidden(page, False)

    again = page.get_by_role("button", name="Check for updates")
    expect(again).to_be_visible(timeout=8_000)
    expect(page.get_by_text("this page stopped checking")).to_be_visible()
    stopped = len(polls)
    assert stopped >= asked + 3, polls
    payment_id = api.get(f"/orders/{order_id}").json()["payment"]["payment_id"]
    assert api.post(f"/dev/payments/{payment_id}/succeed").status_code == 200
    time.sleep(1.5)
    assert len(polls) == stopped, "stopped polling stays stopped"
    expect(status_panel(page)).to_have_attribute("data-status", "awaiting_payment")

    again.click()
    expect(again).to_be_hidden()
    expect(status_panel(page)).to_have_attribute("data-status", "delivered", timeout=DELIVERY_SECONDS * 1000)
    assert_clean(console)


def test_the_page_takes_the_shops_name_locale_and_countries_from_the_api(
    desktop: tuple[Page, Console], stack: Stack, api: httpx.Client
) -> None:
    """web/ hard-codes nothing the backend knows: a shop.json with another name, locale and fewer countries shows up
    as such (GET /shop answered here as such a shop's API would)."""
    page, console = desktop
    other = {
        **api.get("/shop").json(),
        "name": "Kaffeehaus",
        "locale": "de-AT",
        "countries": [{"code": "AT", "name": "Austria"}, {"code": "DE", "name": "Germany"}],
        "default_country": "AT",
    }
    page.route(re.compile(r"/shop$"), lambda route: route.fulfill(json=other))
    page.goto(stack.url + "/")
    add_to_cart(page, "Home", "Ceramic mug", 1)
    expect(page.locator("[data-shop-name]")).to_have_text("Kaffeehaus")
    page.get_by_role("link", name=re.compile("^Cart")).click()
    expect(page).to_have_title("Your cart · Kaffeehaus")
    country = page.get_by_label("Country")
    expect(country.locator("option")).to_have_text(["Österreich", "Deutschland"])
    expect(country).to_have_value("AT")
    expect(page.locator("[data-line-total=CERAMIC-MUG-ONE]")).to_have_text(re.compile(r"^€\s?18,00$"))  # de-AT
    assert_clean(console)
