"""Webhook signatures (storefront.webhooks.signatures): Stripe's scheme, which the carrier API shares; every way a
request can fail it."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from storefront.webhooks.signatures import TOLERANCE_SECONDS, InvalidSignature, parse_secrets, sign, verify

SECRET = "whsec_test_secret"
NOW = 1_767_225_600
BODY = b'{\n  "id": "evt_1",\n  "type": "payment_intent.succeeded"\n}'


def _hex(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def test_sign_is_stripes_scheme() -> None:
    assert sign(BODY, SECRET, NOW) == f"t={NOW},v1={_hex(SECRET, NOW, BODY)}"


def test_a_correct_signature_is_accepted_and_returns_its_timestamp() -> None:
    assert verify(BODY, sign(BODY, SECRET, NOW), [SECRET], now=NOW) == NOW


@pytest.mark.parametrize(
    ("case", "body", "header", "now"),
    [
        ("tampered body", BODY.replace(b"succeeded", b"succeedes"), sign(BODY, SECRET, NOW), NOW),
        ("body re-serialised", b'{"id": "evt_1", "type": "payment_intent.succeeded"}', sign(BODY, SECRET, NOW), NOW),
        ("wrong secret", BODY, sign(BODY, "whsec_someone_else", NOW), NOW),
        ("timestamp 301 s old", BODY, sign(BODY, SECRET, NOW - TOLERANCE_SECONDS - 1), NOW),
        ("timestamp 301 s ahead", BODY, sign(BODY, SECRET, NOW + TOLERANCE_SECONDS + 1), NOW),
        ("signed timestamp swapped", BODY, sign(BODY, SECRET, NOW).replace(f"t={NOW}", f"t={NOW + 1}"), NOW),
        ("missing header", BODY, None, NOW),
        ("empty header", BODY, "", NOW),
        ("only v0", BODY, f"t={NOW},v0={_hex(SECRET, NOW, BODY)}", NOW),
        ("no timestamp", BODY, f"v1={_hex(SECRET, NOW, BODY)}", NOW),
        ("two timestamps", BODY, f"t={NOW},t={NOW},v1={_hex(SECRET, NOW, BODY)}", NOW),
        ("timestamp not a number", BODY, f"t=now,v1={_hex(SECRET, NOW, BODY)}", NOW),
        ("negative timestamp", BODY, f"t=-{NOW},v1={_hex(SECRET, NOW, BODY)}", NOW),
        ("element without =", BODY, f"t={NOW},v1", NOW),
        ("garbage", BODY, "definitely not a signature", NOW),
        ("truncated v1", BODY, f"t={NOW},v1={_hex(SECRET, NOW, BODY)[:-1]}", NOW),
        ("upper-case hex", BODY, f"t={NOW},v1={_hex(SECRET, NOW, BODY).upper()}", NOW),
        ("non-ASCII", BODY, f"t={NOW},v1=é{_hex(SECRET, NOW, BODY)}", NOW),
        ("oversized header", BODY, f"t={NOW}," + ",".join([f"v1={_hex(SECRET, NOW, BODY)}"] * 100), NOW),
    ],
)
def test_rejected(case: str, body: bytes, header: str | None, now: int) -> None:
    with pytest.raises(InvalidSignature):
        verify(body, header, [SECRET], now=now)


@pytest.mark.parametrize("offset", [-TOLERANCE_SECONDS, TOLERANCE_SECONDS, 0])
def test_timestamps_within_the_tolerance_are_accepted(offset: int) -> None:
    verify(BODY, sign(BODY, SECRET, NOW + offset), [SECRET], now=NOW)


def test_any_matching_v1_accepts_the_second_one_here() -> None:
    """Stripe sends one v1 per active secret while a secret is rolled: the old one may come first."""
    header = f"t={NOW},v1={_hex('whsec_old', NOW, BODY)},v1={_hex(SECRET, NOW, BODY)}"
    assert verify(BODY, header, [SECRET], now=NOW) == NOW


def test_unknown_schemes_and_spaces_are_ignored() -> None:
    header = f"t={NOW}, v0={_hex(SECRET, NOW, BODY)}, v1={_hex(SECRET, NOW, BODY)}, v9=whatever"
    verify(BODY, header, [SECRET], now=NOW)


def test_any_of_our_secrets_accepts_rotation() -> None:
    header = sign(BODY, "whsec_new", NOW)
    verify(BODY, header, ["whsec_old", "whsec_new"], now=NOW)
    verify(BODY, header, "whsec_new", now=NOW)  # a single secret as a plain string works too
    with pytest.raises(InvalidSignature):
        verify(BODY, header, ["whsec_old"], now=NOW)


def test_no_secret_configured_rejects() -> None:
    with pytest.raises(InvalidSignature):
        verify(BODY, sign(BODY, SECRET, NOW), [], now=NOW)


def test_raw_bytes_that_are_not_utf8_still_verify() -> None:
    body = b"\xff\xfe not text at all \x00"
    verify(body, sign(body, SECRET, NOW), [SECRET], now=NOW)


def test_stored_secret_values_may_hold_several_secrets() -> None:
    assert parse_secrets("whsec_a") == ["whsec_a"]
    assert parse_secrets(" whsec_a, whsec_b\nwhsec_c ") == ["whsec_a", "whsec_b", "whsec_c"]
    assert parse_secrets("") == []


def test_the_default_clock_is_now() -> None:
    verify(BODY, sign(BODY, SECRET), [SECRET])
