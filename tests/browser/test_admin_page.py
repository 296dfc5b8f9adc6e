"""The merchant's admin page (web/manage/) in a real browser, against the local stack: an admin signs in with the
credentials `make dev` prints, creates a product with an image and 5 units, a shopper buys one in the shop and pays
on the local provider's page, the admin finds the order, adjusts the stock and archives the product, which leaves
the shop; and a staff member, on a phone, signs in for the first time and sees the catalog and orders read-only.
Every page must stay free of console errors.
"""

from __future__ import annotations

import base64
import re
import secrets

import boto3
import httpx
import pytest
from playwright.sync_api import Locator, Page, expect
from storefront_browser import Console, Stack, screenshot

pytestmark = pytest.mark.slow("browser")

# A 1x1 PNG: what the admin uploads as the product's image.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
SIGN_IN_LINE = re.compile(r"^\s*sign in as\s+(\S+) / (\S+)\s", re.MULTILINE)


def heading(page: Page) -> Locator:
    return page.get_by_role("heading", level=1)


def notice(page: Page) -> Locator:
    return page.locator("main .notice[role=status]")


def seeded_admin(stack: Stack) -> tuple[str, str]:
    """The admin's email and password, as the local stack's banner prints them for a merchant to sign in with."""
    found = SIGN_IN_LINE.search(stack.log.read_text(errors="replace"))
    assert found, stack.output_tail()
    return found.group(1), found.group(2)


def sign_in(page: Page, stack: Stack, email: str, password: str) -> None:
    page.goto(stack.url + "/manage/")
    expect(heading(page)).to_have_text("Sign in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def assert_clean(console: Console) -> None:
    assert console.unexpected() == [], "\n".join(console.unexpected())


def test_an_admin_creates_a_product_the_shop_sells_then_restocks_and_archives_it(
    desktop: tuple[Page, Console], stack: Stack, api: httpx.Client
) -> None:
    page, console = desktop
    suffix = secrets.token_hex(3)
    name, sku, shopper = f"Admin mug {suffix}", f"ADMIN-MUG-{suffix.upper()}", f"buyer-{suffix}@example.com"

    # A wrong password is a sentence, not a dead end; the right one shows the catalog.
    email, password = seeded_admin(stack)
    console.expect_http_error(400, stack.moto_url)  # Cognito's NotAuthorizedException
    sign_in(page, stack, email, password + "x")
    expect(page.get_by_role("alert")).to_have_text("The email or password is not right.")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(heading(page)).to_have_text("Products")
    expect(page.get_by_text(f"{email} (admin)")).to_be_visible()
    assert page.evaluate("Object.keys(localStorage).filter(k => k.includes('admin'))") == []  # tokens: the tab only

    page.get_by_role("link", name="New product").click()
    expect(heading(page)).to_have_text("New product")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Category").select_option("accessories")
    page.get_by_label("Status").select_option("active")
    page.get_by_label("SKU").fill(sku)
    page.get_by_label("Price (EUR)").fill("12,5")  # as a European merchant types it
    page.get_by_label("Units in stock").fill("5")
    page.get_by_label("Image (optional)").set_input_files({"name": "mug.png", "mimeType": "image/png", "buffer": PNG})
    page.get_by_role("button", name="Create product").click()
    expect(heading(page)).to_have_text(name)
    expect(notice(page)).to_have_text("Product created.")
    expect(page.get_by_role("row", name=re.compile(f"^{sku}"))).to_contain_text("€12.50")
    expect(page.get_by_role("row", name=re.compile(f"^{sku}"))).to_contain_text("5")
    image = page.get_by_role("img", name=f"Image 1 of {name}")
    expect(image).to_be_visible()
    assert image.evaluate("img => img.complete && img.naturalWidth") == 1  # served from the images bucket
    product_id = page.get_by_text(re.compile(r"^admin-mug-")).text_content()
    screenshot(page, "admin-1-product")

    # The shop sells it: a shopper buys one and pays on the local provider's page.
    shop = page.context.new_page()
    console.watch(shop)
    shop.goto(f"{stack.url}/#/products/{product_id}")
    expect(heading(shop)).to_have_text(name)
    shop.get_by_role("button", name="Add to cart").click()
    expect(shop.get_by_role("status").filter(has_text="to your cart")).to_contain_text("Added 1 ×")
    shop.get_by_role("link", name=re.compile("^Cart")).click()
    expect(shop.locator("[data-line-total]")).to_have_count(1)
    expect(shop.get_by_label("Country")).to_have_value("DE")
    shop.get_by_role("radio", name=re.compile("^Standard")).check()
    expect(shop.locator("[data-total=shipping]")).to_have_text("€4.95")
    shop.get_by_role("link", name="Proceed to checkout").click()
    shop.get_by_label("Email").fill(shopper)
    for label, value in {
        "Full name": "Ada Lovelace",
        "Address": "Unter den Linden 1",
        "Postal code": "10117",
        "City": "Berlin",
    }.items():
        shop.get_by_label(label, exact=True).fill(value)
    shop.get_by_role("button", name=re.compile("^Place order")).click()
    shop.get_by_role("link", name=re.compile("^Pay €")).click()
    shop.get_by_role("button", name="Pay", exact=True).click()
    expect(shop.locator(".order-status")).not_to_have_attribute("data-status", re.compile("pending|awaiting_payment"))
    shop.close()

    # The admin finds the order by the shopper's email; an admin may cancel and refund it.
    page.get_by_role("link", name="Orders", exact=True).click()
    page.get_by_label("Email").fill(shopper)
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("row")).to_have_count(2)  # the heading row and the order
    page.get_by_role("row").nth(1).get_by_role("link").click()
    expect(heading(page)).to_contain_text("Order ")
    expect(page.get_by_role("row", name=re.compile(f"^{sku}"))).to_contain_text("€12.50")
    expect(page.locator("[data-order-status]")).to_have_attribute(
        "data-order-status", re.compile("paid|fulfilling|shipped|delivered")
    )
    expect(page.get_by_role("button", name="Cancel order")).to_be_enabled()
    expect(page.get_by_role("button", name="Refund")).to_be_enabled()
    screenshot(page, "admin-2-order")

    # Stock: the sale is in the ledger; 3 more units arrive.
    page.get_by_role("link", name=sku).click()
    expect(heading(page)).to_have_text(f"Stock of {sku}")
    expect(page.locator("[data-level=on_hand]")).to_have_text("4")
    page.get_by_label("Change (units)").fill("3")
    page.get_by_label("Reason").select_option("received")
    page.get_by_label("Note (optional)").fill("a late delivery")
    page.get_by_role("button", name="Adjust stock").click()
    expect(page.locator("[data-level=available]")).to_have_text("7")
    expect(page.get_by_role("row", name=re.compile(r"\+3 received"))).to_contain_text("a late delivery")
    expect(page.get_by_role("row", name=re.compile(r"-1 sold"))).to_be_visible()
    assert api.get(f"/products/{product_id}").json()["variants"][0]["available"] == 7
    screenshot(page, "admin-3-stock")

    # Archived: out of the shop at once, kept in the admin.
    page.goto(f"{stack.url}/manage/#/products/{product_id}")
    expect(heading(page)).to_have_text(name)
    page.get_by_role("button", name="Archive product").click()
    expect(notice(page)).to_have_text("Archived: the shop no longer sells it.")
    expect(page.get_by_role("button", name="Restore as draft")).to_be_visible()
    assert api.get(f"/products/{product_id}").status_code == 404
    page.get_by_role("link", name="Products", exact=True).first.click()
    page.get_by_label("Status").select_option("archived")
    page.get_by_role("button", name="Show", exact=True).click()
    expect(page.get_by_role("link", name=name)).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(heading(page)).to_have_text("Sign in")
    expect(page.get_by_role("status").filter(has_text="signed out")).to_be_visible()
    assert page.evaluate("Object.keys(sessionStorage).filter(k => k.includes('admin.session'))") == []
    assert_clean(console)


