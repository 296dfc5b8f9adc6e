"""Who calls an admin route: the identity API Gateway's JWT authorizer verified, as FastAPI dependencies.

Functions never verify tokens. The HttpApi's AdminJwt authorizer (template.yaml) checks the signature against
the user pool's keys, the issuer, the audience (the admin page's client id) and the expiry before any function
runs, and passes the token's claims in the payload 2.0 event, which Mangum exposes as `request.scope["aws.event"]`:

    requestContext.authorizer.jwt.claims = {"sub": "...", "username": "...", "cognito:groups": "[admin staff]", ...}

API Gateway renders every claim as a string, and an array claim as its items in brackets separated by spaces
("[admin staff]", which is not JSON); `parse_groups` reads that form, JSON text of a list, and a list.

    @app.get("/admin/orders")
    def list_orders(actor: Operator) -> ...        # group admin or staff, else 403 forbidden
    @app.post("/admin/products")
    def create_product(actor: AdminOnly) -> ...    # group admin only

An event without the authorizer's claims (a route deployed without `Auth: {Authorizer: AdminJwt}`) is a 401,
never an anonymous caller.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from storefront.errors import Forbidden, Unauthorized

ADMIN = "admin"  # everything in the admin API
STAFF = "staff"  # reads, and stock adjustments
GROUPS_CLAIM = "cognito:groups"


class Actor(BaseModel):
    """The caller, as their verified token describes them."""

    model_config = ConfigDict(frozen=True)

    sub: str = Field(min_length=1, description="The user's stable id in the pool")
    username: str = Field(min_length=1, description="The pool's username (a UUID when users sign in by email)")
    email: str | None = Field(default=None, description="Only in ID tokens; access tokens carry no email")
    groups: tuple[str, ...] = ()


def parse_groups(value: object) -> tuple[str, ...]:
    """The `cognito:groups` claim as a tuple of group names, in order, without repeats.

    Accepts API Gateway's "[admin staff]", JSON text ('["admin","staff"]'), a list (the token's own form), and a
    single name. Cognito group names cannot contain white space, so splitting on it is exact. Anything else
    (a number, an object) names no group: the caller is then in none, which denies rather than allows.
    """
    items: Any
    if isinstance(value, list):
        items = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            items = json.loads(text) if text.startswith("[") else text.split()
        except ValueError:
            items = text[1:-1].split() if text.endswith("]") else text.split()
    else:
        items = []
    if not isinstance(items, list):
        return ()
    return tuple(dict.fromkeys(item for item in items if isinstance(item, str) and item))


def _claims(event: object) -> dict[str, Any] | None:
    node = event
    for key in ("requestContext", "authorizer", "jwt", "claims"):
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) and node else None


def actor_from_event(event: object) -> Actor:
    """The verified caller of a payload 2.0 event; Unauthorized when the event carries no usable claims."""
    claims = _claims(event)
    if claims is None:
        raise Unauthorized("No verified token reached this route: it must be deployed behind the AdminJwt authorizer.")
    email = claims.get("email")
    try:
        # Validated, not constructed: the claims are untrusted values, and a missing sub or username is refused here.
        return Actor.model_validate(
            {
                "sub": claims.get("sub"),
                "username": claims.get("username") or claims.get("cognito:username"),
                "email": email if isinstance(email, str) and email else None,
                "groups": parse_groups(claims.get(GROUPS_CLAIM)),
            }
        )
    except ValidationError:
        raise Unauthorized("The verified token names no user (sub and username are required).") from None


def current_actor(request: Request) -> Actor:
    """FastAPI dependency: the verified caller, whatever their groups."""
    return actor_from_event(request.scope.get("aws.event"))


def require_groups(*allowed: str) -> Callable[[Actor], Actor]:
    """A FastAPI dependency admitting callers in at least one of `allowed`; others get 403 forbidden."""

    def dependency(actor: Annotated[Actor, Depends(current_actor)]) -> Actor:
        if not set(actor.groups) & set(allowed):
            raise Forbidden(f"This operation needs membership in one of the groups: {', '.join(allowed)}.")
        return actor

    return dependency


Operator = Annotated[Actor, Depends(require_groups(ADMIN, STAFF))]
AdminOnly = Annotated[Actor, Depends(require_groups(ADMIN))]
