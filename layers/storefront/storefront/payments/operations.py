"""What an operator does to an order's money (docs/api.md, "Admin": cancel, refunds), as the HTTP routes call it:
request shapes, the refund's Idempotency-Key, and an audit entry for every write."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from storefront.idempotency import IdempotencyStore, StoredResponse, request_hash, require_key
from storefront.money import Money
from storefront.orders.audit import AuditLog
from storefront.orders.models import Order, Refund, RefundLine
from storefront.payments.cancellation import Cancellations
from storefront.payments.service import PaymentTasks

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
    def __init__(self, payments: PaymentTasks, cancellations: Cancellations, idempotency: IdempotencyStore,
                 audit: AuditLog, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._payments = payments
        self._cancellations = cancellations
        self._idempotency = idempotency
        self._audit = audit
        self._clock = clock

    def cancel(self, order_id: str, request: CancelRequest, actor: str) -> Order:
        order, cancelled_now = self._cancellations.cancel(order_id, request.reason, actor)
        if cancelled_now:
            self._audit.record(self._clock(), actor, "order.cancel", order_id,
                               {"reason": request.reason, "status": order.status.value})
        return order.public()

    def refund(self, order_id: str, request: RefundRequest, idempotency_key: str | None, actor: str) -> StoredResponse:
        """201 with the Refund; the same key and body replay it, however often: one refund. The refund's id comes
        from the order and the key, so a retry after a failure half way (the money moved, then the stock return or
        a write failed) finds the same refund and finishes it, and the provider (idempotency key = the refund's id)
        refunds once; once that refund is on the order, the key stays bound to this body."""
        key = require_key(idempotency_key)
        refund_id = refund_id_for(order_id, key)

        def refund() -> StoredResponse:
            made = self._payments.refund(order_id, amount=request.amount, lines=request.lines,
                                         restock=request.restock, reason=request.reason, refund_id=refund_id)
            public = Refund.model_validate(made.model_dump())
            self._audit.record(self._clock(), actor, "order.refund", order_id, {"refund": public.model_dump(mode="json")})
            return StoredResponse(status=201, body=public.model_dump_json())

        return self._idempotency.run(f"refund:{order_id}", key, request_hash(request.model_dump(mode="json")), refund,
                                     effects_began=lambda: self._payments.has_refund(order_id, refund_id))


def refund_id_for(order_id: str, idempotency_key: str) -> str:
    """The id of the refund an operator's request with this key makes: one refund per order and key."""
    return "rf_" + hashlib.sha256(f"{order_id}:{idempotency_key}".encode()).hexdigest()[:32]
