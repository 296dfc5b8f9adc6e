"""The merchant's admin page (web/manage/) in a real browser, against the local stack: an admin signs in with the
credentials `make dev` prints, creates a product with an image and 5 units, a shopper buys one in the shop and pays
on the local provider's page, the admin finds the order, adjusts the stock and archives the product, which leaves
the shop; and a staff member, on a phone, signs in for the first time and sees the catalog and orders read-only.
Then what the session does when it matters: an access token the API refuses is refreshed once and the call
repeated; a session that cannot be refreshed asks to sign in and carries on where it was; a product saved by someone
else meanwhile is reloaded with a sentence instead of overwritten; and an operator with an authenticator app types
its code. Every page must stay free of console errors but the 4xx answers a test provokes on purpose.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import struct
import time
from typing import Any

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


def user_pool(stack: Stack, api: httpx.Client) -> tuple[Any, dict[str, str]]:
    """A boto3 client of the local stack's Cognito (moto) and the pool's settings (GET /dev/auth/config)."""
    pool = api.get("/dev/auth/config").json()
    cognito = boto3.client(
        "cognito-idp",
        region_name=pool["region"],
        endpoint_url=stack.moto_url,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    return cognito, pool


def new_admin(cognito: Any, pool: dict[str, str]) -> tuple[str, str]:
    """An operator of the admin group with a password of their own, as an admin makes one (deploy.md): a test that
    spoils or revokes its tokens spoils nobody else's."""
    email, password = f"admin-{secrets.token_hex(3)}@example.com", f"Admin-Pass-{secrets.token_hex(4)}!"
    cognito.admin_create_user(
        UserPoolId=pool["user_pool_id"],
        Username=email,
        TemporaryPassword="Temporary-Pass-123!",
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
        MessageAction="SUPPRESS",
    )
    cognito.admin_set_user_password(UserPoolId=pool["user_pool_id"], Username=email, Password=password, Permanent=True)
    cognito.admin_add_user_to_group(UserPoolId=pool["user_pool_id"], Username=email, GroupName="admin")
    return email, password


def stored_session(page: Page) -> dict[str, Any]:
    return json.loads(page.evaluate("sessionStorage.getItem('storefront.admin.session')"))


def store_session(page: Page, **changes: str) -> None:
    """Changes the tokens the page keeps in this tab's sessionStorage, as time or a revocation would."""
    page.evaluate(
        "changes => sessionStorage.setItem('storefront.admin.session', JSON.stringify("
        "{...JSON.parse(sessionStorage.getItem('storefront.admin.session')), ...changes}))",
        changes,
    )


def cognito_calls(page: Page, flow: str) -> list[str]:
    """Every request the page sends to Cognito whose body names `flow` (REFRESH_TOKEN_AUTH, say), as it happens."""
    seen: list[str] = []
    page.on(
        "request",
        lambda request: (
            seen.append(request.url) if request.method == "POST" and flow in (request.post_data or "") else None
        ),
    )
    return seen


TOTP_STEP = 30


