"""The notification rules with in-memory stand-ins for the table and SES: one email per event, duplicates and
concurrent deliveries, SES throttling, a crash between SES and the record, unknown orders, unsafe and suppressed
addresses, bounces and complaints. (tests/integration/test_notifications.py runs the same on the real table,
queue and SES of the local cloud.)"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from storefront.notifications import service as service_module
from storefront.notifications.content import EmailContent
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
from storefront.notifications.service import NotificationService
from storefront.shop import load_shop_config

from tests.unit.test_notification_content import ORDER_ID, order

LOCK_SECONDS = 60
NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


class Records:
    """EmailRecords' conditions, in memory and thread-safe (the real one is a DynamoDB conditional write)."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def claim(self, event_id: str, claim: str, now: int, lock_seconds: int, ttl_seconds: int, **fields: str) -> bool:
        with self._lock:
            item = self.items.get(event_id)
            if item is not None and not (item["status"] == "sending" and item["locked_until"] < now):
                return False
            self.items[event_id] = {"status": "sending", "claim": claim, "locked_until": now + lock_seconds, **fields}
            return True

    def finish(self, event_id: str, claim: str, status: str, **fields: str) -> bool:
        with self._lock:
            item = self.items.get(event_id)
            if item is None or item["claim"] != claim:
                return False
            item.update(status=status, **fields)
            return True

    def release(self, event_id: str, claim: str) -> None:
        with self._lock:
            item = self.items.get(event_id)
            if item is not None and item["claim"] == claim and item["status"] == "sending":
                del self.items[event_id]


class Suppressions:
    def __init__(self) -> None:
        self.addresses: dict[str, str] = {}

    def contains(self, address: str) -> bool:
        return address.lower() in self.addresses

    def add(self, address: str, reason: str, at: datetime) -> None:
        self.addresses[address.lower()] = reason


class Orders:
    def __init__(self, *orders: MailableOrder) -> None:
        self.orders = {o.id: o for o in orders}
        self.reads = 0

    def get(self, order_id: str) -> MailableOrder | None:
        self.reads += 1
        return self.orders.get(order_id)


class Ses:
    """SES: accepts, or raises what it is told to for the next sends; slow when told to be."""

    def __init__(self) -> None:
        self.sent: list[Email] = []
        self.failures: list[Exception] = []
        self.started = threading.Event()
        self.hold: threading.Event | None = None

    def send(self, email: Email) -> str:
        self.started.set()
        if self.hold is not None:
            self.hold.wait(5)
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(email)
        return f"ses-{len(self.sent)}"


def throttled() -> ClientError:
    return ClientError(
        {"Error": {"Code": "TooManyRequestsException", "Message": "Maximum sending rate exceeded."}}, "SendEmail"
    )


class World:
    def __init__(self, *orders: MailableOrder) -> None:
        self.records = Records()
        self.orders = Orders(*(orders or (order(),)))
        self.suppressions = Suppressions()
        self.ses = Ses()
        self.now = NOW
        self.metrics: list[str] = []
        self.service = NotificationService(
            self.records,
            self.orders,
            self.suppressions,
            EmailContent(load_shop_config()),
            self.ses,
            lock_seconds=LOCK_SECONDS,
            ttl_seconds=90 * 86400,
            clock=lambda: self.now,
        )


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    created = World()
    monkeypatch.setattr(service_module, "count", lambda name, value=1: created.metrics.extend([name] * value))
    return created


def event(event_type: str = "order.paid", order_id: str = ORDER_ID, event_id: str | None = None) -> OrderEventDetail:
    return OrderEventDetail.model_validate(
        {
            "event_id": event_id or f"{event_type}:{order_id}",
            "type": event_type,
            "occurred_at": NOW.isoformat(),
            "order": {"id": order_id},
        }
    )


# ---------------------------------------------------------------- one email per event


@pytest.mark.parametrize("event_type", sorted(EMAIL_FOR_EVENT))
def test_each_event_sends_its_email_once(world: World, event_type: str) -> None:
    assert world.service.notify(event(event_type)) == Outcome.SENT
    assert world.service.notify(event(event_type)) == Outcome.DUPLICATE
    (email,) = world.ses.sent
    assert email.to == "ada@example.com"
    assert email.tags == {"kind": EMAIL_FOR_EVENT[event_type].value, "order_id": ORDER_ID}
    assert world.records.items[f"{event_type}:{ORDER_ID}"]["status"] == "sent"
    assert world.records.items[f"{event_type}:{ORDER_ID}"]["message_id"] == "ses-1"
    assert world.metrics == ["EmailsSent", "EmailsDuplicate"]


