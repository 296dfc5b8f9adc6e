"""Notification rules: exactly one email per event, to an address that may get one, made from the order as it is.

    event ─► claim its email (conditional put on EVENT#<event_id>; a duplicate delivery stops here)
          ─► read the order ─► check the address ─► check the suppression list ─► render ─► SES ─► record "sent"

The claim makes concurrent and repeated deliveries of one event send one email. If anything fails before SES
accepts the message, the claim is given back and the queue delivers the event again later: a throttled or
unavailable SES delays mail, never loses it. The one gap is a crash after SES accepted the message and before
"sent" is recorded: the claim then stays until its lock expires (longer than the function's timeout, shorter
than the queue's visibility timeout) and the redelivered event sends the email again. That is the side we err
on, deliberately: a second copy of a confirmation is a nuisance, a missing one is a support call; and the gap
is one DynamoDB write long. (At most once would record "sent" before calling SES, and lose the mail instead.)

Events for unknown orders, addresses a mail cannot safely go to, and messages SES refuses for good are logged
(with the order id, never the address) and acknowledged: delivering them again would change nothing.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from storefront.notifications.addresses import deliverable
from storefront.notifications.models import (
    EMAIL_FOR_EVENT,
    Email,
    EmailKind,
    MailableOrder,
    OrderEventDetail,
    Outcome,
    SesFeedback,
)
from storefront.notifications.sender import SendRefused
from storefront.observability import count

log = logging.getLogger("storefront.notifications")


class Records(Protocol):
    def claim(
        self, event_id: str, claim: str, now: int, lock_seconds: int, ttl_seconds: int, **fields: str
    ) -> bool: ...
    def finish(self, event_id: str, claim: str, status: str, **fields: str) -> bool: ...
    def release(self, event_id: str, claim: str) -> None: ...


class Suppressions(Protocol):
    def contains(self, address: str) -> bool: ...
    def add(self, address: str, reason: str, at: datetime) -> None: ...


class Orders(Protocol):
    def get(self, order_id: str) -> MailableOrder | None: ...


class Content(Protocol):
    def render(self, kind: EmailKind, order: MailableOrder) -> tuple[str, str, str]: ...


class Sender(Protocol):
    def send(self, email: Email) -> str: ...


# What each outcome counts as (CloudWatch metrics, namespace Storefront).
METRIC_FOR: dict[Outcome, str] = {
    Outcome.SENT: "EmailsSent",
    Outcome.DUPLICATE: "EmailsDuplicate",
    Outcome.SUPPRESSED: "EmailsSuppressed",
    Outcome.REFUSED: "EmailsRefused",
    Outcome.REJECTED: "EmailsRejected",
    Outcome.UNKNOWN_ORDER: "EmailsForUnknownOrders",
}


class NotificationService:
    def __init__(
        self,
        records: Records,
        orders: Orders,
        suppressions: Suppressions,
        content: Content,
        sender: Sender,
        *,
        lock_seconds: int,
        ttl_seconds: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_claim: Callable[[], str] = lambda: secrets.token_hex(16),
    ) -> None:
        self._records = records
        self._orders = orders
        self._suppressions = suppressions
        self._content = content
        self._sender = sender
        self._lock_seconds = lock_seconds
        self._ttl_seconds = ttl_seconds
        self._clock = clock
        self._new_claim = new_claim

    def notify(self, event: OrderEventDetail) -> Outcome:
        """Send the email `event` means, once; returns what became of it. Raises (after giving the claim back)
        when it should be tried again later."""
        kind = EMAIL_FOR_EVENT.get(event.type)
        if kind is None:
            log.warning("no email for this event type", extra={"type": event.type, "event_id": event.event_id})
            return Outcome.NOT_AN_EMAIL
        claim = self._new_claim()
        now = int(self._clock().timestamp())
        if not self._records.claim(
            event.event_id, claim, now, self._lock_seconds, self._ttl_seconds, order_id=event.order.id, kind=kind.value
        ):
            return self._counted(Outcome.DUPLICATE, event, kind)
        try:
            outcome, message_id = self._deliver(kind, event)
        except Exception:
            self._records.release(event.event_id, claim)
            count("EmailsDeferred")
            raise
        fields = {"message_id": message_id} if message_id else {}
        try:
            finished = self._records.finish(event.event_id, claim, outcome.value, **fields)
        except Exception:  # the mail is out: raising would redeliver the event and, after the lock, send it again
            log.exception(
                "email handled but its record not written; a late redelivery may send a second copy",
                extra={"event_id": event.event_id, "order_id": event.order.id},
            )
            finished = True
        if not finished:
            # Our lock expired mid-send and another delivery took over: it may send a second copy (see above).
            log.warning("email claim was taken over", extra={"event_id": event.event_id, "order_id": event.order.id})
        return self._counted(outcome, event, kind)

    def _deliver(self, kind: EmailKind, event: OrderEventDetail) -> tuple[Outcome, str | None]:
        order = self._orders.get(event.order.id)
        if order is None:
            return Outcome.UNKNOWN_ORDER, None
        recipient = deliverable(order.email)
        if recipient is None:
            return Outcome.REFUSED, None
        if self._suppressions.contains(recipient):
            return Outcome.SUPPRESSED, None
        subject, text, html = self._content.render(kind, order)
        email = Email(
            to=recipient, subject=subject, text=text, html=html, tags={"kind": kind.value, "order_id": order.id}
        )
        try:
            return Outcome.SENT, self._sender.send(email)
        except SendRefused as refused:
            # The error code only: SES's message can name the recipient ("... failed the check: ada@...").
            log.error("SES refused the email", extra={"order_id": order.id, "kind": kind.value, "reason": refused.code})
            return Outcome.REJECTED, None

    @staticmethod
    def _counted(outcome: Outcome, event: OrderEventDetail, kind: EmailKind) -> Outcome:
        count(METRIC_FOR[outcome])
        level = logging.INFO if outcome in (Outcome.SENT, Outcome.DUPLICATE) else logging.WARNING
        log.log(
            level,
            "email %s",
            outcome.value,
            extra={
                "outcome": outcome.value,
                "kind": kind.value,
                "event_id": event.event_id,
                "order_id": event.order.id,
            },
        )
        return outcome

    def record_feedback(self, feedback: SesFeedback) -> int:
        """Put the addresses of a hard bounce or a complaint on the suppression list; returns how many."""
        reason = "complaint" if feedback.complaint is not None else "bounce"
        addresses = feedback.addresses_to_suppress()
        for address in addresses:
            self._suppressions.add(address, reason, self._clock())
        if addresses:
            count("AddressesSuppressed", len(addresses))
        log.info("SES feedback", extra={"event_type": feedback.eventType, "suppressed": len(addresses)})
        return len(addresses)
