"""The audit log's one interface: every admin write calls `record` (or, to write the entry in the change's own
transaction, builds it with storefront.audit.models.new_entry and hands it to its repository, which writes
AuditRepository.put_item(entry) beside the change).

    audit.record(actor, "order.cancel", f"order:{order_id}", before={"status": "paid"}, after={"status": "cancelled"})

`actor` is the storefront.auth.Actor of the request; `action` is "<what>.<verb>" (product.create, inventory.adjust,
order.refund); `target` is "<kind>:<id>"; `before` and `after` are the fields of the thing as they were and are
(None: it did not exist), of which the entry keeps those that changed. Entries are kept AUDIT_RETENTION_DAYS.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from storefront.audit.models import AuditEntry, AuditPage, new_entry
from storefront.audit.repository import AuditRepository
from storefront.pagination import CursorCodec

_CURSOR_SCOPE = "audit"


class AuditLog:
    def __init__(self, repository: AuditRepository, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._repository = repository
        self._now = now

    def record(
        self, actor: Any, action: str, target: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
    ) -> AuditEntry:
        entry = new_entry(actor, action, target, before, after, self._now())
        self._repository.put(entry)
        return entry

    def list(self, limit: int, cursor: str | None, cursors: CursorCodec) -> AuditPage:
        """A page of the whole log. `cursors` signs the page's cursor: only a reader of the log needs its secret, so
        a function that only records entries (the order admin function) holds none."""
        after = cursors.decode(cursor, _CURSOR_SCOPE)["sk"] if cursor else None
        entries, resume = self._repository.page(limit, after)
        return AuditPage(items=entries, next_cursor=cursors.encode({"sk": resume}, _CURSOR_SCOPE) if resume else None)

    def for_target(self, target: str) -> builtins.list[AuditEntry]:
        return self._repository.for_target(target)
