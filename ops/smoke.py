"""Smoke test of a running storefront: one purchase as a shop frontend makes it, then undone as an operator would.

    python -m ops.smoke --api URL                                    # the local stack (make dev): a token from
                                                                     # /dev/auth/token
    python -m ops.smoke --stack NAME [--region R] --admin-user EMAIL  # a deployed stack: ApiUrl and the pool's
                                                                     # client id from its outputs, the password
                                                                     # asked for (or STOREFRONT_ADMIN_PASSWORD, or
                                                                     # --admin-password)
    python -m ops.smoke --api URL --token ACCESS_TOKEN               # an admin's access token you already have

Steps, each reported on its own line: the shop (GET /shop), the catalog (an in-stock variant), an admin token
(checked with GET /admin/me before anything is made, so a bad token creates nothing), a cart with one unit,
shipping, checkout to `awaiting_payment` (the saga reserved the unit and asked the payment provider), then
POST /admin/orders/{id}/cancel and the unit available again. Nothing is paid, nothing ships, no stock stays held:
a step that fails after the checkout still cancels the order. The order's email defaults to Amazon SES's mailbox
simulator, so a deployed stack's customer emails harm no sender reputation.

Exit code 0 when every step passed, 1 when one failed, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx

SMOKE_EMAIL = "success@simulator.amazonses.com"  # SES's mailbox simulator: accepts every email, reputation untouched
CANCEL_REASON = "ops.smoke test order"
PASSWORD_VARIABLE = "STOREFRONT_ADMIN_PASSWORD"  # noqa: S105  the variable's name, not a password
# The saga reserves stock and creates the payment in a second or two; a cold stack's first calls take longer.
WAIT_SECONDS = 60.0
POLL_SECONDS = 0.5


class StepFailed(Exception):
    """A step's check did not hold; the message says what was seen."""


@dataclass
class Purchase:
    """What the run made, so that a failure after checkout can still cancel it."""

    product_id: str = ""
    sku: str = ""
    available_before: int = 0
    order_id: str | None = None
    cancelled: bool = False


@dataclass
class Report:
    out: TextIO
    started: float = field(default_factory=time.monotonic)
    failed: bool = False

    def step(self, name: str, run: Callable[[], str]) -> None:
        """Run one step and print `ok <name> <what it saw> (<seconds>)`, or `FAIL` and raise StepFailed."""
        began = time.monotonic()
        try:
            detail = run()
        except (StepFailed, httpx.HTTPError) as error:
            self.failed = True
            print(f"  FAIL {name:<12} {error}", file=self.out, flush=True)
            raise StepFailed(str(error)) from error
        print(f"  ok   {name:<12} {detail} ({time.monotonic() - began:.1f} s)", file=self.out, flush=True)


def _json(response: httpx.Response, *expected: int) -> Any:
    if response.status_code not in expected:
        raise StepFailed(
            f"{response.request.method} {response.request.url.path} answered {response.status_code}: "
            f"{response.text[:300]}"
        )
    return response.json() if response.content else None


def _money(money: dict[str, Any], exponent: int = 2) -> str:
    return f"{money['currency']} {money['amount'] / 10**exponent:.{exponent}f}"


def _wait_for(what: str, check: Callable[[], Any], seconds: float = WAIT_SECONDS) -> Any:
    """Poll `check` until it returns something truthy; StepFailed naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        if result := check():
            return result
        if time.monotonic() > deadline:
            raise StepFailed(f"{what}: not within {seconds:g} s")
        time.sleep(POLL_SECONDS)


# ---------------------------------------------------------------- the admin token


def _stack_outputs(stack: str, region: str | None) -> dict[str, str]:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        described = boto3.client("cloudformation", region_name=region).describe_stacks(StackName=stack)
    except (BotoCoreError, ClientError) as error:
        raise StepFailed(f"cannot read the outputs of the stack {stack}: {error}") from error
    return {output["OutputKey"]: output["OutputValue"] for output in described["Stacks"][0].get("Outputs", [])}


def cognito_access_token(
    client_id: str,
    username: str,
    password: str,
    *,
    region: str | None,
    endpoint_url: str | None = None,
    mfa_code: str | None = None,
) -> str:
    """Sign in as the admin page does: InitiateAuth USER_PASSWORD_AUTH with the pool's public client."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    # Unsigned, as the admin page calls it: signing in needs no AWS credentials, only the public client's id.
    cognito = boto3.client(
        "cognito-idp", region_name=region, endpoint_url=endpoint_url, config=Config(signature_version=UNSIGNED)
    )
    try:
        answer = cognito.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )
        if answer.get("ChallengeName") == "SOFTWARE_TOKEN_MFA" and mfa_code:
            answer = cognito.respond_to_auth_challenge(
                ClientId=client_id,
                ChallengeName="SOFTWARE_TOKEN_MFA",
                Session=answer["Session"],
                ChallengeResponses={"USERNAME": username, "SOFTWARE_TOKEN_MFA_CODE": mfa_code},
            )
    except (BotoCoreError, ClientError) as error:
        raise StepFailed(f"Cognito refused the sign-in of {username}: {error}") from error
    if "AuthenticationResult" not in answer:
        challenge = answer.get("ChallengeName")
        hint = {
            "NEW_PASSWORD_REQUIRED": "sign in once with the temporary password and choose a permanent one "
            '(docs/deploy.md, "The first admin")',
            "SOFTWARE_TOKEN_MFA": "pass --mfa-code with the current code of the operator's TOTP app",
        }
        raise StepFailed(f"Cognito asks {username} for {challenge}: {hint.get(challenge, 'answer it first')}")
    return str(answer["AuthenticationResult"]["AccessToken"])


