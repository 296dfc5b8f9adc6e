"""Admin sign-in end to end on the local cloud, over HTTP: the template's user pool in moto, the API Gateway
emulation enforcing the AdminJwt authorizer on GET /admin/me, and the admin function's group check.

Edge-case tokens are signed with moto's own signing key (published in moto's package), so each one differs from
an accepted token in exactly one way; a control token made the same way is accepted.
"""

from __future__ import annotations

import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey
from moto.utilities.utils import load_resource

from local_cloud.__main__ import run_invoke
from local_cloud.cloud import LocalCloud
from local_cloud.demo_data import DEMO_ORDER_ID
from local_cloud.gateway import Gateway
from local_cloud.template import Route, Template
from local_cloud.user_pool import LocalUserPool, strong_password

EVENTS = Path(__file__).resolve().parents[2] / "events" / "admin"
POOL_KEY = RSAKey.import_key(load_resource("cognitoidp/resources/jwks-private.json"))  # kid "dummy", like moto's tokens
UNAUTHORIZED = {"message": "Unauthorized"}
DROP = object()  # a claim left out


@pytest.fixture(scope="module")
def pool(gateway: Gateway) -> LocalUserPool:
    assert gateway.user_pool is not None, "the template's HttpApi declares no JWT authorizer"
    return gateway.user_pool


