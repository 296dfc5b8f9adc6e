"""The admin API for operator tools (python -m ops.import_catalog, python -m ops.export_catalog): signing in, and
calls that wait and retry what may be retried.

Signing in, as the admin page does:
  --token T                 an access token you already have (locally: POST <api>/dev/auth/token {"groups":["admin"]})
  --user EMAIL [--password P]
                            Cognito's USER_PASSWORD_AUTH with the stack's app client: its id and region from
                            --client-id/--region, else from the stack's outputs (--stack), else, on the local stack,
                            from GET <api>/dev/auth/config. The password comes from --password, the environment
                            variable STOREFRONT_ADMIN_PASSWORD, or a prompt. The call is unsigned (no AWS
                            credentials needed), as Cognito takes it from a browser.

What is retried: 429 and 503 (after Retry-After), 502 and 504, and requests that never got an answer. Every write
the tools make may be sent twice: creations are recognised on the second try (409 product_exists), adjustments carry
their Idempotency-Key and PUTs their If-Match.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

PASSWORD_VARIABLE = "STOREFRONT_ADMIN_PASSWORD"  # noqa: S105  the variable's name, not a password
RETRIED_STATUSES = {429, 502, 503, 504}
ATTEMPTS = 6
MAX_WAIT_SECONDS = 10.0


class SignInError(Exception):
    """Signing in failed; the message says why and what to do."""


@dataclass
class ApiProblem(Exception):
    """An answer the tools do not retry: the API's RFC 9457 problem (or API Gateway's own {"message"}), or no answer."""

    status: int  # 0: no answer at all
    code: str
    detail: str
    errors: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.status or 'no answer'} {self.code}: {self.detail}"

    @classmethod
    def of(cls, response: httpx.Response) -> ApiProblem:
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        errors = body.get("errors") if isinstance(body.get("errors"), list) else []
        return cls(
            response.status_code,
            str(body.get("code") or f"http_{response.status_code}"),
            str(body.get("detail") or body.get("message") or response.reason_phrase),
            errors,
        )


TokenSource = Callable[[], str]  # a fresh access token each time it is called


class AdminApi:
    """Calls of the admin API with a bearer token, safe to share between threads."""

    def __init__(
        self,
        base_url: str,
        token_source: TokenSource,
        connections: int = 4,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token_source = token_source
        self._token = ""
        self._token_lock = threading.Lock()
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AdminApi:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _bearer(self, renew: bool = False) -> str:
        with self._token_lock:
            if renew or not self._token:
                self._token = self._token_source()
            return self._token

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """The 2xx answer, or ApiProblem. A 401 signs in again once (tokens last an hour; an import may take
        longer)."""
        renewed = False
        for attempt in range(ATTEMPTS):
            token = self._bearer()
            try:
                response = self._http.request(
                    method,
                    path,
                    json=json,
                    params=params,
                    headers={**(headers or {}), "Authorization": f"Bearer {token}"},
                )
            except httpx.TransportError as error:
                if attempt == ATTEMPTS - 1:
                    raise ApiProblem(0, "unreachable", f"{method} {path}: {error!r}") from error
                self._sleep(_backoff(attempt))
                continue
            if response.status_code == 401 and not renewed:
                renewed = True
                self._bearer(renew=True)
                continue
            if response.status_code in RETRIED_STATUSES and attempt < ATTEMPTS - 1:
                self._sleep(_retry_after(response) or _backoff(attempt))
                continue
            if response.is_success:
                return response
            raise ApiProblem.of(response)
        raise AssertionError("unreachable: the last attempt returns or raises")


def _backoff(attempt: int) -> float:
    return min(0.2 * 2**attempt, MAX_WAIT_SECONDS)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return min(max(seconds, 0.0), MAX_WAIT_SECONDS)


# ---------------------------------------------------------------- signing in


def add_sign_in_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api",
        required=True,
        help="the API's base URL: the stack's ApiUrl output, or the local stack's (http://127.0.0.1:3000)",
    )
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--token", help="an access token of the operators' user pool")
    who.add_argument("--user", help="an operator's email: sign in to the user pool with the password")
    parser.add_argument("--password", help=f"the operator's password (else ${PASSWORD_VARIABLE}, else a prompt)")
    parser.add_argument("--client-id", help="the user pool's app client id (the stack's AdminUserPoolClientId)")
    parser.add_argument("--region", help="the user pool's region")
    parser.add_argument("--stack", help="read the app client id from this stack's outputs")


def token_source(args: argparse.Namespace, environ: dict[str, str] | None = None) -> TokenSource:
    """How the tools get an access token, from add_sign_in_arguments' arguments. Raises SignInError."""
    if args.token:
        token, calls = args.token.removeprefix("Bearer ").strip(), 0

        def given() -> str:
            nonlocal calls
            calls += 1
            if calls > 1:  # asked again: the API refused it (401), so it expired or is not the stack's pool's
                raise SignInError("the API refused the token (401): it expired or is not the stack's; get a new one")
            return token

        return given
    environ = dict(os.environ) if environ is None else environ
    password = args.password or environ.get(PASSWORD_VARIABLE)
    if not password:
        if not sys.stdin.isatty():
            raise SignInError(f"no password: give --password, set {PASSWORD_VARIABLE}, or run in a terminal")
        password = getpass.getpass(f"Password for {args.user}: ")
    client_id, region, endpoint = pool_settings(args)
    return lambda: cognito_sign_in(args.user, password, client_id, region, endpoint)


