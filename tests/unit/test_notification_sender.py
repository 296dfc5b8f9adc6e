"""The SES adapter: the request it makes, how SES's refusals are told apart, and its pace."""

from __future__ import annotations

from email.header import decode_header, make_header
from email.utils import parseaddr
from typing import Any

import pytest
from botocore.exceptions import ClientError
from storefront.notifications.models import Email
from storefront.notifications.sender import SendRefused, SesSender

EMAIL = Email(
    to="ada@example.com",
    subject="Ihre Bestellung X ist bestätigt",
    text="Hallo",
    html="<p>Hallo</p>",
    tags={"kind": "order_confirmed", "order_id": "X"},
)


class Client:
    def __init__(self, *errors: str) -> None:
        self.requests: list[dict[str, Any]] = []
        self.errors = list(errors)

    def send_email(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        if self.errors:
            raise ClientError({"Error": {"Code": self.errors.pop(0), "Message": "no"}}, "SendEmail")
        return {"MessageId": f"m-{len(self.requests)}"}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.now += seconds


def sender(client: Client, clock: Clock | None = None, interval: float = 0.0, name: str = "Storefront") -> SesSender:
    clock = clock or Clock()
    return SesSender(
        client,
        from_address="orders@storefront.example",
        from_name=name,
        reply_to="help@storefront.example",
        configuration_set="storefront-notifications",
        min_interval_seconds=interval,
        clock=clock,
        sleep=clock.sleep,
    )


def test_the_request_has_both_parts_the_configuration_set_and_the_tags() -> None:
    client = Client()
    assert sender(client).send(EMAIL) == "m-1"
    (request,) = client.requests
    assert request["FromEmailAddress"] == "Storefront <orders@storefront.example>"
    assert request["Destination"] == {"ToAddresses": ["ada@example.com"]}
    assert request["ReplyToAddresses"] == ["help@storefront.example"]
    assert request["ConfigurationSetName"] == "storefront-notifications"
    body = request["Content"]["Simple"]
    assert body["Subject"] == {"Data": EMAIL.subject, "Charset": "UTF-8"}
    assert body["Body"]["Text"]["Data"] == "Hallo" and body["Body"]["Html"]["Data"] == "<p>Hallo</p>"
    assert request["EmailTags"] == [{"Name": "kind", "Value": "order_confirmed"}, {"Name": "order_id", "Value": "X"}]


def test_a_shop_name_that_is_not_ascii_is_encoded_for_the_from_header() -> None:
    client = Client()
    sender(client, name="Bücherstube, Köln").send(EMAIL)
    header = client.requests[0]["FromEmailAddress"]
    assert header.isascii() and header.startswith("=?utf-8?")  # RFC 2047, as SES requires for a display name
    name, address = parseaddr(header)
    assert (str(make_header(decode_header(name))), address) == ("Bücherstube, Köln", "orders@storefront.example")


def test_only_a_rejected_message_is_final() -> None:
    with pytest.raises(SendRefused):
        sender(Client("MessageRejected")).send(EMAIL)
    for code in (
        "TooManyRequestsException",
        "SendingPausedException",
        "LimitExceededException",
        "MailFromDomainNotVerifiedException",
        "InternalFailure",
    ):
        with pytest.raises(ClientError) as raised:
            sender(Client(code)).send(EMAIL)
        assert not isinstance(raised.value, SendRefused), code  # the queue delivers it again


def test_sends_keep_the_interval() -> None:
    clock = Clock()
    paced = sender(Client(), clock, interval=0.25)
    for _ in range(4):
        paced.send(EMAIL)
    assert clock.slept == [0.25, 0.25, 0.25]  # the first goes at once
    clock.now += 10  # a quiet while: the next goes at once too
    paced.send(EMAIL)
    assert clock.slept == [0.25, 0.25, 0.25]
