"""Email addresses a mail may go to: one ASCII mailbox, nothing a mail header could be made to say more with.

Checkout accepts any `local@domain.tld` without whitespace (storefront/orders/models.py), which lets through
what a header must never carry: commas and angle brackets (more recipients, display names), quotes, control
and bidirectional-formatting characters. A mail goes only to an address that is a plain dot-atom
(RFC 5322 3.2.3) at a host name; an internationalised domain is sent in its ASCII (IDNA) form, as SES
requires. Anything else is refused, never repaired: a guessed address could be somebody else's.
"""

from __future__ import annotations

import re

MAX_LENGTH = 254  # RFC 5321's path limit, less the angle brackets
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
# The top-level domain that never resolves, by definition (RFC 2606): a mail there can only bounce, which counts
# against the SES account's bounce rate.
_NEVER_DELIVERED = frozenset({"invalid"})


def deliverable(address: str) -> str | None:
    """The address as a mail may be sent to it (domain lower-cased, IDNA-encoded), or None when it is not one."""
    local, at, domain = address.rpartition("@")
    if not at or not local or len(local) > 64 or not _LOCAL_PART.fullmatch(local):
        return None
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower() if not domain.isascii() else domain.lower()
    except UnicodeError:
        return None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
        return None
    if labels[-1] in _NEVER_DELIVERED:
        return None  # e.g. an erased order's address (ops.erase_customer): a send would only bounce
    result = f"{local}@{ascii_domain}"
    return result if len(result) <= MAX_LENGTH else None
