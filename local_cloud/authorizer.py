"""API Gateway's JWT authorizer for HTTP APIs, as the local gateway enforces template.yaml's HttpApi `Auth`.

For a route whose `Auth` names an authorizer, before any function runs, as API Gateway documents it
(https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-jwt-authorizer.html):
  1. the token is the IdentitySource header's value, with or without "Bearer ";
  2. the signature must verify with RS256 (nothing else: `none` and HS* are refused) under the key its `kid` names
     in the issuer's key set, found as API Gateway finds it (the issuer's /.well-known/openid-configuration, then
     its jwks_uri); moto serves both for a user pool, so the keys come from moto. They are cached and fetched
     again when a token names a `kid` the cache lacks;
  3. `iss` must equal the configured issuer, Cognito's real https://cognito-idp.<region>.amazonaws.com/<pool id>
     (moto writes that issuer into its tokens, so it is checked as AWS checks it);
  4. `aud`, or `client_id` when the token has no `aud`, must be one of the configured audiences;
  5. `exp` must be in the future; `nbf` and `iat`, where present, not.
  6. `token_use` must be `access` or `id`. API Gateway does not read this claim; Cognito signs only access and ID
     tokens with a pool's keys, so for real tokens this changes nothing, and locally it also refuses tokens made
     by hand with moto's published signing key for any other use.
Any failure answers 401 {"message":"Unauthorized"}. A verified token's claims reach the function as
requestContext.authorizer = {"jwt": {"claims": {...}, "scopes": None}}, each claim rendered as API Gateway
renders it (`render_claim`). Route scopes (AuthorizationScopes), default authorizers, Lambda and IAM authorizers
are not emulated: a template using them fails at gateway start rather than being served unauthenticated.

Local only: none of this is in template.yaml, whose authorizer API Gateway runs itself on AWS.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import Key, KeySet

log = logging.getLogger("local_cloud.authorizer")

ALGORITHMS = ["RS256"]
TOKEN_USES = {"access", "id"}
IDENTITY_HEADER_PREFIX = "$request.header."
SUPPORTED_SETTINGS = {"IdentitySource", "JwtConfiguration"}


def render_claim(value: Any) -> str | None:
    """A claim as API Gateway's payload 2.0 carries it: strings as they are, numbers and booleans as their JSON
    text, arrays as their items in brackets separated by spaces ("[admin staff]", not JSON), objects as JSON
    text; a null claim is left out (None). Measured against real HTTP APIs by other emulators (floci's
    JwtClaimsWireFormatTest) and reported by their users; storefront.auth.parse_groups reads this form."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + " ".join(item if isinstance(item, str) else json.dumps(item) for item in value) + "]"
    return json.dumps(value, separators=(",", ":"))


class Jwks:
    """An issuer's signing keys: fetched on first use, and again whenever a token names a kid they lack
    (API Gateway does the same, so a rotated key is picked up without a restart)."""

    def __init__(self, fetch: Callable[[], Mapping[str, Any]]) -> None:
        self._fetch = fetch
        self._keys: KeySet | None = None
        self._lock = threading.Lock()

    def key(self, kid: str) -> Key | None:
        with self._lock:
            key = self._find(kid)
            if key is None:
                self._keys = KeySet.import_key_set(dict(self._fetch()))  # type: ignore[arg-type]
                key = self._find(kid)
            return key

    def _find(self, kid: str) -> Key | None:
        return next((key for key in self._keys or [] if key.kid == kid), None)


