"""storefront.limits without DynamoDB: who a client is (a hash of the email or of the address, an IPv6 client by
its /64), the units-per-SKU rule, and what a refusal answers (lapsed places cleared, else 429 with Retry-After)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import Request
from storefront.cart.models import CartLine
from storefront.errors import ValidationFailed
from storefront.http import client_ip
from storefront.limits.models import RateLimited, member_for
from storefront.limits.service import HOLD_MARGIN_SECONDS, ClientLimits, client_key, network_of
from storefront.money import Money
from storefront.shop import CheckoutLimits

LIMITS = CheckoutLimits(orders_holding_stock_per_email=2, orders_holding_stock_per_ip=5, units_per_sku=3)
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


class Holds:
    def __init__(self) -> None:
        self.given_back: list[tuple[str, list[str]]] = []

    def take(self, pk: str, member: str, limit: int) -> dict[str, Any]:
        return {"pk": pk, "member": member, "limit": limit}

    def give_back(self, pk: str, members: list[str]) -> None:
        self.given_back.append((pk, members))


def _limits(holds: Holds | None = None) -> ClientLimits:
    return ClientLimits(LIMITS, holds or Holds(), payment_window_seconds=1800)  # type: ignore[arg-type]


def test_clients_are_hashed_and_normalised() -> None:
    hold = _limits().hold_for("order-1", " Ada@Example.COM ", "203.0.113.9", NOW)
    assert hold.keys == [client_key("email", "ada@example.com"), client_key("ip", "203.0.113.9")]
    assert all("ada" not in key and "203.0" not in key for key in hold.keys)
    assert hold.expires_epoch == int(NOW.timestamp()) + 1800 + HOLD_MARGIN_SECONDS
    assert network_of("2001:db8:1:2:aaaa::1") == network_of("2001:db8:1:2:bbbb::7") == "2001:db8:1:2::/64"
    assert network_of("not an address") == "not an address"


def test_the_places_are_taken_with_each_limit() -> None:
    limits = _limits()
    hold = limits.hold_for("order-1", "a@b.de", "198.51.100.1", NOW)
    assert [w["limit"] for w in limits.writes(hold)] == [2, 5]


def test_too_many_units_of_one_sku_is_a_422_naming_each() -> None:
    def line(sku: str, quantity: int) -> CartLine:
        price = Money(amount=100, currency="EUR")
        return CartLine(
            sku=sku,
            product_id="p",
            title="t",
            quantity=quantity,
            unit_price=price,
            line_total=Money(amount=100 * quantity, currency="EUR"),
        )

    _limits().check_units([line("A", 3), line("B", 1)])
    with pytest.raises(ValidationFailed) as refused:
        _limits().check_units([line("A", 4), line("B", 9)])
    assert refused.value.code == "quantity_limit" and [e["sku"] for e in refused.value.errors] == ["A", "B"]


def test_a_refusal_clears_lapsed_places_once_and_otherwise_says_when_to_retry() -> None:
    holds = Holds()
    limits = _limits(holds)
    hold = limits.hold_for("new", "a@b.de", "198.51.100.1", NOW)
    now = int(NOW.timestamp())
    lapsed, live = member_for("old", now - 5), member_for("paying", now + 600)
    item = {"holds": {"SS": [live, lapsed]}}
    limits.refused(hold, 0, item, NOW, may_clear=True)  # returns: store the order again
    assert holds.given_back == [(hold.keys[0], [lapsed])]
    with pytest.raises(RateLimited) as refused:
        limits.refused(hold, 0, {"holds": {"SS": [live, member_for("also", now + 900)]}}, NOW, may_clear=True)
    assert refused.value.status == 429 and refused.value.headers == {"Retry-After": "600"}
    assert refused.value.errors[0]["field"] == "email"
    with pytest.raises(RateLimited) as by_address:
        limits.refused(hold, 1, item, NOW, may_clear=False)
    assert by_address.value.errors == [] and by_address.value.headers["Retry-After"] == "600"


def _request(headers: dict[str, str], source_ip: str) -> Request:
    event = {"requestContext": {"http": {"sourceIp": source_ip}}}
    return Request(
        {
            "type": "http",
            "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
            "aws.event": event,
            "client": ("10.0.0.1", 1234),
        }
    )


def test_the_client_address_is_api_gateways_whatever_headers_a_request_carries() -> None:
    """Only the edge's gate, for a request that carried CloudFront's origin secret, hands on the viewer's address
    (tests/unit/test_edge_origin.py); a header alone names nobody."""
    forged = {"cloudfront-viewer-address": "192.0.2.66:443", "x-forwarded-for": "192.0.2.67"}
    assert client_ip(_request(forged, "198.51.100.7")) == "198.51.100.7"
    assert client_ip(_request({}, "2001:db8::7")) == "2001:db8::7"
