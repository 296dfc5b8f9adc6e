"""storefront.auth: the verified caller from API Gateway's payload 2.0 event, and the group checks (through Mangum,
as on Lambda). The claims' form is API Gateway's: every value a string, arrays as "[a b]"."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from storefront.auth import ADMIN, STAFF, Actor, AdminOnly, Operator, actor_from_event, parse_groups
from storefront.errors import Unauthorized
from storefront.http import create_app
from storefront.observability import http_handler

from local_cloud.functions import LambdaContext
from local_cloud.gateway import build_event
from local_cloud.template import Route

CONTEXT = LambdaContext("test", "arn:aws:lambda:us-east-1:123456789012:function:test", 128, 3)
# An access token's claims as API Gateway passes them (numbers as strings, the groups array as "[...]").
ACCESS_CLAIMS = {
    "sub": "0f6c1b52-4d0e-4b4e-9d51-2f4f1c0d9a11",
    "username": "0f6c1b52-4d0e-4b4e-9d51-2f4f1c0d9a11",
    "iss": "https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_AbCdEf123",
    "client_id": "4k1ab3xyz",
    "token_use": "access",
    "scope": "aws.cognito.signin.user.admin",
    "exp": "1796072818",
    "iat": "1796069218",
    "cognito:groups": "[admin staff]",
}


@pytest.mark.parametrize(
    ("claim", "groups"),
    [
        ("[admin staff]", ("admin", "staff")),  # API Gateway's rendering of an array claim
        ("[admin]", ("admin",)),
        ("[]", ()),
        ('["admin","staff"]', ("admin", "staff")),  # JSON text of the list
        ('["staff", "admin", "staff"]', ("staff", "admin")),  # order kept, repeats dropped
        (["admin", "staff"], ("admin", "staff")),  # the token's own form
        ("admin", ("admin",)),  # one name, as a string
        (" [ admin  staff ] ", ("admin", "staff")),
        ("[admin], [staff]", ("admin],", "[staff")),  # not a form API Gateway makes: names no real group
        ("", ()),
        (None, ()),
        (42, ()),
        ({"admin": True}, ()),
        ([1, None, "admin", ""], ("admin",)),
        ("[1, 2]", ()),  # JSON, but of no group names
        ('{"groups": ["admin"]}', ('{"groups":', '["admin"]}')),  # JSON of an object is no list: names no real group
    ],
)
def test_parse_groups(claim: object, groups: tuple[str, ...]) -> None:
    assert parse_groups(claim) == groups


def _event(authorizer: Any = None, *, with_context: bool = True) -> dict[str, Any]:
    event = build_event(
        Route("GET", "/admin/x", "AdminFunction", "AdminJwt"),
        "GET",
        "/admin/x",
        [("host", "localhost")],
        b"",
        {},
        "127.0.0.1",
        authorizer,
    )
    if not with_context:
        del event["requestContext"]
    return event


def test_actor_from_an_access_tokens_claims() -> None:
    actor = actor_from_event(_event({"jwt": {"claims": ACCESS_CLAIMS, "scopes": None}}))
    assert actor == Actor(
        sub=ACCESS_CLAIMS["sub"], username=ACCESS_CLAIMS["username"], email=None, groups=("admin", "staff")
    )


def test_actor_from_an_id_tokens_claims() -> None:
    claims = {
        "sub": "s-1",
        "cognito:username": "s-1",
        "email": "ada@example.com",
        "aud": "4k1ab3xyz",
        "token_use": "id",
        "cognito:groups": "[staff]",
    }
    actor = actor_from_event(_event({"jwt": {"claims": claims, "scopes": None}}))
    assert (actor.username, actor.email, actor.groups) == ("s-1", "ada@example.com", ("staff",))


@pytest.mark.parametrize(
    "authorizer",
    [
        None,  # a route deployed without the authorizer: no requestContext.authorizer at all
        {},
        {"jwt": None},
        {"jwt": {"claims": {}, "scopes": None}},
        {"jwt": {"claims": "sub=x", "scopes": None}},
        {"lambda": {"sub": "x"}},  # another kind of authorizer is no JWT authorizer
        {"jwt": {"claims": {"username": "no-sub"}, "scopes": None}},
        {"jwt": {"claims": {"sub": "no-username"}, "scopes": None}},
        {"jwt": {"claims": {"sub": 7, "username": "u"}, "scopes": None}},
        {"jwt": {"claims": {"sub": "", "username": "u"}, "scopes": None}},
    ],
)
def test_no_usable_claims_is_unauthorized(authorizer: Any) -> None:
    with pytest.raises(Unauthorized):
        actor_from_event(_event(authorizer))


@pytest.mark.parametrize("event", [None, "x", [], {}, {"requestContext": None}, {"requestContext": {"authorizer": []}}])
def test_malformed_events_are_unauthorized(event: object) -> None:
    with pytest.raises(Unauthorized):
        actor_from_event(event)


def _handler() -> Any:
    app = create_app("auth test")

    @app.get("/admin/read")
    def read(actor: Operator) -> dict[str, Any]:
        return {"sub": actor.sub, "groups": list(actor.groups)}

    @app.get("/admin/write")
    def write(actor: AdminOnly) -> dict[str, Any]:
        return {"sub": actor.sub}

    return http_handler(app, Logger(service="test"))


HANDLER = _handler()


def _call(path: str, groups: str | None, *, authorized: bool = True) -> tuple[int, dict[str, Any]]:
    claims = (
        {**ACCESS_CLAIMS, "cognito:groups": groups}
        if groups is not None
        else {k: v for k, v in ACCESS_CLAIMS.items() if k != "cognito:groups"}
    )
    event = build_event(
        Route("GET", path, "AdminFunction", "AdminJwt"),
        "GET",
        path,
        [("host", "localhost")],
        b"",
        {},
        "127.0.0.1",
        {"jwt": {"claims": claims, "scopes": None}} if authorized else None,
    )
    response = HANDLER(event, CONTEXT)
    return response["statusCode"], json.loads(response["body"])


@pytest.mark.parametrize(
    ("path", "groups", "status"),
    [
        ("/admin/read", f"[{ADMIN}]", 200),
        ("/admin/read", f"[{STAFF}]", 200),
        ("/admin/read", f"[{STAFF} {ADMIN}]", 200),
        ("/admin/read", "[]", 403),
        ("/admin/read", None, 403),  # a user in no group has no cognito:groups claim at all
        ("/admin/read", "[administrators]", 403),
        ("/admin/write", f"[{ADMIN}]", 200),
        ("/admin/write", f"[{STAFF}]", 403),
        ("/admin/write", f"[{STAFF} {ADMIN}]", 200),
        ("/admin/write", '["admin"]', 200),
    ],
)
def test_routes_admit_only_their_groups(path: str, groups: str | None, status: int) -> None:
    got, body = _call(path, groups)
    assert got == status, body
    if status == 403:
        assert (body["code"], body["status"]) == ("forbidden", 403)
    else:
        assert body["sub"] == ACCESS_CLAIMS["sub"]


@pytest.mark.parametrize("path", ["/admin/read", "/admin/write"])
def test_a_route_without_the_authorizer_refuses_with_401_not_500(path: str) -> None:
    event = build_event(
        Route("GET", path, "AdminFunction"),
        "GET",
        path,
        [("host", "localhost"), ("authorization", "Bearer eyJ-not-verified-by-anyone")],
        b"",
        {},
        "127.0.0.1",
    )
    response = HANDLER(event, CONTEXT)
    assert response["statusCode"] == 401
    assert response["headers"]["content-type"] == "application/problem+json"
    assert response["headers"]["www-authenticate"] == "Bearer"
    assert json.loads(response["body"])["code"] == "unauthorized"
