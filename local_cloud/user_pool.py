"""The user pool behind the API's JWT authorizer, in moto, and what the local stack does with it: seed the operator
`make dev` prints, and mint real pool tokens for scripts and tests (POST /dev/auth/token). Local only.

Every token comes from the pool's own sign-in API (InitiateAuth with USER_PASSWORD_AUTH through the template's app
client), never from hand-made JWTs, so it is exactly what an operator's browser would get.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any

SYMBOLS = "!#$%&*+-=?@^_"


def strong_password(length: int = 20) -> str:
    """A random password meeting any Cognito password policy up to `length` characters: every class present."""
    classes = [string.ascii_uppercase, string.ascii_lowercase, string.digits, SYMBOLS]
    alphabet = "".join(classes)
    characters = [secrets.choice(c) for c in classes] + [secrets.choice(alphabet) for _ in range(length - len(classes))]
    secrets.SystemRandom().shuffle(characters)
    return "".join(characters)


@dataclass(frozen=True)
class LocalUserPool:
    cognito: Any  # a boto3 cognito-idp client pointed at moto
    pool_id: str
    client_id: str
    region: str
    endpoint_url: str  # where a browser or the AWS CLI reaches this pool's Cognito API (moto)

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.pool_id}"

    def groups(self) -> list[str]:
        return [group["GroupName"] for group in self.cognito.list_groups(UserPoolId=self.pool_id)["Groups"]]

    def create_user(self, email: str, password: str, groups: list[str]) -> None:
        """An operator with a permanent password (no invitation email, no first-sign-in password change)."""
        self.cognito.admin_create_user(
            UserPoolId=self.pool_id,
            Username=email,
            MessageAction="SUPPRESS",
            TemporaryPassword=strong_password(),
            UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
        )
        self.cognito.admin_set_user_password(UserPoolId=self.pool_id, Username=email, Password=password, Permanent=True)
        for group in groups:
            self.cognito.admin_add_user_to_group(UserPoolId=self.pool_id, Username=email, GroupName=group)

    def sign_in(self, username: str, password: str) -> dict[str, Any]:
        """The pool's AuthenticationResult for a user without pending challenges (AccessToken, IdToken, ...)."""
        answer = self.cognito.initiate_auth(
            ClientId=self.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )
        if "AuthenticationResult" not in answer:
            raise RuntimeError(f"sign-in of {username} asks for {answer.get('ChallengeName')}")
        return dict(answer["AuthenticationResult"])

    def mint_token(self, groups: list[str]) -> dict[str, Any]:
        """An access token of a new throwaway user in exactly `groups` (ValueError for a group the pool lacks)."""
        unknown = sorted(set(groups) - set(self.groups()))
        if unknown:
            raise ValueError(f"unknown group(s) {', '.join(unknown)}; the pool has {', '.join(sorted(self.groups()))}")
        email, password = f"dev-token-{secrets.token_hex(8)}@example.com", strong_password()
        self.create_user(email, password, list(dict.fromkeys(groups)))
        result = self.sign_in(email, password)
        return {"access_token": result["AccessToken"], "token_type": "Bearer", "expires_in": result["ExpiresIn"]}

    def settings(self) -> dict[str, str]:
        """What a browser page needs to sign in to this pool (GET /dev/auth/config)."""
        return {
            "region": self.region,
            "user_pool_id": self.pool_id,
            "client_id": self.client_id,
            "issuer": self.issuer,
            "cognito_endpoint": self.endpoint_url,
        }
