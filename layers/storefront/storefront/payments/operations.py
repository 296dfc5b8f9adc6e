"""What an operator does to an order's money (docs/api.md, "Admin": cancel, refunds), as the HTTP routes call it:
request shapes, the refund's Idempotency-Key, and an entry in the admin audit log (storefront.audit) for every
write, on the order's trail (target order:<id>), so GET /admin/orders/{id} and GET /admin/audit show it."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field

from storefront.audit.log import AuditLog
from storefront.idempotency import IdempotencyStore, StoredResponse, request_hash, require_key
from storefront.money import Money
from storefront.orders.models import Order, Refund, RefundLine, StoredOrder
from storefront.payments.cancellation import Cancellations
from storefront.payments.service import PaymentTasks

if TYPE_CHECKING:
    from storefront.auth import Actor

Reason = Annotated[str, Field(min_length=1, max_length=500)]


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    reason: Reason


class RefundRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    amount: Money | None = None
    lines: Annotated[list[RefundLine], Field(max_length=50)] = []
    restock: bool = False
    reason: Reason


class OrderOperations:
    def __init__(
        self, payments: PaymentTasks, cancellations: Cancellations, idempotency: IdempotencyStore, audit: AuditLog
    ) -> None:
        self._payments = payments
        self._cancellations = cancellations
        self._idempotency = idempotency
        self._audit = audit

    def cancel(self, order_id: str, request: CancelRequest, actor: Actor) -> Order:
        order, cancelled_now = self._cancellations.cancel(order_id, request.reason, actor.username)
        if cancelled_now:
            self._audit.record(
                actor,
                "order.cancel",
                f"order:{order_id}",
                {"status": _status_before(order)},
                {"status": order.status.value, "reason": request.reason},
            )
        return order.public()

    def refund(
        self, order_id: str, request: RefundRequest, idempotency_key: str | None, actor: Actor
    ) -> StoredResponse:
        """201 with the Refund; the same key and body replay it, however often: one refund. The refund's id comes
        from the order and the key, so a retry after a failure half way (the money moved, then the stock return or
        a write failed) finds the same refund and finishes it, and the provider (idempotency key = the refund's id)
        refunds once; once that refund is on the order, the key stays bound to this body."""
        key = require_key(idempotency_key)
        refund_id = refund_id_for(order_id, key)

        def refund() -> StoredResponse:
            made = self._payments.refund(
                order_id,
                amount=request.amount,
                lines=request.lines,
                restock=request.restock,
                reason=request.reason,
                refund_id=refund_id,
            )
            public = Refund.model_validate(made.model_dump())
            self._audit.record(
                actor, "order.refund", f"order:{order_id}", None, {"refund": public.model_dump(mode="json")}
            )
            return StoredResponse(status=201, body=public.model_dump_json())

        return self._idempotency.run(
            f"refund:{order_id}",
            key,
            request_hash(request.model_dump(mode="json")),
            refund,
            effects_began=lambda: self._payments.has_refund(order_id, refund_id),
        )


def _status_before(cancelled: StoredOrder) -> str:
    """The status a cancelled order had: the one history records before `cancelled` (statuses only move forward)."""
    return cancelled.history[-2].status.value


def refund_id_for(order_id: str, idempotency_key: str) -> str:
    """The id of the refund an operator's request with this key makes: one refund per order and key."""
    return "rf_" + hashlib.sha256(f"{order_id}:{idempotency_key}".encode()).hexdigest()[:32]
