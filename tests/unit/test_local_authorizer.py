"""local_cloud.authorizer in-process, with a key set of its own: claim rendering, key caching and rotation, the
token's header, and the parts of a template it refuses to emulate. The whole refusal matrix runs over HTTP against
the user pool in tests/integration/test_admin_auth.py."""

from __future__ import annotations

import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from local_cloud.authorizer import Jwks, JwtAuthorizer, jwt_authorizers, local_discovery_url, render_claim

ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_unit"
CLIENT_ID = "unit-client"
SETTINGS = {
    "IdentitySource": "$request.header.Authorization",
    "JwtConfiguration": {"issuer": ISSUER, "audience": [CLIENT_ID]},
}


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        ("text", "text"),
        (1796069218, "1796069218"),
        (1.5, "1.5"),
        (True, "true"),
        (["admin", "staff"], "[admin staff]"),
        (["one"], "[one]"),
        ([], "[]"),
        ([1, "a"], "[1 a]"),
        ({"city": "Berlin"}, '{"city":"Berlin"}'),
        (None, None),
    ],
)
def test_claims_are_rendered_as_api_gateway_renders_them(value: Any, rendered: str | None) -> None:
    assert render_claim(value) == rendered


class KeyServer:
    """A key set served by a fake fetch that counts its calls."""

    def __init__(self, *keys: RSAKey) -> None:
        self.keys = list(keys)
        self.fetches = 0

    def fetch(self) -> dict[str, Any]:
        self.fetches += 1
        return {"keys": [key.as_dict(private=False) for key in self.keys]}


def _key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "alg": "RS256", "use": "sig"})


def _token(key: RSAKey, **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": ISSUER,
        "sub": "s",
        "username": "u",
        "client_id": CLIENT_ID,
        "token_use": "access",
        "iat": now,
        "exp": now + 600,
        "cognito:groups": ["admin"],
        **claims,
    }
    return jwt.encode({"alg": "RS256", "kid": key.kid}, payload, key)


def test_keys_are_fetched_once_then_again_only_for_an_unknown_kid() -> None:
    old, new = _key("old"), _key("new")
    server = KeyServer(old)
    jwks = Jwks(server.fetch)
    assert jwks.key("old") is not None and server.fetches == 1
    assert jwks.key("old") is not None and server.fetches == 1  # cached
    assert jwks.key("new") is None and server.fetches == 2  # unknown: fetched again, still unknown
    server.keys.append(new)  # the issuer publishes its next key
    assert jwks.key("new") is not None and server.fetches == 3
    assert jwks.key("old") is not None and server.fetches == 3


def test_a_rotated_key_is_accepted_without_a_restart() -> None:
    old, new = _key("old"), _key("new")
    server = KeyServer(old)
    authorizer = JwtAuthorizer.from_template("AdminJwt", SETTINGS, lambda issuer: Jwks(server.fetch))
    assert authorizer.authorize([("Authorization", f"Bearer {_token(old)}")]) is not None
    assert authorizer.authorize([("Authorization", f"Bearer {_token(new)}")]) is None
    server.keys.append(new)
    assert authorizer.authorize([("Authorization", f"Bearer {_token(new)}")]) is not None


def test_the_context_carries_every_claim_rendered() -> None:
    key = _key("k")
    authorizer = JwtAuthorizer.from_template("AdminJwt", SETTINGS, lambda issuer: Jwks(KeyServer(key).fetch))
    token = _token(key, **{"cognito:groups": ["admin", "staff"], "nickname": None, "exp": 4102444800})
    context = authorizer.authorize([("Authorization", token)])
    assert context is not None
    assert context["jwt"]["scopes"] is None
    claims = context["jwt"]["claims"]
    assert claims["cognito:groups"] == "[admin staff]"
    assert claims["exp"] == "4102444800"
    assert "nickname" not in claims
    assert claims["iss"] == ISSUER


