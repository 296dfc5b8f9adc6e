"""`make dev`'s operator (local_cloud.__main__.seed_admin): LOCAL_ADMIN_PASSWORD or a random strong password, and
a clear refusal of a password the pool's policy would not take."""

from __future__ import annotations

import re
import string
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_cloud.__main__ import LOCAL_ADMIN_EMAIL, seed_admin
from local_cloud.user_pool import SYMBOLS, strong_password


class FakePool:
    def __init__(self, error: str | None = None) -> None:
        self.created: list[tuple[str, str, list[str]]] = []
        self.error = error

    def create_user(self, email: str, password: str, groups: list[str]) -> None:
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "no"}}, "AdminSetUserPassword")
        self.created.append((email, password, groups))


def _gateway(pool: FakePool) -> Any:
    return SimpleNamespace(user_pool=pool)


def test_the_password_comes_from_the_environment() -> None:
    pool = FakePool()
    assert seed_admin(_gateway(pool), {"LOCAL_ADMIN_PASSWORD": "Chosen-Passw0rd!"}) == (
        LOCAL_ADMIN_EMAIL,
        "Chosen-Passw0rd!",
    )
    assert pool.created == [(LOCAL_ADMIN_EMAIL, "Chosen-Passw0rd!", ["admin"])]


def test_without_it_the_password_is_random_and_strong() -> None:
    first, second = FakePool(), FakePool()
    _, one = seed_admin(_gateway(first), {})
    _, two = seed_admin(_gateway(second), {"LOCAL_ADMIN_PASSWORD": ""})
    assert one != two
    for password in (one, two):
        assert len(password) >= 12
        for characters in (string.ascii_uppercase, string.ascii_lowercase, string.digits, SYMBOLS):
            assert any(c in characters for c in password), password


def test_a_password_the_policy_refuses_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="LOCAL_ADMIN_PASSWORD does not meet"):
        seed_admin(_gateway(FakePool("InvalidPasswordException")), {"LOCAL_ADMIN_PASSWORD": "weak"})


def test_other_failures_are_not_disguised() -> None:
    with pytest.raises(ClientError):
        seed_admin(_gateway(FakePool("UsernameExistsException")), {})


def test_strong_passwords_print_as_one_word() -> None:
    assert all(re.fullmatch(r"\S{20}", strong_password()) for _ in range(200))