def test_staff_choose_their_password_and_see_the_catalog_read_only_on_a_phone(
    phone: tuple[Page, Console], stack: Stack, api: httpx.Client
) -> None:
    page, console = phone
    pool = api.get("/dev/auth/config").json()
    cognito = boto3.client(
        "cognito-idp",
        region_name=pool["region"],
        endpoint_url=stack.moto_url,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    email, temporary = f"staff-{secrets.token_hex(3)}@example.com", "Temporary-Pass-123!"
    cognito.admin_create_user(
        UserPoolId=pool["user_pool_id"],
        Username=email,
        TemporaryPassword=temporary,
        UserAttributes=[{"Name": "email", "Value": email}],
        MessageAction="SUPPRESS",
    )
    cognito.admin_add_user_to_group(UserPoolId=pool["user_pool_id"], Username=email, GroupName="staff")

    sign_in(page, stack, email, temporary)  # an account an admin made: Cognito asks for a password of their own
    expect(heading(page)).to_have_text("Choose your password")
    expect(page.get_by_label("New password")).to_be_focused()
    page.get_by_label("New password").fill("Staff-Chosen-Pass-456!")
    page.get_by_role("button", name="Save password and sign in").click()
    expect(heading(page)).to_have_text("Products")
    expect(page.get_by_text(f"{email} (staff)")).to_be_visible()
    expect(page.get_by_role("link", name="New product")).to_have_count(0)
    expect(page.get_by_text("changing it takes the admin group")).to_be_visible()

    page.goto(f"{stack.url}/manage/#/products/linen-shirt")
    expect(heading(page)).to_have_text("Linen shirt")
    expect(page.get_by_role("button")).to_have_text(["Sign out"])  # no price, image, status or archive buttons
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, "admin-phone-staff-product")
    page.get_by_role("link", name="Orders", exact=True).click()
    expect(heading(page)).to_have_text("Orders")
    page.get_by_role("row").nth(1).get_by_role("link").click()
    expect(heading(page)).to_contain_text("Order ")
    expect(page.get_by_text("Cancelling and refunding take the admin group.")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel order")).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert_clean(console)