def totp(secret: str, at: float) -> str:
    """RFC 6238 as authenticator apps and Cognito compute it: HMAC-SHA1 over the 30-second step, six digits."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(at) // TOTP_STEP), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def current_code(secret: str) -> str:
    """The code an authenticator app shows now, with the time to type it: moto accepts the current step only (no
    window either side), so a code that would lapse within 5 seconds is waited out: the protocol's clock, not a
    guess at how long the page takes."""
    left = TOTP_STEP - time.time() % TOTP_STEP
    if left < 5:
        time.sleep(left)
    return totp(secret, time.time())


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
    cognito, pool = user_pool(stack, api)
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


def test_a_refused_access_token_is_refreshed_once_and_the_call_repeated(
    desktop: tuple[Page, Console], stack: Stack, api: httpx.Client
) -> None:
    """The access token lives an hour and a merchant keeps the tab open longer: the API's 401 must not end the
    session while the refresh token is good. A token the authorizer refuses (here its signature spoilt, as an
    expired one is refused too) is replaced through REFRESH_TOKEN_AUTH, once, and the product opens."""
    page, console = desktop
    cognito, pool = user_pool(stack, api)
    email, password = new_admin(cognito, pool)
    sign_in(page, stack, email, password)
    expect(heading(page)).to_have_text("Products")
    signed_in = stored_session(page)
    spoilt = ".".join([*signed_in["accessToken"].split(".")[:2], "c3BvaWx0"])  # a signature that does not verify
    store_session(page, accessToken=spoilt)
    refreshes = cognito_calls(page, "REFRESH_TOKEN_AUTH")

    console.expect_http_error(401, "/admin/products/linen-shirt")  # the spoilt token's answer, before the refresh
    page.get_by_role("link", name="Linen shirt").click()
    expect(heading(page)).to_have_text("Linen shirt")
    expect(page.get_by_role("button", name="Save prices")).to_be_visible()
    refreshed = stored_session(page)
    assert refreshed["accessToken"] not in (spoilt, signed_in["accessToken"])
    assert refreshed["refreshToken"] == signed_in["refreshToken"]  # Cognito's refresh keeps the refresh token
    assert len(refreshes) == 1, refreshes
    # The new token is what the API takes now: the next call needs no refresh.
    page.get_by_role("link", name="Orders", exact=True).click()
    expect(heading(page)).to_have_text("Orders")
    assert len(refreshes) == 1, refreshes
    assert_clean(console)


def test_a_session_that_cannot_be_refreshed_asks_to_sign_in_and_then_shows_what_was_asked(
    desktop: tuple[Page, Console], stack: Stack, api: httpx.Client
) -> None:
    """A refresh token 12 hours old or revoked (signed out in another tab, or by an admin) ends the session: the
    page says so with the sign-in form, holds no tokens any more, and after signing in again carries on with the
    view the operator asked for rather than starting over."""
    page, console = desktop
    cognito, pool = user_pool(stack, api)
    email, password = new_admin(cognito, pool)
    sign_in(page, stack, email, password)
    expect(heading(page)).to_have_text("Products")
    cognito.revoke_token(Token=stored_session(page)["refreshToken"], ClientId=pool["client_id"])
    store_session(page, accessToken="not-a-token")

    console.expect_http_error(401, "/admin/orders")
    console.expect_http_error(400, stack.moto_url)  # Cognito's NotAuthorizedException: the refresh token is revoked
    page.get_by_role("link", name="Orders", exact=True).click()
    expect(heading(page)).to_have_text("Sign in")
    expect(page.get_by_role("status").filter(has_text="Your session has ended")).to_have_text(
        "Your session has ended. Sign in again to continue."
    )
    assert page.evaluate("sessionStorage.getItem('storefront.admin.session')") is None
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()

    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(heading(page)).to_have_text("Orders")
    assert page.evaluate("location.hash") == "#/orders"
    expect(page.get_by_role("row").nth(1)).to_be_visible()  # the orders, through the new session
    assert_clean(console)


def test_a_product_saved_meanwhile_by_someone_else_is_reloaded_not_overwritten(
    desktop: tuple[Page, Console], stack: Stack, api: httpx.Client
) -> None:
    """Two operators edit the same product: the page sends the version it showed in If-Match, so the second save
    gets 412 instead of silently undoing the first. The page says so and shows the product as it is now; saving
    again on that version goes through."""
    page, console = desktop
    token = api.post("/dev/auth/token", json={"groups": ["admin"]}).json()["access_token"]
    admin = {"Authorization": f"Bearer {token}"}
    suffix = secrets.token_hex(3)
    sku = f"RACE-{suffix.upper()}"
    created = api.post(
        "/admin/products",
        headers=admin,
        json={
            "name": f"Race mug {suffix}",
            "description": "Two operators price it at once.",
            "category": "accessories",
            "status": "draft",
            "images": [],
            "variants": [{"sku": sku, "title": "Standard", "price": {"amount": 1250, "currency": "EUR"}}],
        },
    )
    assert created.status_code == 201, created.text
    product = created.json()
    email, password = seeded_admin(stack)
    sign_in(page, stack, email, password)
    expect(heading(page)).to_have_text("Products")
    page.goto(f"{stack.url}/manage/#/products/{product['id']}")
    expect(heading(page)).to_have_text(product["name"])
    price = page.get_by_label(f"Price of Standard ({sku}), EUR")
    expect(price).to_have_value("12.50")

    # Someone else saves first, on the version the page shows.
    theirs = {**product, "variants": [{"sku": sku, "title": "Standard", "price": {"amount": 1400, "currency": "EUR"}}]}
    saved = api.put(
        f"/admin/products/{product['id']}",
        headers={**admin, "If-Match": f'"{product["version"]}"'},
        json={k: theirs[k] for k in ("name", "description", "category", "status", "images", "variants")},
    )
    assert saved.status_code == 200, saved.text

    console.expect_http_error(412, f"/admin/products/{product['id']}")
    price.fill("13")
    page.get_by_role("button", name="Save prices").click()
    expect(notice(page)).to_have_text(
        "This product was changed meanwhile, so it has been reloaded: check it and try again."
    )
    expect(page.get_by_label(f"Price of Standard ({sku}), EUR")).to_have_value("14.00")  # their edit, shown
    expect(page.get_by_role("row", name=re.compile(f"^{sku}"))).to_contain_text("€14.00")
    assert api.get(f"/admin/products/{product['id']}", headers=admin).json()["variants"][0]["price"]["amount"] == 1400

    # Saving again, on what is there now, goes through.
    page.get_by_label(f"Price of Standard ({sku}), EUR").fill("13")
    page.get_by_role("button", name="Save prices").click()
    expect(notice(page)).to_have_text("Prices saved.")
    expect(page.get_by_role("row", name=re.compile(f"^{sku}"))).to_contain_text("€13.00")
    now = api.get(f"/admin/products/{product['id']}", headers=admin).json()
    assert (now["variants"][0]["price"]["amount"], now["version"]) == (1300, product["version"] + 2)
    assert_clean(console)


def test_an_operator_with_an_authenticator_app_types_its_code_to_sign_in(
    desktop: tuple[Page, Console], stack: Stack, api: httpx.Client
) -> None:
    """The pool offers TOTP MFA (template.yaml, EnabledMfas): an operator who enrolled an app is asked for its code
    after the password (SOFTWARE_TOKEN_MFA). A wrong code is a sentence and another try, the right one signs in.
    The local stack's Cognito checks the code (MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP), against moto's one secret
    for every enrolment, which AssociateSoftwareToken hands out as Cognito hands out a user's own."""
    page, console = desktop
    cognito, pool = user_pool(stack, api)
    email, password = new_admin(cognito, pool)
    # Enrolment, as an operator does it with their app: the secret, a first code, then TOTP as the preferred MFA.
    access = cognito.initiate_auth(
        ClientId=pool["client_id"],
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": password},
    )["AuthenticationResult"]["AccessToken"]
    secret = cognito.associate_software_token(AccessToken=access)["SecretCode"]
    assert cognito.verify_software_token(AccessToken=access, UserCode=current_code(secret))["Status"] == "SUCCESS"
    cognito.set_user_mfa_preference(
        AccessToken=access, SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True}
    )

    sign_in(page, stack, email, password)
    expect(heading(page)).to_have_text("Enter your code")
    code = page.get_by_label("Code")
    expect(code).to_be_focused()
    console.expect_http_error(400, stack.moto_url)  # Cognito's CodeMismatchException
    right = current_code(secret)
    code.fill(f"{(int(right) + 1) % 1_000_000:06d}")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("The code is not right. Try the newest one.")
    code.fill(current_code(secret))
    page.get_by_role("button", name="Sign in").click()
    expect(heading(page)).to_have_text("Products")
    expect(page.get_by_text(f"{email} (admin)")).to_be_visible()
    assert_clean(console)