def test_different_events_of_one_order_each_send_theirs(world: World) -> None:
    for event_type in ("order.paid", "order.shipped", "order.delivered", "order.shipped"):
        world.service.notify(event(event_type))
    assert [e.tags["kind"] for e in world.ses.sent] == ["order_confirmed", "order_shipped", "order_delivered"]


def test_concurrent_deliveries_of_one_event_send_one_email(world: World) -> None:
    """EventBridge and SQS may both deliver twice, and the two copies may run at the same time."""
    world.ses.hold = threading.Event()  # the first sender sits in SES while the others arrive
    outcomes: list[Outcome] = []
    threads = [threading.Thread(target=lambda: outcomes.append(world.service.notify(event()))) for _ in range(8)]
    for thread in threads:
        thread.start()
    assert world.ses.started.wait(5)
    world.ses.hold.set()
    for thread in threads:
        thread.join(10)
    assert sorted(outcomes) == sorted([Outcome.SENT] + [Outcome.DUPLICATE] * 7)
    assert len(world.ses.sent) == 1


def test_an_event_with_no_email_is_acknowledged_without_a_record(world: World) -> None:
    assert world.service.notify(event("order.placed")) == Outcome.NOT_AN_EMAIL
    assert world.records.items == {} and world.ses.sent == []


# ---------------------------------------------------------------- SES trouble and crashes


def test_a_throttled_send_gives_the_claim_back_and_the_redelivery_sends_once(world: World) -> None:
    world.ses.failures = [throttled()]
    with pytest.raises(ClientError):
        world.service.notify(event())  # the queue will deliver it again
    assert world.records.items == {} and world.ses.sent == []
    assert world.metrics == ["EmailsDeferred"]
    assert world.service.notify(event()) == Outcome.SENT
    assert world.service.notify(event()) == Outcome.DUPLICATE
    assert len(world.ses.sent) == 1


def test_a_failure_reading_the_order_gives_the_claim_back(world: World) -> None:
    def unavailable(order_id: str) -> MailableOrder:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": ""}}, "GetItem")

    world.orders.get = unavailable  # type: ignore[method-assign]
    with pytest.raises(ClientError):
        world.service.notify(event())
    assert world.records.items == {}


class EnvironmentDied(BaseException):
    """The execution environment ending mid-invocation (a timeout, an out-of-memory kill)."""


def test_a_record_that_cannot_be_written_after_ses_accepted_is_not_a_reason_to_send_again(world: World) -> None:
    """DynamoDB throttling the "sent" record: the mail is out, so the message is acknowledged (raising would have the
    queue redeliver it and, once the lock expired, send a second copy)."""

    def throttled(*args: Any, **kwargs: Any) -> bool:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "UpdateItem")

    world.records.finish = throttled  # type: ignore[method-assign]
    assert world.service.notify(event()) == Outcome.SENT
    assert len(world.ses.sent) == 1


def test_a_crash_after_ses_accepted_sends_again_only_after_the_lock_expires(world: World) -> None:
    """At least once, deliberately: the crash between SES and the record costs a second copy, never the mail."""
    crashed = world.records.finish

    def crash(*args: Any, **kwargs: Any) -> bool:
        raise EnvironmentDied  # no exception handler of the function runs: the process is gone

    world.records.finish = crash  # type: ignore[method-assign]
    with pytest.raises(EnvironmentDied):
        world.service.notify(event())
    world.records.finish = crashed  # type: ignore[method-assign]
    assert len(world.ses.sent) == 1
    # The claim outlives the crash: a redelivery within the lock sends nothing (the queue tries it again later)...
    assert world.records.items[f"order.paid:{ORDER_ID}"]["status"] == "sending"  # not given back: SES accepted it
    assert world.service.notify(event()) == Outcome.DUPLICATE
    # ...and after it (the queue's visibility timeout is longer than the lock), one more copy goes out.
    world.now += timedelta(seconds=LOCK_SECONDS + 1)
    assert world.service.notify(event()) == Outcome.SENT
    assert len(world.ses.sent) == 2
    assert world.service.notify(event()) == Outcome.DUPLICATE


