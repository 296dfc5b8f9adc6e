"""What every webhook endpoint shares: signature checks (signatures.py), the problems it answers with,
and parsing a verified body into the sender's event model."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ValidationError

from storefront.errors import StorefrontError
from storefront.observability import count
from storefront.webhooks import signatures

log = logging.getLogger("storefront.webhooks")


class WebhookReceipt(BaseModel):
    received: bool = True


class InvalidWebhookSignature(StorefrontError):
    status, code, title = 400, "invalid_signature", "Invalid signature"


class MalformedEvent(StorefrontError):
    status, code, title = 400, "malformed_event", "Malformed event"


class MalformedJson(MalformedEvent):
    code, title = "malformed_json", "Malformed JSON"


class UnknownWebhookSender(StorefrontError):
    status, code, title = 404, "not_found", "Not found"


def verify_signature(
    payload: bytes, header: str | None, secrets: Iterable[str], *, header_name: str, sender: str
) -> None:
    """InvalidWebhookSignature (400) unless `header` proves the raw `payload` came from `sender`."""
    try:
        signatures.verify(payload, header, secrets)
    except signatures.InvalidSignature as error:
        log.warning("%s webhook rejected: %s", sender, error)
        count("WebhookSignaturesInvalid")  # a spike means a wrong webhook secret (or someone probing)
        raise InvalidWebhookSignature(
            f"The {header_name} header does not prove this body came from the {sender}."
        ) from error


def parse_event(payload: bytes, model: type[Any], what: str) -> Any:
    """The verified body as `model`; MalformedJson or MalformedEvent (400) when it is not `what`."""
    try:
        return model.model_validate_json(payload)
    except ValidationError as error:
        if any(e["type"] == "json_invalid" for e in error.errors()):
            raise MalformedJson("The body is not valid JSON.") from error
        raise MalformedEvent(f"The body is not {what} this endpoint understands.") from error
