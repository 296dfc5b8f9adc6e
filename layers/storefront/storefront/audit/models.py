"""Audit entries, as GET /admin/audit shows them, and how an entry's changes are worked out."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # storefront.auth imports FastAPI, which the stock function must not pay for at cold start
    from storefront.auth import Actor


class ActorRef(BaseModel):
    """Who did it, as the audit log and the stock ledger keep it: the user's stable id and names, not their groups."""

    model_config = ConfigDict(frozen=True)
    sub: str
    username: str
    email: str | None = None

    @classmethod
    def of(cls, actor: Actor) -> ActorRef:
        return cls(sub=actor.sub, username=actor.username, email=actor.email)


class Change(BaseModel):
    """One field's value before and after (None: it did not exist)."""

    before: Any = None
    after: Any = None


class AuditEntry(BaseModel):
    id: str
    at: datetime
    actor: ActorRef
    action: str = Field(examples=["product.update"], description="<what>.<verb>")
    target: str = Field(examples=["product:linen-shirt"], description="<kind>:<id> of what was changed")
    changes: dict[str, Change] = Field(
        description="Each field that changed, before and after; a creation (a new "
        "product, a stock adjustment) has every field's value as after"
    )


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None


def changes(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> dict[str, Change]:
    """The top-level fields whose values differ between two versions of a thing (None: it did not exist)."""
    old, new = before or {}, after or {}
    return {
        name: Change(before=old.get(name), after=new.get(name))
        for name in sorted(set(old) | set(new))
        if old.get(name) != new.get(name)
    }


def new_entry(
    actor: Any,
    action: str,
    target: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    at: datetime,
    entry_id: str | None = None,
) -> AuditEntry:
    """The entry for a change `actor` (a storefront.auth.Actor) made at `at`; `entry_id` makes the entry of a
    retried change the same one (a random id otherwise)."""
    return AuditEntry(
        id=entry_id or secrets.token_hex(8),
        at=at,
        actor=ActorRef.of(actor),
        action=action,
        target=target,
        changes=changes(before, after),
    )
