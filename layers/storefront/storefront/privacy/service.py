"""Erasing a shopper's personal data from their orders (`python -m ops.erase_customer`; docs/observability.md,
"Privacy").

Erased: the email, and the shipping address's name, street lines, city and postal code; the order leaves the
ByEmail index and its places in the per-client limits go, and the email's limit item is deleted.
Kept: what the books need, for as long as tax law makes the shop keep its records (in Germany ten years,
§147 AO; most EU countries six to ten): the order's id, lines (SKUs, titles, quantities, prices), totals with the
tax and its rate, the shipping method, price and destination country (the sale's VAT jurisdiction), the payment's
and the shipment's ids (to reconcile with the provider's and the carrier's statements), the statuses and their
dates. Invoices that must name the buyer are the accounting system's to keep, not this store's.
Not erased yet: orders still in progress (their address is still needed to ship them, or for a parcel on its
way): they are reported, and a later run erases them. Every run that changes something writes an audit record
naming who ran it and what was erased; it holds a SHA-256 of the email, never the email itself.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from storefront.limits.repository import ClientHoldRepository
from storefront.limits.service import client_key
from storefront.orders.models import OrderStatus, email_key
from storefront.orders.repository import OrderRepository
from storefront.privacy.repository import ErasureRepository

ERASED = "erased"
ERASED_EMAIL = "erased@erased.invalid"  # .invalid never resolves (RFC 2606): no mail can reach it
# Statuses in which the order no longer needs its address: erasable.
ENDED = frozenset(
    {
        OrderStatus.DELIVERED,
        OrderStatus.REJECTED,
        OrderStatus.PAYMENT_FAILED,
        OrderStatus.EXPIRED,
        OrderStatus.CANCELLED,
    }
)
ERASED_FIELDS = [
    "email",
    "shipping_address.name",
    "shipping_address.line1",
    "shipping_address.line2",
    "shipping_address.city",
    "shipping_address.postal_code",
]


@dataclass
class ErasureReport:
    subject: str  # SHA-256 of the email key: what the audit record names
    erased: list[str] = field(default_factory=list)  # order ids
    in_progress: list[str] = field(default_factory=list)  # order ids kept for now
    audit_id: str | None = None  # None on a dry run, or when nothing was found


class ErasureService:
    def __init__(
        self,
        orders: OrderRepository,
        erasures: ErasureRepository,
        holds: ClientHoldRepository,
        now: Callable[[], datetime],
    ) -> None:
        self._orders = orders
        self._erasures = erasures
        self._holds = holds
        self._now = now

    def erase(self, email: str, *, actor: str, dry_run: bool = False) -> ErasureReport:
        key = email_key(email)
        report = ErasureReport(subject=hashlib.sha256(key.encode()).hexdigest())
        at = self._now().isoformat()
        for order_id in self._erasures.order_ids(key):
            order = self._orders.get(order_id)
            if order is None or order.email_key != key:
                continue  # the index lags behind an erasure that just happened
            if order.status not in ENDED:
                report.in_progress.append(order_id)
                continue
            address = order.shipping_address
            replacements = {
                "email": ERASED_EMAIL,
                "shipping_address": {
                    "name": ERASED,
                    "line1": ERASED,
                    "line2": None,
                    "city": ERASED,
                    "postal_code": ERASED,
                    "country": address.country,
                },
            }
            if dry_run or self._erasures.erase(order_id, key, ENDED, replacements, at):
                report.erased.append(order_id)
        if dry_run or not (report.erased or report.in_progress):
            return report
        self._holds.forget(client_key("email", key))
        report.audit_id = f"{at[:10]}-{secrets.token_hex(8)}"
        self._erasures.record(
            report.audit_id,
            {
                "at": at,
                "actor": actor,
                "action": "erase_customer",
                "subject": report.subject,
                "erased": report.erased,
                "kept_in_progress": report.in_progress,
                "fields": ERASED_FIELDS,
            },
        )
        return report