def admin_token(api: httpx.Client, args: argparse.Namespace, outputs: dict[str, str]) -> tuple[str, str]:
    """(an access token of the group admin, how it was obtained)."""
    if args.token:
        return args.token, "--token"
    if args.admin_user:
        password = (
            args.admin_password
            or os.environ.get(PASSWORD_VARIABLE)
            or getpass.getpass(f"Password of {args.admin_user}: ")
        )
        if outputs:
            client_id, endpoint = outputs["AdminUserPoolClientId"], None
        else:  # the local stack says where its user pool is
            config = _json(api.get("/dev/auth/config"), 200)
            client_id, endpoint = config["client_id"], config["cognito_endpoint"]
            args.region = args.region or config["region"]
        token = cognito_access_token(
            client_id, args.admin_user, password, region=args.region, endpoint_url=endpoint, mfa_code=args.mfa_code
        )
        return token, f"Cognito InitiateAuth as {args.admin_user}"
    response = api.post("/dev/auth/token", json={"groups": ["admin"]})
    if response.status_code == 404:
        raise StepFailed(
            "POST /dev/auth/token exists only on the local stack: on AWS pass --admin-user (with --stack) or --token"
        )
    return _json(response, 200)["access_token"], "POST /dev/auth/token (local stack)"


# ---------------------------------------------------------------- the run


def run(api: httpx.Client, args: argparse.Namespace, outputs: dict[str, str], out: TextIO) -> bool:
    report = Report(out)
    made = Purchase()
    shop: dict[str, Any] = {}
    cart: dict[str, Any] = {}
    headers: dict[str, str] = {}
    print(f"Smoke test of {api.base_url}", file=out, flush=True)

    def read_shop() -> str:
        shop.update(_json(api.get("/shop"), 200))
        return f"GET /shop: {shop['name']!r}, {shop['currency']}, ships to {len(shop['countries'])} countries"

    def pick_variant() -> str:
        products = _json(api.get("/products", params={"limit": 100}), 200)["items"]
        in_stock = [
            (variant["available"], product["id"], variant["sku"])
            for product in products
            for variant in product["variants"]
            if variant["in_stock"]
        ]
        if not in_stock:
            raise StepFailed(f"GET /products: none of {len(products)} products has a variant in stock")
        made.available_before, made.product_id, made.sku = max(in_stock)  # the most plentiful: the least in the way
        return f"GET /products: {len(products)} products; {made.sku} has {made.available_before} available"

    def sign_in() -> str:
        token, how = admin_token(api, args, outputs)
        headers["authorization"] = f"Bearer {token}"
        me = _json(api.get("/admin/me", headers=headers), 200)
        if "admin" not in me["groups"]:
            raise StepFailed(f"GET /admin/me: the token's groups are {me['groups']}; cancelling needs admin")
        return f"{how}; GET /admin/me: groups {me['groups']}"

    def fill_cart() -> str:
        cart.update(_json(api.post("/carts", json={}), 201))
        cart.update(_json(api.post(f"/carts/{cart['id']}/items", json={"sku": made.sku, "quantity": 1}), 200))
        return f"POST /carts, /items: 1 × {made.sku}, subtotal {_money(cart['totals']['subtotal'])}"

    def choose_shipping() -> str:
        country = shop["default_country"]
        methods = _json(api.get("/shipping-methods", params={"country": country}), 200)["items"]
        if not methods:
            raise StepFailed(f"GET /shipping-methods?country={country}: no method")
        method = methods[0]["id"]
        cart.update(_json(api.put(f"/carts/{cart['id']}/shipping", json={"country": country, "method": method}), 200))
        return f"{len(methods)} methods to {country}; {method}: total {_money(cart['totals']['total'])}"

    def check_out() -> str:
        body = {
            "cart_id": cart["id"],
            "email": args.email,
            "shipping_address": {
                "name": "Storefront smoke test",
                "line1": "1 Test Street",
                "city": "Testing",
                "postal_code": "10117",
                "country": shop["default_country"],
            },
        }
        order = _json(api.post("/checkout", json=body, headers={"idempotency-key": str(uuid.uuid4())}), 202)
        made.order_id = order["id"]
        return f"POST /checkout: order {order['id']} {order['status']}"

    def await_payment() -> str:
        def awaiting() -> dict[str, Any] | None:
            order = _json(api.get(f"/orders/{made.order_id}"), 200)
            if order["status"] not in {"pending", "awaiting_payment"}:
                raise StepFailed(f"order {made.order_id} ended {order['status']}: {order.get('reason')}")
            return order if order["status"] == "awaiting_payment" and order["payment"] else None

        order = _wait_for(f"order {made.order_id} awaiting_payment", awaiting)
        payment = order["payment"]
        return f"order awaiting_payment: stock reserved, {payment['provider']} payment {payment['payment_id']}"

    def cancel() -> str:
        def cancelled() -> dict[str, Any] | None:
            response = api.post(
                f"/admin/orders/{made.order_id}/cancel", json={"reason": CANCEL_REASON}, headers=headers
            )
            if response.status_code == 409 and response.json().get("code") == "request_in_progress":
                return None  # the order is moving this instant: ask again
            return _json(response, 200)

        order = _wait_for(f"cancelling order {made.order_id}", cancelled)
        made.cancelled = order["status"] == "cancelled"
        if not made.cancelled:
            raise StepFailed(f"POST /admin/orders/{made.order_id}/cancel: status {order['status']}")
        return f"POST /admin/orders/{made.order_id}/cancel: cancelled"

    def stock_released() -> str:
        def available() -> int | None:
            product = _json(api.get(f"/products/{made.product_id}"), 200)
            units = next(v["available"] for v in product["variants"] if v["sku"] == made.sku)
            return units if units >= made.available_before else None

        units = _wait_for(
            f"{made.sku} available again ({made.available_before}; a sale meanwhile keeps it lower)", available
        )
        return f"GET /products/{made.product_id}: {made.sku} has {units} available again"

    steps: list[tuple[str, Callable[[], str]]] = [
        ("shop", read_shop),
        ("catalog", pick_variant),
        ("admin token", sign_in),
        ("cart", fill_cart),
        ("shipping", choose_shipping),
        ("checkout", check_out),
        ("payment", await_payment),
        ("cancel", cancel),
        ("stock", stock_released),
    ]
    try:
        for name, step in steps:
            report.step(name, step)
    except StepFailed:
        if made.order_id and not made.cancelled and headers:
            _cancel_after_failure(api, made.order_id, headers, out)
    verdict = "FAILED" if report.failed else "passed"
    print(f"Smoke test {verdict} in {time.monotonic() - report.started:.1f} s", file=out, flush=True)
    return not report.failed