def test_a_message_ses_refuses_for_good_is_recorded_not_retried(world: World, caplog: pytest.LogCaptureFixture) -> None:
    # In the SES sandbox the refusal names the recipient: the log keeps the error code only.
    world.ses.failures = [
        SendRefused(
            "MessageRejected",
            "Email address is not verified. The following identities "
            "failed the check in region EU-CENTRAL-1: ada@example.com",
        )
    ]
    with caplog.at_level(logging.DEBUG, logger="storefront"):
        assert world.service.notify(event()) == Outcome.REJECTED
    # Only this thread's: the worker's local cloud (tests/conftest.py), there for other modules, runs the
    # notifications function in its own threads, on these loggers, for orders of ada@example.com too.
    ours = [record for record in caplog.records if record.thread == threading.get_ident()]
    logged = " ".join(str(vars(record)) for record in ours)  # messages and their structured extras
    assert "ada@example.com" not in logged and "MessageRejected" in logged
    assert world.records.items[f"order.paid:{ORDER_ID}"]["status"] == "rejected"
    assert world.service.notify(event()) == Outcome.DUPLICATE
    assert world.ses.sent == [] and world.metrics == ["EmailsRejected", "EmailsDuplicate"]


# ---------------------------------------------------------------- orders and addresses that get no email


def test_an_event_for_an_unknown_order_is_dropped_once_not_retried(world: World) -> None:
    assert world.service.notify(event(order_id="NoSuchOrder0000000000000000000000")) == Outcome.UNKNOWN_ORDER
    assert world.service.notify(event(order_id="NoSuchOrder0000000000000000000000")) == Outcome.DUPLICATE
    assert world.orders.reads == 1 and world.ses.sent == []
    assert world.metrics == ["EmailsForUnknownOrders", "EmailsDuplicate"]


@pytest.mark.parametrize(
    "address",
    [
        "a,b@example.com",
        "ada@example.com>,<eve@example.com",
        "x\u202e@example.com",
        "jörg@example.com",
        "erased@erased.invalid",
    ],
)  # an erased order's (ops.erase_customer): it would bounce
def test_an_address_a_mail_cannot_safely_go_to_is_refused(monkeypatch: pytest.MonkeyPatch, address: str) -> None:
    world = World(order().model_copy(update={"email": address}))
    monkeypatch.setattr(service_module, "count", lambda name, value=1: world.metrics.append(name))
    assert world.service.notify(event()) == Outcome.REFUSED
    assert world.ses.sent == [] and world.metrics == ["EmailsRefused"]


def test_a_suppressed_address_is_skipped_and_counted(world: World) -> None:
    world.service.record_feedback(
        SesFeedback.model_validate(
            {
                "eventType": "Bounce",
                "bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": "ADA@example.com"}]},
            }
        )
    )
    assert world.service.notify(event()) == Outcome.SUPPRESSED
    assert world.ses.sent == []
    assert world.metrics == ["AddressesSuppressed", "EmailsSuppressed"]
    assert world.records.items[f"order.paid:{ORDER_ID}"]["status"] == "suppressed"


@pytest.mark.parametrize(
    ("feedback", "suppressed"),
    [
        (
            {
                "eventType": "Bounce",
                "bounce": {
                    "bounceType": "Permanent",
                    "bouncedRecipients": [{"emailAddress": "a@example.com"}, {"emailAddress": "b@example.com"}],
                },
            },
            {"a@example.com": "bounce", "b@example.com": "bounce"},
        ),
        (
            {
                "eventType": "Bounce",
                "bounce": {
                    "bounceType": "Transient",
                    "bouncedRecipients": [{"emailAddress": "full-mailbox@example.com"}],
                },
            },
            {},
        ),  # a soft bounce: SES tries again, so do we
        (
            {"eventType": "Complaint", "complaint": {"complainedRecipients": [{"emailAddress": "c@example.com"}]}},
            {"c@example.com": "complaint"},
        ),
    ],
)
def test_hard_bounces_and_complaints_are_suppressed(
    world: World, feedback: dict[str, Any], suppressed: dict[str, str]
) -> None:
    assert world.service.record_feedback(SesFeedback.model_validate(feedback)) == len(suppressed)
    assert world.suppressions.addresses == suppressed


def test_the_email_is_made_from_the_order_in_the_table_not_from_the_event(world: World) -> None:
    """Events carry ids and figures only: the address and the lines come from the order."""
    world.service.notify(event("order.shipped"))
    (email,) = world.ses.sent
    assert "LC402871599316" in email.text and "Unter den Linden 1" in email.text
    assert email.tags["kind"] == EmailKind.ORDER_SHIPPED.value