@pytest.fixture
def admin_events(cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every event the admin function receives during the test."""
    function = cloud.functions["AdminFunction"]
    received: list[dict[str, Any]] = []
    invoke = function.invoke

    def recording(event: dict[str, Any]) -> Any:
        received.append(event)
        return invoke(event)

    monkeypatch.setattr(function, "invoke", recording)
    return received


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(pool: LocalUserPool, **changes: Any) -> dict[str, Any]:
    """An access token's claims as the pool issues them, changed as asked."""
    now = int(time.time())
    claims = {
        "iss": pool.issuer,
        "sub": "hand-made-sub",
        "username": "hand-made-user",
        "client_id": pool.client_id,
        "token_use": "access",
        "scope": "aws.cognito.signin.user.admin",
        "auth_time": now,
        "iat": now,
        "exp": now + 600,
        "jti": "hand-made",
        "cognito:groups": ["admin"],
        **changes,
    }
    return {name: value for name, value in claims.items() if value is not DROP}


def _sign(claims: dict[str, Any], key: Any = POOL_KEY, alg: str = "RS256", kid: str | None = "dummy") -> str:
    header = {"alg": alg, **({"kid": kid} if kid is not None else {})}
    return jwt.encode(header, claims, key, algorithms=[alg])


def _me(api: httpx.Client, authorization: str | None, **headers: str) -> httpx.Response:
    return api.get(
        "/admin/me", headers={**({"Authorization": authorization} if authorization is not None else {}), **headers}
    )


def _without_alg(key: RSAKey) -> RSAKey:
    """The same key, not bound to RS256 (joserfc would refuse to sign anything else with it)."""
    return RSAKey.import_key({k: v for k, v in key.as_dict(private=True).items() if k != "alg"})


def _alg_none(pool: LocalUserPool) -> str:
    return f"{_b64({'alg': 'none', 'kid': 'dummy'})}.{_b64(_claims(pool))}."


def _tampered(pool: LocalUserPool) -> str:
    """Signed for a user in no group, then the payload swapped for one in group admin (signature kept)."""
    header, _, signature = _sign(_claims(pool, **{"cognito:groups": DROP})).split(".")
    return f"{header}.{_b64(_claims(pool))}.{signature}"


def _changed(**changes: Any) -> Any:
    """A case: the pool's token, signed with the pool's key, with these claims changed."""
    return lambda pool: f"Bearer {_sign(_claims(pool, **changes))}"


def _signed_with(key: Any, alg: str = "RS256", kid: str | None = "dummy") -> Any:
    """A case: the pool's token with right claims, signed otherwise."""
    return lambda pool: f"Bearer {_sign(_claims(pool), key, alg, kid)}"


def _hs256_keyed_with_the_client_id(pool: LocalUserPool) -> str:
    return f"Bearer {_sign(_claims(pool), OctKey.import_key(pool.client_id), 'HS256')}"


def _issuer_in_another_region(pool: LocalUserPool) -> str:
    return f"Bearer {_sign(_claims(pool, iss=pool.issuer.replace('.us-east-1.', '.eu-west-1.')))}"


ANOTHER_CLIENT = "another-app-client"
REFUSED = {
    "no header": lambda pool: None,
    "bearer without a token": lambda pool: "Bearer",
    "garbage": lambda pool: "Bearer not-a-jwt",
    "three garbage parts": lambda pool: "Bearer a.b.c",
    "Basic credentials": lambda pool: "Basic YWRtaW46YWRtaW4=",
    "alg none": lambda pool: f"Bearer {_alg_none(pool)}",
    "HS256 keyed with the client id": _hs256_keyed_with_the_client_id,
    "RS512 with the pool's key": _signed_with(_without_alg(POOL_KEY), "RS512"),
    "a key not the pool's, with the pool's kid": _signed_with(RSAKey.generate_key(2048)),
    "a key not the pool's, with its own kid": _signed_with(RSAKey.generate_key(2048), kid="rotated"),
    "no kid": _signed_with(POOL_KEY, kid=None),
    "tampered payload": lambda pool: f"Bearer {_tampered(pool)}",
    "expired": lambda pool: f"Bearer {_sign(_claims(pool, exp=int(time.time()) - 5))}",
    "no exp": _changed(exp=DROP),
    "not yet valid (nbf)": lambda pool: f"Bearer {_sign(_claims(pool, nbf=int(time.time()) + 300))}",
    "issued in the future (iat)": lambda pool: f"Bearer {_sign(_claims(pool, iat=int(time.time()) + 300))}",
    "foreign issuer": _changed(iss="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_SomeoneElse"),
    "the pool's issuer in another region": _issuer_in_another_region,
    "no issuer": _changed(iss=DROP),
    "wrong client_id": _changed(client_id=ANOTHER_CLIENT),
    "neither aud nor client_id": _changed(client_id=DROP),
    "ID token for another audience": _changed(client_id=DROP, aud=ANOTHER_CLIENT, token_use="id"),
    "wrong aud beside the right client_id (aud wins)": _changed(aud=ANOTHER_CLIENT),
    "wrong token_use": _changed(token_use="refresh"),
    "no token_use": _changed(token_use=DROP),
}


def test_a_token_made_like_the_refused_ones_but_right_is_accepted(api: httpx.Client, pool: LocalUserPool) -> None:
    response = _me(api, f"Bearer {_sign(_claims(pool))}")
    assert response.status_code == 200, response.text
    assert response.json() == {"sub": "hand-made-sub", "username": "hand-made-user", "groups": ["admin"]}


@pytest.mark.parametrize("case", REFUSED)
def test_the_authorizer_refuses_before_the_function_runs(
    case: str, api: httpx.Client, pool: LocalUserPool, admin_events: list[dict[str, Any]]
) -> None:
    response = _me(api, REFUSED[case](pool), Origin="http://localhost:5173")
    assert response.status_code == 401, response.text
    assert response.json() == UNAUTHORIZED
    assert response.headers["content-type"] == "application/json"
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["access-control-allow-origin"] == "http://localhost:5173"  # a page can read the 401
    assert admin_events == [], "the admin function ran for a refused token"


@pytest.mark.parametrize("groups", [["admin"], ["staff"], ["admin", "staff"]])
def test_dev_tokens_of_operators_are_admitted(
    groups: list[str], api: httpx.Client, admin_events: list[dict[str, Any]]
) -> None:
    minted = api.post("/dev/auth/token", json={"groups": groups})
    assert minted.status_code == 200, minted.text
    token = minted.json()
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3600
    response = _me(api, f"Bearer {token['access_token']}")
    assert response.status_code == 200, response.text
    me = response.json()
    assert sorted(me["groups"]) == sorted(groups) and me["sub"] and me["username"]
    assert "email" not in me  # access tokens carry no email
    assert response.headers["cache-control"] == "no-store"
    # What the function received is API Gateway's shape: every claim a string, the groups "[a b]".
    [event] = admin_events
    authorizer = event["requestContext"]["authorizer"]
    assert authorizer["jwt"]["scopes"] is None
    claims = authorizer["jwt"]["claims"]
    assert claims["cognito:groups"].startswith("[") and sorted(claims["cognito:groups"][1:-1].split()) == sorted(groups)
    assert claims["exp"].isdigit() and claims["token_use"] == "access"
    assert all(isinstance(value, str) for value in claims.values())


def test_a_token_without_bearer_is_admitted(api: httpx.Client) -> None:
    token = api.post("/dev/auth/token", json={"groups": ["staff"]}).json()["access_token"]
    assert _me(api, token).status_code == 200


def test_a_valid_token_of_no_group_is_forbidden(api: httpx.Client, admin_events: list[dict[str, Any]]) -> None:
    token = api.post("/dev/auth/token", json={"groups": []}).json()["access_token"]
    response = _me(api, f"Bearer {token}")
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["status"], problem["code"]) == (403, "forbidden")
    assert "cognito:groups" not in admin_events[0]["requestContext"]["authorizer"]["jwt"]["claims"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "the body must be"),
        (b"not json", "the body must be"),
        (b"[]", "the body must be"),
        (b'{"groups": "admin"}', "the body must be"),
        (b'{"groups": [1]}', "the body must be"),
        (b'{"groups": ["admin"], "user": "x"}', "the body must be"),
        (b"{}", "the body must be"),
        (b'{"groups": ["root"]}', "unknown group(s) root"),
        (b'{"groups": ["admin", "Admin"]}', "unknown group(s) Admin"),
    ],
)
def test_dev_token_refuses_bad_bodies(body: bytes, message: str, api: httpx.Client) -> None:
    response = api.post("/dev/auth/token", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert message in response.json()["message"]


def test_id_tokens_are_admitted_and_carry_the_email(api: httpx.Client, pool: LocalUserPool) -> None:
    email, password = "id-token-operator@example.com", strong_password()
    pool.create_user(email, password, ["staff"])
    tokens = pool.sign_in(email, password)
    response = _me(api, f"Bearer {tokens['IdToken']}")
    assert response.status_code == 200, response.text
    assert response.json()["email"] == email and response.json()["groups"] == ["staff"]


def test_the_first_admin_signs_in_as_the_docs_say(api: httpx.Client, pool: LocalUserPool) -> None:
    """docs/architecture.md, "Admin sign-in": admin-create-user with a temporary password, admin-add-user-to-group,
    then the page's USER_PASSWORD_AUTH sign-in, the NEW_PASSWORD_REQUIRED challenge, and /admin/me."""
    cognito, email = pool.cognito, "first-admin@example.com"
    cognito.admin_create_user(
        UserPoolId=pool.pool_id,
        Username=email,
        TemporaryPassword="Temp-Passw0rd-1!",
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
        DesiredDeliveryMediums=["EMAIL"],
    )
    cognito.admin_add_user_to_group(UserPoolId=pool.pool_id, Username=email, GroupName="admin")
    challenge = cognito.initiate_auth(
        ClientId=pool.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": "Temp-Passw0rd-1!"},
    )
    assert challenge["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    with pytest.raises(ClientError) as weak:  # the template's password policy holds in the local pool
        cognito.respond_to_auth_challenge(
            ClientId=pool.client_id,
            ChallengeName="NEW_PASSWORD_REQUIRED",
            Session=challenge["Session"],
            ChallengeResponses={"USERNAME": email, "NEW_PASSWORD": "short1!A"},
        )
    assert weak.value.response["Error"]["Code"] == "InvalidPasswordException"
    signed_in = cognito.respond_to_auth_challenge(
        ClientId=pool.client_id,
        ChallengeName="NEW_PASSWORD_REQUIRED",
        Session=challenge["Session"],
        ChallengeResponses={"USERNAME": email, "NEW_PASSWORD": "A-much-better-Passw0rd"},
    )
    response = _me(api, f"Bearer {signed_in['AuthenticationResult']['AccessToken']}")
    assert response.status_code == 200 and response.json()["groups"] == ["admin"], response.text


def test_the_pool_is_created_from_the_templates_properties(cloud: LocalCloud, pool: LocalUserPool) -> None:
    cognito = pool.cognito
    declared = cloud.template.resources["AdminUserPool"]["Properties"]
    created = cognito.describe_user_pool(UserPoolId=pool.pool_id)["UserPool"]
    assert created["Policies"]["PasswordPolicy"] == declared["Policies"]["PasswordPolicy"]
    assert created["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert created["UsernameAttributes"] == ["email"]
    mfa = cognito.get_user_pool_mfa_config(UserPoolId=pool.pool_id)
    assert (mfa["MfaConfiguration"], mfa["SoftwareTokenMfaConfiguration"]) == ("OPTIONAL", {"Enabled": True})
    client = cognito.describe_user_pool_client(UserPoolId=pool.pool_id, ClientId=pool.client_id)["UserPoolClient"]
    assert "ClientSecret" not in client
    assert sorted(client["ExplicitAuthFlows"]) == ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_PASSWORD_AUTH"]
    assert client["PreventUserExistenceErrors"] == "ENABLED"
    assert sorted(pool.groups()) == ["admin", "staff"]
    resolve = cloud.template.resolve
    assert resolve({"Ref": "AdminUserPool"}) == pool.pool_id
    assert resolve({"Ref": "AdminUserPoolClient"}) == pool.client_id
    assert resolve({"Fn::GetAtt": ["AdminUserPool", "ProviderURL"]}) == pool.issuer
    assert resolve({"Fn::GetAtt": ["AdminUserPool", "ProviderName"]}) == pool.issuer.removeprefix("https://")
    assert resolve({"Fn::GetAtt": ["AdminUserPool", "Arn"]}) == created["Arn"]


def test_moto_issues_tokens_with_cognitos_real_issuer(pool: LocalUserPool) -> None:
    email, password = "issuer-check@example.com", strong_password()
    pool.create_user(email, password, [])
    access = pool.sign_in(email, password)["AccessToken"]
    payload = json.loads(base64.urlsafe_b64decode(access.split(".")[1] + "=="))
    assert payload["iss"] == f"https://cognito-idp.us-east-1.amazonaws.com/{pool.pool_id}"
    assert (payload["client_id"], payload["token_use"]) == (pool.client_id, "access")


def test_a_browser_page_can_sign_in_to_the_local_pool(api: httpx.Client, pool: LocalUserPool) -> None:
    """What the admin page does: read the pool's settings, then call Cognito's InitiateAuth from another origin
    (moto answers the CORS preflight and the unsigned call, as Cognito does), then call the API."""
    settings = api.get("/dev/auth/config").json()
    assert settings == {
        "region": "us-east-1",
        "user_pool_id": pool.pool_id,
        "client_id": pool.client_id,
        "issuer": pool.issuer,
        "cognito_endpoint": pool.endpoint_url,
    }
    email, password = "browser-operator@example.com", strong_password()
    pool.create_user(email, password, ["admin"])
    page = "http://127.0.0.1:3000"
    target = "AWSCognitoIdentityProviderService.InitiateAuth"
    with httpx.Client(base_url=settings["cognito_endpoint"], timeout=30) as cognito:
        preflight = cognito.options(
            "/",
            headers={
                "Origin": page,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-amz-target",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == page
        assert {"content-type", "x-amz-target"} <= {
            h.strip().lower() for h in preflight.headers["access-control-allow-headers"].split(",")
        }
        signed_in = cognito.post(
            "/",
            headers={"Origin": page, "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target},
            content=json.dumps(
                {
                    "ClientId": settings["client_id"],
                    "AuthFlow": "USER_PASSWORD_AUTH",
                    "AuthParameters": {"USERNAME": email, "PASSWORD": password},
                }
            ),
        )
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.headers["access-control-allow-origin"] == page
    access_token = signed_in.json()["AuthenticationResult"]["AccessToken"]
    assert _me(api, f"Bearer {access_token}").json()["groups"] == ["admin"]


def test_signing_out_revokes_the_refresh_token(pool: LocalUserPool) -> None:
    """The admin page's sign-out: RevokeToken, which moto lacks (local_cloud/moto_fixes.py, 8). A refresh token
    refreshes until it is revoked, and never after; another client's token is not revoked through this client."""
    from botocore.exceptions import ClientError

    email, password = "signing-out@example.com", strong_password()
    pool.create_user(email, password, ["staff"])
    refresh = pool.sign_in(email, password)["RefreshToken"]

    def refreshed() -> bool:
        try:
            pool.cognito.initiate_auth(
                ClientId=pool.client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": refresh}
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "NotAuthorizedException":
                raise  # anything but the refusal fails the test
            return False
        return True

    assert refreshed()
    other = pool.cognito.create_user_pool_client(UserPoolId=pool.pool_id, ClientName="other")["UserPoolClient"]
    with pytest.raises(ClientError, match="NotAuthorizedException"):
        pool.cognito.revoke_token(Token=refresh, ClientId=other["ClientId"])
    assert refreshed()
    pool.cognito.revoke_token(Token=refresh, ClientId=pool.client_id)
    assert not refreshed()
    pool.cognito.revoke_token(Token=refresh, ClientId=pool.client_id)  # again: answered as Cognito does, 200


def test_concurrent_callers_each_get_their_own_answer(api: httpx.Client, pool: LocalUserPool) -> None:
    """Forged and valid tokens at once, the key set shared: nobody is let in on someone else's verification."""
    admin = api.post("/dev/auth/token", json={"groups": ["admin"]}).json()["access_token"]
    nobody = api.post("/dev/auth/token", json={"groups": []}).json()["access_token"]
    forged = _sign(_claims(pool), RSAKey.generate_key(2048))
    cases = [
        (f"Bearer {admin}", 200),
        (f"Bearer {nobody}", 403),
        (f"Bearer {forged}", 401),
        (f"Bearer {_alg_none(pool)}", 401),
    ] * 10

    def call(case: tuple[str, int]) -> tuple[int, int]:
        with httpx.Client(base_url=str(api.base_url), timeout=30) as client:
            return _me(client, case[0]).status_code, case[1]

    with ThreadPoolExecutor(max_workers=8) as pool_of_callers:
        results = list(pool_of_callers.map(call, cases))
    assert all(got == expected for got, expected in results), results


def test_the_sample_event_runs_the_admin_function(cloud: LocalCloud) -> None:
    """events/admin/get-me.json (make invoke FUNCTION=AdminFunction EVENT=...) carries claims as API Gateway does."""
    result, failed = run_invoke(cloud, "AdminFunction", json.loads((EVENTS / "get-me.json").read_text()))
    assert not failed and result["statusCode"] == 200, result
    assert json.loads(result["body"])["groups"] == ["admin", "staff"]


def test_the_aws_cli_reaches_the_local_pool(pool: LocalUserPool) -> None:
    """The same calls the docs give for AWS, against the local endpoint the banner prints."""
    cognito = boto3.client("cognito-idp", region_name=pool.region, endpoint_url=pool.endpoint_url)
    assert {g["GroupName"] for g in cognito.list_groups(UserPoolId=pool.pool_id)["Groups"]} == {"admin", "staff"}


# ---------------------------------------------------------------- every admin route, not only /admin/me

ADMIN_ROUTES = [route for route in Template.load().routes() if route.authorizer is not None]
# The routes only group admin may call; staff may call the others (reads, and stock).
ADMIN_ONLY = {
    "POST /admin/categories",
    "PUT /admin/categories/{category_id}",
    "POST /admin/products",
    "PUT /admin/products/{product_id}",
    "DELETE /admin/products/{product_id}",
    "POST /admin/products/{product_id}/images",
    "GET /admin/audit",
    "POST /admin/orders/{order_id}/cancel",
    "POST /admin/orders/{order_id}/refunds",
}
PATH_VALUES = {"product_id": "linen-shirt", "sku": "LINEN-SHIRT-M", "order_id": DEMO_ORDER_ID, "category_id": "home"}
# A valid body for each write, so that a refusal is the token's or the group's, never the body's.
BODIES: dict[str, Any] = {
    "POST /admin/categories": {"id": "auth-matrix", "name": "Auth"},
    "PUT /admin/categories/{category_id}": {"name": "Renamed by a refused call"},
    "POST /admin/products": {
        "id": "auth-matrix",
        "name": "Auth",
        "description": "",
        "category": "home",
        "status": "active",
        "images": [],
        "variants": [{"sku": "AUTH-MATRIX", "title": "One", "price": {"amount": 1, "currency": "EUR"}}],
    },
    "PUT /admin/products/{product_id}": {
        "name": "Taken over",
        "description": "",
        "category": "home",
        "status": "archived",
        "images": [],
        "variants": [{"sku": "LINEN-SHIRT-M", "title": "M", "price": {"amount": 1, "currency": "EUR"}}],
    },
    "POST /admin/products/{product_id}/images": {"content_type": "image/png", "size": 100},
    "POST /admin/inventory/{sku}/adjustments": {"delta": -1, "reason": "lost"},
    "PATCH /admin/inventory/{sku}": {"low_stock_threshold": 99},
    "POST /admin/orders/{order_id}/cancel": {"reason": "a refused call"},
    "POST /admin/orders/{order_id}/refunds": {"reason": "a refused call", "restock": False},
}
MATRIX_CASES = [
    "no header",
    "alg none",
    "tampered payload",
    "expired",
    "foreign issuer",
    "a key not the pool's, with the pool's kid",
    "wrong client_id",
]


def _call(api: httpx.Client, route: Route, authorization: str | None) -> httpx.Response:
    path = route.path.format(**{name: value for name, value in PATH_VALUES.items() if "{" + name + "}" in route.path})
    headers = {"Idempotency-Key": "auth-matrix", **({"Authorization": authorization} if authorization else {})}
    return api.request(route.method, path, json=BODIES.get(route.route_key), headers=headers)


def test_the_matrix_covers_every_write() -> None:
    writes = {route.route_key for route in ADMIN_ROUTES if route.method not in ("GET", "DELETE")}
    assert writes == set(BODIES), "a new admin write needs a body in BODIES"


@pytest.mark.parametrize("case", MATRIX_CASES)
@pytest.mark.parametrize("route", ADMIN_ROUTES, ids=lambda route: route.route_key)
def test_every_admin_route_refuses_bad_tokens_before_its_function_runs(
    route: Route, case: str, api: httpx.Client, pool: LocalUserPool, admin_events: list[dict[str, Any]]
) -> None:
    response = _call(api, route, REFUSED[case](pool))
    assert (response.status_code, response.json()) == (401, UNAUTHORIZED)
    assert admin_events == []


@pytest.mark.parametrize("route", ADMIN_ROUTES, ids=lambda route: route.route_key)
def test_every_admin_route_answers_403_to_a_group_it_does_not_admit_and_writes_nothing(
    route: Route, api: httpx.Client, cloud: LocalCloud
) -> None:
    before = _snapshot(cloud)
    callers = [[]] + ([["staff"]] if route.route_key in ADMIN_ONLY else [])
    for groups in callers:
        token = api.post("/dev/auth/token", json={"groups": groups}).json()["access_token"]
        response = _call(api, route, f"Bearer {token}")
        assert response.status_code == 403, (groups, response.text)
        assert response.json()["code"] == "forbidden"
    assert _snapshot(cloud) == before


@pytest.mark.parametrize("route", [r for r in ADMIN_ROUTES if r.method == "GET"], ids=lambda route: route.route_key)
def test_staff_read_everything_but_the_audit_log(route: Route, api: httpx.Client) -> None:
    token = api.post("/dev/auth/token", json={"groups": ["staff"]}).json()["access_token"]
    status = _call(api, route, f"Bearer {token}").status_code
    assert status == (403 if route.route_key in ADMIN_ONLY else 200)


def _snapshot(cloud: LocalCloud) -> dict[str, Any]:
    """What a refused write could have touched: the demo shirt, its stock level, the catalog's categories, the demo
    order."""
    dynamodb = cloud.client("dynamodb")

    def item(table: str, pk: str, sk: str) -> Any:
        return dynamodb.get_item(
            TableName=cloud.physical_id(table), Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
        ).get("Item")

    return {
        "product": item("CatalogTable", "PRODUCT#linen-shirt", "PRODUCT"),
        "new product": item("CatalogTable", "PRODUCT#auth-matrix", "PRODUCT"),
        "category": item("CatalogTable", "CATEGORY", "home"),
        "level": item("InventoryTable", "SKU#LINEN-SHIRT-M", "LEVEL"),
        "order": item("OrdersTable", f"ORDER#{DEMO_ORDER_ID}", "ORDER"),
    }