def _cancel_after_failure(api: httpx.Client, order_id: str, headers: dict[str, str], out: TextIO) -> None:
    """Undo what the run made, so a failed smoke test holds no stock (the cancel releases it through the saga)."""
    try:
        response = api.post(f"/admin/orders/{order_id}/cancel", json={"reason": CANCEL_REASON}, headers=headers)
        said = f"{response.status_code} {response.json().get('status') or response.json().get('code')}"
    except (httpx.HTTPError, ValueError) as error:
        said = str(error)
    print(f"  cleanup      POST /admin/orders/{order_id}/cancel: {said}", file=out, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ops.smoke", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--api", help="the API's base URL (default: the stack's ApiUrl output)")
    parser.add_argument("--stack", help="a deployed stack: its outputs give ApiUrl and AdminUserPoolClientId")
    parser.add_argument("--region", help="the stack's region (default: the AWS CLI's)")
    parser.add_argument("--token", help="an access token of the group admin")
    parser.add_argument("--admin-user", help="an operator of the group admin (the email they sign in with)")
    parser.add_argument("--admin-password", help=f"their password (default: ${PASSWORD_VARIABLE}, else asked)")
    parser.add_argument("--mfa-code", help="the current TOTP code, when the operator enrolled an authenticator app")
    parser.add_argument("--email", default=SMOKE_EMAIL, help=f"the test order's email (default: {SMOKE_EMAIL})")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per HTTP request (default: 30)")
    args = parser.parse_args(argv)
    if not args.api and not args.stack:
        parser.error("give --api URL, or --stack NAME of a deployed stack")
    if args.admin_user and args.token:
        parser.error("give --token or --admin-user, not both")
    return args


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = parse_args(argv)
    try:
        outputs = _stack_outputs(args.stack, args.region) if args.stack else {}
    except StepFailed as error:
        print(error, file=sys.stderr)
        return 1
    base_url = (args.api or outputs.get("ApiUrl", "")).rstrip("/")
    if not base_url:
        print(f"the stack {args.stack} has no ApiUrl output; give --api", file=sys.stderr)
        return 2
    with httpx.Client(base_url=base_url, timeout=args.timeout) as api:
        return 0 if run(api, args, outputs, out) else 1


if __name__ == "__main__":
    sys.exit(main())
