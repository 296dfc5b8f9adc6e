from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from storefront.errors import InvalidCursor
from storefront.pagination import MAX_CURSOR_LENGTH, CursorCodec

KEY = {"pk": "PRODUCT#linen-shirt", "sk": "PRODUCT", "listing_pk": "PRODUCTS", "listing_sk": "shirts#linen-shirt"}


@pytest.fixture
def codec() -> CursorCodec:
    return CursorCodec(lambda: "test-secret")


def test_round_trip(codec: CursorCodec) -> None:
    cursor = codec.encode(KEY, "products?category=")
    assert codec.decode(cursor, "products?category=") == KEY
    assert "linen" not in cursor  # opaque: nothing readable at a glance


def test_a_cursor_is_bound_to_its_query(codec: CursorCodec) -> None:
    cursor = codec.encode(KEY, "products?category=shirts")
    with pytest.raises(InvalidCursor, match="another query"):
        codec.decode(cursor, "products?category=shoes")


def test_a_cursor_signed_with_another_secret_is_rejected(codec: CursorCodec) -> None:
    forged = CursorCodec(lambda: "attacker-secret").encode(KEY, "products?category=")
    with pytest.raises(InvalidCursor):
        codec.decode(forged, "products?category=")


def test_every_single_character_edit_is_detected(codec: CursorCodec) -> None:
    cursor = codec.encode(KEY, "products?category=")
    for index in range(len(cursor)):
        replacement = "A" if cursor[index] != "A" else "B"
        tampered = cursor[:index] + replacement + cursor[index + 1 :]
        with pytest.raises(InvalidCursor):
            codec.decode(tampered, "products?category=")


@pytest.mark.parametrize("garbage", ["", ".", "..", "abc", "a.b", "a.b.c", "é.é", "x" * (MAX_CURSOR_LENGTH + 1)])
def test_garbage_is_an_invalid_cursor(codec: CursorCodec, garbage: str) -> None:
    with pytest.raises(InvalidCursor):
        codec.decode(garbage, "products?category=")


@given(st.text(max_size=300))
def test_no_input_raises_anything_but_invalid_cursor(text: str) -> None:
    codec = CursorCodec(lambda: "test-secret")
    with pytest.raises(InvalidCursor):
        codec.decode(text, "products?category=")


def test_the_secret_is_fetched_once_and_only_when_needed() -> None:
    calls = []
    codec = CursorCodec(lambda: calls.append(1) or "s")
    assert calls == []
    codec.decode(codec.encode(KEY, "q"), "q")
    codec.encode(KEY, "q")
    assert calls == [1]