@pytest.mark.parametrize(
    "header",
    [
        ("Authorization", "Bearer {token}"),
        ("authorization", "bearer {token}"),
        ("AUTHORIZATION", "{token}"),
        ("Authorization", "  Bearer   {token}  "),
    ],
)
def test_the_token_is_read_with_or_without_bearer(header: tuple[str, str]) -> None:
    key = _key("k")
    authorizer = JwtAuthorizer.from_template("AdminJwt", SETTINGS, lambda issuer: Jwks(KeyServer(key).fetch))
    assert authorizer.authorize([(header[0], header[1].format(token=_token(key)))]) is not None


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [("Authorization", "")],
        [("Authorization", "Bearer")],
        [("Authorization", "Bearer ")],
        [("X-Token", "{token}")],
        [("Authorization", "Basic {token}")],
    ],
)
def test_no_token_in_the_identity_source_is_refused(headers: list[tuple[str, str]]) -> None:
    key = _key("k")
    server = KeyServer(key)
    authorizer = JwtAuthorizer.from_template("AdminJwt", SETTINGS, lambda issuer: Jwks(server.fetch))
    assert authorizer.authorize([(n, v.format(token=_token(key))) for n, v in headers]) is None


@pytest.mark.parametrize(
    "claims",
    [
        {"token_use": ["access"]},
        {"token_use": {"access": True}},
        {"client_id": ["unit-client"]},
        {"client_id": {"id": "unit-client"}},
        {"aud": [None, 1]},
        {"exp": "4102444800"},
        {"exp": True},
        {"iss": [ISSUER]},
        {"iat": "now"},
    ],
)
def test_claims_of_the_wrong_type_are_refused_not_crashed_on(claims: dict[str, Any]) -> None:
    key = _key("k")
    authorizer = JwtAuthorizer.from_template("AdminJwt", SETTINGS, lambda issuer: Jwks(KeyServer(key).fetch))
    assert authorizer.authorize([("Authorization", _token(key, **claims))]) is None


def test_an_audience_list_naming_the_client_is_accepted() -> None:
    key = _key("k")
    authorizer = JwtAuthorizer.from_template("AdminJwt", SETTINGS, lambda issuer: Jwks(KeyServer(key).fetch))
    token = _token(key, aud=["someone-else", CLIENT_ID], token_use="id", client_id=None)
    assert authorizer.authorize([("Authorization", token)]) is not None


def test_an_unreachable_key_set_refuses_rather_than_fails() -> None:
    def unreachable() -> dict[str, Any]:
        raise ConnectionRefusedError("moto is down")

    key = _key("k")
    authorizer = JwtAuthorizer.from_template("AdminJwt", SETTINGS, lambda issuer: Jwks(unreachable))
    assert authorizer.authorize([("Authorization", _token(key))]) is None


@pytest.mark.parametrize(
    "settings",
    [
        {**SETTINGS, "AuthorizationScopes": ["admin/read"]},
        {**SETTINGS, "IdentitySource": "$request.querystring.token"},
        {
            "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:authorizer",
            "IdentitySource": "$request.header.X",
        },
    ],
)
def test_authorizers_it_cannot_emulate_fail_loudly(settings: dict[str, Any]) -> None:
    with pytest.raises(NotImplementedError):
        JwtAuthorizer.from_template("Other", settings, lambda issuer: Jwks(dict))


def test_a_default_authorizer_fails_loudly() -> None:
    with pytest.raises(NotImplementedError):
        jwt_authorizers(
            {"Authorizers": {"AdminJwt": SETTINGS}, "DefaultAuthorizer": "AdminJwt"},
            "us-east-1",
            "http://127.0.0.1:5000",
        )


@pytest.mark.parametrize(
    "issuer",
    [
        "https://login.example.com/",
        "https://cognito-idp.eu-west-1.amazonaws.com/p",
        "https://cognito-idp.us-east-1.amazonaws.com/",
        ISSUER + "/extra",
    ],
)
def test_only_this_clouds_user_pools_can_be_issuers(issuer: str) -> None:
    with pytest.raises(NotImplementedError):
        local_discovery_url(issuer, "us-east-1", "http://127.0.0.1:5000")


def test_a_pools_discovery_document_is_served_by_moto() -> None:
    assert (
        local_discovery_url(ISSUER, "us-east-1", "http://127.0.0.1:5000")
        == "http://127.0.0.1:5000/us-east-1_unit/.well-known/openid-configuration"
    )