@dataclass(frozen=True)
class JwtAuthorizer:
    name: str
    issuer: str
    audiences: tuple[str, ...]
    header: str  # the IdentitySource header, lower case
    jwks: Jwks

    @classmethod
    def from_template(cls, name: str, settings: Mapping[str, Any], jwks_of: Callable[[str], Jwks]) -> JwtAuthorizer:
        """From an HttpApi `Auth.Authorizers` entry whose intrinsics are resolved; `jwks_of(issuer)` finds its keys."""
        unsupported = set(settings) - SUPPORTED_SETTINGS
        identity = settings.get("IdentitySource", f"{IDENTITY_HEADER_PREFIX}Authorization")
        if unsupported or "JwtConfiguration" not in settings or not identity.startswith(IDENTITY_HEADER_PREFIX):
            raise NotImplementedError(
                f"authorizer {name}: the local gateway emulates JWT authorizers reading a header, "
                f"without {sorted(unsupported) or 'other identity sources'}"
            )
        configuration = settings["JwtConfiguration"]
        return cls(
            name=name,
            issuer=configuration["issuer"],
            audiences=tuple(configuration["audience"]),
            header=identity.removeprefix(IDENTITY_HEADER_PREFIX).lower(),
            jwks=jwks_of(configuration["issuer"]),
        )

    def authorize(self, headers: list[tuple[str, str]]) -> dict[str, Any] | None:
        """The event's requestContext.authorizer for a request's headers, or None: refuse it with 401."""
        token = next((value for name, value in headers if name.lower() == self.header), "").strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        if not token:
            return None
        try:
            claims = jwt.decode(token, self._key, algorithms=ALGORITHMS).claims
            jwt.JWTClaimsRegistry(iss={"essential": True, "value": self.issuer}, exp={"essential": True}).validate(
                claims
            )
        except (JoseError, ValueError, TypeError) as error:  # joserfc's errors, and malformed base64 or JSON
            log.info("%s refused a token: %s", self.name, error.__class__.__name__)
            return None
        except OSError:
            log.warning("%s could not fetch the issuer's keys", self.name, exc_info=True)
            return None
        if "aud" in claims:  # aud wins when both are there; only aud may be a list (RFC 7519)
            audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        else:
            audiences = [claims.get("client_id")]
        if not any(isinstance(a, str) and a in self.audiences for a in audiences):
            log.info("%s refused a token: not for its audience", self.name)
            return None
        token_use = claims.get("token_use")
        if not isinstance(token_use, str) or token_use not in TOKEN_USES:
            log.info("%s refused a token: token_use %r", self.name, token_use)
            return None
        rendered = {name: text for name, value in claims.items() if (text := render_claim(value)) is not None}
        return {"jwt": {"claims": rendered, "scopes": None}}  # scopes: only for routes with AuthorizationScopes

    def _key(self, token: Any) -> Key:
        """joserfc's key resolver: the issuer's key the token's `kid` names, and no other."""
        kid = token.headers().get("kid")
        key = self.jwks.key(kid) if isinstance(kid, str) and kid else None
        if key is None:
            raise InvalidKeyIdError(f"no key {kid!r} in the issuer's key set")
        return key


def fetch_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        document = json.loads(response.read())
    if not isinstance(document, dict):
        raise ValueError(f"{url} is not a JSON object")
    return document


def local_discovery_url(issuer: str, region: str, moto_endpoint: str) -> str:
    """Where the local cloud serves an issuer's OpenID discovery document: only this cloud's user pools can be
    reached, so an issuer is https://cognito-idp.<region>.amazonaws.com/<pool id>, served by moto."""
    cognito = f"https://cognito-idp.{region}.amazonaws.com/"
    pool_id = issuer.removeprefix(cognito)
    if not issuer.startswith(cognito) or not pool_id or "/" in pool_id:
        raise NotImplementedError(f"issuer {issuer}: the local gateway reaches only this cloud's Cognito user pools")
    return f"{moto_endpoint}/{pool_id}/.well-known/openid-configuration"


def jwt_authorizers(api_auth: Mapping[str, Any], region: str, moto_endpoint: str) -> dict[str, JwtAuthorizer]:
    """The authorizers of an HttpApi's resolved `Auth` property, by name."""
    if set(api_auth) - {"Authorizers"}:
        raise NotImplementedError(f"HttpApi Auth {sorted(set(api_auth) - {'Authorizers'})} is not emulated locally")

    def jwks_of(issuer: str) -> Jwks:
        discovery = local_discovery_url(issuer, region, moto_endpoint)
        return Jwks(lambda: fetch_json(fetch_json(discovery)["jwks_uri"]))

    return {
        name: JwtAuthorizer.from_template(name, settings, jwks_of)
        for name, settings in api_auth.get("Authorizers", {}).items()
    }