def pool_settings(args: argparse.Namespace) -> tuple[str, str, str | None]:
    """(app client id, region, Cognito endpoint or None for AWS's own) from the arguments, the stack, or the local
    stack's GET /dev/auth/config."""
    if args.client_id:
        if not args.region:
            raise SignInError("--client-id needs --region")
        return args.client_id, args.region, None
    if args.stack:
        import boto3

        stacks = boto3.client("cloudformation", region_name=args.region).describe_stacks(StackName=args.stack)
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks["Stacks"][0].get("Outputs", [])}
        if "AdminUserPoolClientId" not in outputs:
            raise SignInError(f"the stack {args.stack} has no AdminUserPoolClientId output")
        region = args.region or stacks["Stacks"][0]["StackId"].split(":")[3]
        return outputs["AdminUserPoolClientId"], region, None
    try:
        answer = httpx.get(f"{args.api.rstrip('/')}/dev/auth/config", timeout=10)
    except httpx.TransportError as error:
        raise SignInError(f"cannot reach {args.api}: {error!r}") from None
    if answer.status_code != 200:
        raise SignInError(
            "give --client-id and --region, or --stack: only the local stack tells its user pool (GET /dev/auth/config)"
        )
    config = answer.json()
    return config["client_id"], config["region"], config["cognito_endpoint"]


def cognito_sign_in(user: str, password: str, client_id: str, region: str, endpoint: str | None) -> str:
    """An access token from InitiateAuth (USER_PASSWORD_AUTH), unsigned as a browser sends it."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config
    from botocore.exceptions import ClientError

    cognito = boto3.client(
        "cognito-idp",
        region_name=region,
        endpoint_url=endpoint,
        config=Config(signature_version=UNSIGNED, retries={"mode": "standard"}),
    )
    try:
        answer = cognito.initiate_auth(
            ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": user, "PASSWORD": password}
        )
    except ClientError as error:
        raise SignInError(f"sign-in refused: {error.response['Error'].get('Message') or error}") from None
    if "AuthenticationResult" in answer:
        return str(answer["AuthenticationResult"]["AccessToken"])
    challenge = answer.get("ChallengeName")
    if challenge == "NEW_PASSWORD_REQUIRED":
        raise SignInError("this operator must choose a new password first: sign in once on the admin page (/manage/)")
    if challenge == "SOFTWARE_TOKEN_MFA" and sys.stdin.isatty():
        code = input("Code from your authenticator app: ").strip()
        try:
            answer = cognito.respond_to_auth_challenge(
                ClientId=client_id,
                ChallengeName=challenge,
                Session=answer["Session"],
                ChallengeResponses={"USERNAME": user, "SOFTWARE_TOKEN_MFA_CODE": code},
            )
        except ClientError as error:
            raise SignInError(f"sign-in refused: {error.response['Error'].get('Message') or error}") from None
        return str(answer["AuthenticationResult"]["AccessToken"])
    raise SignInError(f"sign-in asks for {challenge}, which this tool cannot answer here; use --token")
