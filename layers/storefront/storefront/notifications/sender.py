"""Amazon SES (API v2) as the notifications service needs it: send one email, at a pace SES accepts.

The same adapter runs locally against moto's SES, so there is no local sender to keep faithful.
SES's answers, and what becomes of the message:
  accepted                          -> its message id
  MessageRejected (this message)    -> SendRefused: final, the event is acknowledged without a mail
  anything else (throttled, sending paused, a timeout, an outage, our own misconfiguration)
                                    -> raised as it is: the queue delivers the event again later, then the DLQ
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import formataddr
from typing import Any

from botocore.exceptions import ClientError

from storefront.notifications.models import Email


class SendRefused(Exception):
    """SES refused this message for good (its content or its recipient); sending it again would not help. `code` is
    SES's error code, safe to log; the message itself may quote the recipient's address."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class SesSender:
    def __init__(
        self,
        client: Any,
        *,
        from_address: str,
        from_name: str,
        reply_to: str,
        configuration_set: str,
        min_interval_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        # The shop's name as the sender's display name, RFC 2047-encoded when it is not ASCII (as SES requires).
        self._from = formataddr((from_name, from_address), charset="utf-8")
        self._reply_to = reply_to
        self._configuration_set = configuration_set
        self._interval = min_interval_seconds
        self._clock = clock
        self._sleep = sleep
        self._next_at = 0.0

    def send(self, email: Email) -> str:
        """Send `email`; returns SES's message id. Waits first if the last send was less than the interval ago."""
        self._pace()
        try:
            response = self._client.send_email(
                FromEmailAddress=self._from,
                Destination={"ToAddresses": [email.to]},
                ReplyToAddresses=[self._reply_to],
                Content={
                    "Simple": {
                        "Subject": {"Data": email.subject, "Charset": "UTF-8"},
                        "Body": {
                            "Text": {"Data": email.text, "Charset": "UTF-8"},
                            "Html": {"Data": email.html, "Charset": "UTF-8"},
                        },
                    }
                },
                ConfigurationSetName=self._configuration_set,
                EmailTags=[{"Name": name, "Value": value} for name, value in email.tags.items()],
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "MessageRejected":
                raise SendRefused("MessageRejected", error.response["Error"].get("Message", "")) from error
            raise
        return str(response["MessageId"])

    def _pace(self) -> None:
        """At most one send per interval from this execution environment: with the queue mapping's
        MaximumConcurrency environments, that keeps the function under SES's account-wide sending rate."""
        wait = self._next_at - self._clock()
        if wait > 0:
            self._sleep(wait)
        self._next_at = max(self._next_at, self._clock()) + self._interval
