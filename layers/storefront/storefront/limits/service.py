"""Per-client limits on checkout (docs/observability.md, "Abuse limits"), configured in shop.json.

An order holds stock from checkout until it is paid or ends, at most the payment window. So that one client
cannot hold a shop's stock without paying, each order takes a place in its email's and its source IP's limit
item (storefront.limits.repository), in the transaction that stores it; a client with no place left gets 429
with Retry-After. The order workflow gives the places back when the order stops holding stock (paid, or ended
without payment); a place never given back (a crash) lapses when its expiry, the end of the order's payment
window plus a margin, has passed: the next refused checkout of that client clears lapsed places and tries again.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from storefront.cart.models import CartLine
from storefront.errors import ValidationFailed
from storefront.limits.models import ClientHold, RateLimited, expiry_of, member_for
from storefront.limits.repository import ClientHoldRepository, held_members
from storefront.observability import count
from storefront.orders.models import email_key
from storefront.shop import CheckoutLimits

# After the payment window the workflow still takes a few steps (and retries) to end the order and give its
# places back; a place lapses only after this margin, so the limit does not let a client in early.
HOLD_MARGIN_SECONDS = 300


def client_key(kind: str, client: str) -> str:
    """A limit item's key: a hash of the client, never the email or the address itself."""
    return f"LIMIT#{kind}#" + hashlib.sha256(f"storefront-limit:{kind}:{client}".encode()).hexdigest()[:32]


def network_of(source_ip: str) -> str:
    """Who an IP address stands for: itself (IPv4), or its /64 (IPv6: one subscriber gets a whole /64)."""
    try:
        address = ipaddress.ip_address(source_ip)
    except ValueError:
        return source_ip
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class ClientLimits:
    def __init__(self, limits: CheckoutLimits, holds: ClientHoldRepository, payment_window_seconds: int) -> None:
        self._limits = limits
        self._holds = holds
        self._hold_seconds = payment_window_seconds + HOLD_MARGIN_SECONDS

    def check_units(self, lines: Iterable[CartLine]) -> None:
        """422 when a line asks for more units of one SKU than one order may have."""
        most = self._limits.units_per_sku
        over = [line for line in lines if line.quantity > most]
        if over:
            raise ValidationFailed(
                "quantity_limit",
                f"At most {most} units of one item per order.",
                [
                    {
                        "sku": line.sku,
                        "code": "quantity_limit",
                        "max": most,
                        "message": f"at most {most} per order ({line.quantity} in the cart)",
                    }
                    for line in over
                ],
            )

    def hold_for(self, order_id: str, email: str, source_ip: str, now: datetime) -> ClientHold:
        """The places the order will take (the email's first, then the source IP's)."""
        expires = math.ceil(now.timestamp()) + self._hold_seconds
        return ClientHold(
            keys=[client_key("email", email_key(email)), client_key("ip", network_of(source_ip))],
            member=member_for(order_id, expires),
        )

    def writes(self, hold: ClientHold) -> list[dict[str, Any]]:
        """The transaction items that take the hold's places, in hold.keys' order."""
        limits = [self._limits.orders_holding_stock_per_email, self._limits.orders_holding_stock_per_ip]
        return [self._holds.take(pk, hold.member, limit) for pk, limit in zip(hold.keys, limits, strict=True)]

    def refused(
        self, hold: ClientHold, index: int, item: dict[str, Any] | None, now: datetime, *, may_clear: bool
    ) -> None:
        """The place at hold.keys[index] was refused; `item` is the limit item as it was. If some of its places have
        lapsed (and `may_clear`), they are given back and this returns: store the order again. Otherwise 429."""
        members = held_members(item)
        lapsed = [m for m in members if expiry_of(m) <= now.timestamp()]
        if lapsed and may_clear:
            self._holds.give_back(hold.keys[index], lapsed)
            return
        live = [expiry_of(m) for m in members if m not in lapsed]
        retry_after = max(1, math.ceil(min(live, default=now.timestamp() + 1) - now.timestamp()))
        count("CheckoutsRateLimited")
        if index == 0:
            raise RateLimited(
                f"This email address already has {len(live)} orders waiting for payment: pay for one, or let one "
                "expire, then try again.",
                retry_after,
                [{"field": "email", "code": "rate_limited", "message": "too many unpaid orders for this email"}],
            )
        raise RateLimited("Too many orders from this network are waiting for payment; try again later.", retry_after)

    def release(self, hold: ClientHold) -> None:
        self._holds.release(hold)
