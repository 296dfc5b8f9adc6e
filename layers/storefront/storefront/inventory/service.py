"""Stock movements and their rules, exactly once however often Step Functions retries a task.

Each movement is one transaction (storefront.inventory.repository). When DynamoDB refuses it on a condition,
the stored lines say why, and the answer is the one the first, successful attempt would have given:
  reserve   the order's lines already stored  -> "reserved" (a retry whose first reply was lost): nothing twice
            a SKU short of stock              -> "rejected", naming every SKU short, with requested and available
  commit    lines already committed           -> "committed" (no-op)
  release   lines already released            -> "released" (no-op);  no lines at all -> "nothing_to_release"
ReservationNotHeld (a clear error, not a no-op) for commit after release, release after commit, and a reserve
retried after its release: units released to other buyers must not be shipped, units that left with a paid
order must not come back, so the workflow has to decide (refund, alert).
  return    units of committed lines back on hand, once per return id (a refund's, a cancellation's): a retry
            finds the return recorded -> "returned"; more units than the order has left to return, or lines
            that are not committed -> ReturnNotAllowed (never retry)
Stored lines that differ from the request's raise InvalidStockRequest: the request is wrong, never retry it.

An operator's movements (the admin API's, each audited in its own transaction):
  adjust         units on hand added or removed   -> "adjusted" with the level after it
                 the adjustment id recorded already, same adjustment -> "adjusted" (a retry): nothing twice
                 available would go below zero    -> "rejected" (insufficient_stock, with what is available)
  set_threshold  the SKU's low_stock_threshold     -> "threshold_set" with the level
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from storefront.audit.models import new_entry
from storefront.audit.repository import AuditRepository
from storefront.dynamodb import backoff
from storefront.errors import StorefrontError
from storefront.inventory.models import (
    STATE_AFTER,
    AdjustRequest,
    AnyStockRequest,
    CommitRequest,
    InvalidStockRequest,
    Movement,
    Rejection,
    ReservationLine,
    ReserveRequest,
    ReturnRequest,
    ShortLine,
    StockLevel,
    StockOutcome,
    ThresholdRequest,
)
from storefront.inventory.repository import InventoryRepository, MovementRefused, StockContention
from storefront.observability import count

# A refused write that the stored lines do not explain means stock changed between the write and the read
# (a release freed units): try again a few times, then report contention.
_MAX_ROUNDS = 4
# A return writes three items per SKU (level, line, ledger entry): DynamoDB takes 100 per transaction.
_RETURN_SKUS_PER_TRANSACTION = 33

__all__ = ["InvalidStockRequest", "ReservationNotHeld", "ReturnNotAllowed", "StockContention", "StockService"]


class ReservationNotHeld(StorefrontError):
    """Commit of an order whose stock was released, or release of one whose stock left with a paid order."""

    status, code, title = 409, "reservation_not_held", "Reservation not held"


class ReturnNotAllowed(StorefrontError):
    """A return of units the order never took (not committed), or more than it has left to return."""

    status, code, title = 409, "return_not_allowed", "Return not allowed"


class StockService:
    def __init__(
        self,
        inventory: InventoryRepository,
        audit: AuditRepository,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._inventory = inventory
        self._audit = audit
        self._now = now

    def handle(self, request: AnyStockRequest) -> StockOutcome:
        if isinstance(request, AdjustRequest):
            return self.adjust(request)
        if isinstance(request, ThresholdRequest):
            return self.set_threshold(request)
        if isinstance(request, ReturnRequest):
            return self.return_units(request.return_id, request.order_id, request.quantities())
        if isinstance(request, ReserveRequest):
            return self.reserve(request.order_id, request.quantities())
        if isinstance(request, CommitRequest):
            return self.commit(request.order_id, request.quantities())
        return self.release(request.order_id, request.quantities())

    # ---------------------------------------------------------------- order movements

    def reserve(self, order_id: str, quantities: dict[str, int]) -> StockOutcome:
        for attempt in range(_MAX_ROUNDS):
            try:
                self._inventory.reserve(order_id, quantities, self._now())
                return StockOutcome(outcome="reserved")
            except MovementRefused:
                lines = self._stored_lines(order_id, quantities)
                if any(line.state == "released" for line in lines.values()):
                    raise ReservationNotHeld(f"Order {order_id} was reserved and released already.") from None
                if lines:
                    return StockOutcome(outcome="reserved")  # an earlier attempt reserved them
                short = self._short_lines(quantities, self._inventory.levels(quantities))
                if short:
                    count("StockReservationsRejected")
                    return StockOutcome(
                        outcome="rejected",
                        reason=Rejection(
                            detail="Not enough stock: "
                            + "; ".join(f"{s.sku} ({s.requested} requested, {s.available} available)" for s in short)
                            + ".",
                            lines=short,
                        ),
                    )
                backoff(attempt)
        raise StockContention(f"Stock for order {order_id} kept changing; retry shortly.")

    def commit(self, order_id: str, quantities: dict[str, int]) -> StockOutcome:
        return self._settle("commit", order_id, quantities)

    def release(self, order_id: str, quantities: dict[str, int]) -> StockOutcome:
        return self._settle("release", order_id, quantities)

    def _settle(self, movement: Movement, order_id: str, quantities: dict[str, int]) -> StockOutcome:
        done = StockOutcome(outcome="committed" if movement == "commit" else "released")
        write = self._inventory.commit if movement == "commit" else self._inventory.release
        for attempt in range(_MAX_ROUNDS):
            try:
                write(order_id, quantities, self._now())
                return done
            except MovementRefused:
                lines = self._stored_lines(order_id, quantities)
                if not lines:
                    if movement == "release":
                        return StockOutcome(outcome="nothing_to_release")
                    raise ReservationNotHeld(f"Order {order_id} has no reserved stock to commit.") from None
                states = {line.state for line in lines.values()}
                if states == {STATE_AFTER[movement]}:
                    return done  # an earlier attempt did it
                if states != {"reserved"}:
                    raise ReservationNotHeld(
                        f"Cannot {movement} order {order_id}: its stock is {', '.join(sorted(states))}."
                    ) from None
                backoff(attempt)  # still reserved as requested: the refusal was transient
        raise StockContention(f"Stock for order {order_id} kept changing; retry shortly.")

    def return_units(self, return_id: str, order_id: str, quantities: dict[str, int]) -> StockOutcome:
        """Committed units back on hand (ledger reason `returned`), exactly once per return id."""
        skus = sorted(quantities)
        for start in range(0, len(skus), _RETURN_SKUS_PER_TRANSACTION):
            chunk = {sku: quantities[sku] for sku in skus[start : start + _RETURN_SKUS_PER_TRANSACTION]}
            self._return_chunk(return_id, order_id, chunk)
        return StockOutcome(outcome="returned")

    def _return_chunk(self, return_id: str, order_id: str, quantities: dict[str, int]) -> None:
        for attempt in range(_MAX_ROUNDS):
            recorded = self._inventory.returns(return_id, quantities)
            for sku, entry in recorded.items():
                if entry.order_id != order_id or entry.quantity != quantities[sku]:
                    raise InvalidStockRequest(
                        f"Return {return_id} of {sku} is recorded as {entry.quantity} units of "
                        f"order {entry.order_id}, not {quantities[sku]} of {order_id}."
                    )
            pending = {sku: q for sku, q in quantities.items() if sku not in recorded}
            if not pending:
                return  # an earlier attempt returned them
            lines = self._inventory.reservation_lines(order_id, pending)
            for sku, quantity in pending.items():
                line = lines.get(sku)
                if line is None or line.state != "committed" or line.quantity - line.returned < quantity:
                    left = line.quantity - line.returned if line and line.state == "committed" else 0
                    raise ReturnNotAllowed(f"Order {order_id} has {left} unit(s) of {sku} to return, not {quantity}.")
            try:
                self._inventory.return_units(return_id, order_id, pending, lines, self._now())
                count("StockReturned", sum(pending.values()))
                return
            except MovementRefused:
                backoff(attempt)  # a concurrent return of the same id, or of the same lines: read again
        raise StockContention(f"Returns of order {order_id} kept changing; retry shortly.")

    def _stored_lines(self, order_id: str, quantities: dict[str, int]) -> dict[str, ReservationLine]:
        """The order's stored lines; InvalidStockRequest if they are not exactly the requested ones."""
        lines = self._inventory.reservation_lines(order_id, quantities)
        stored = {sku: line.quantity for sku, line in lines.items()}
        if stored and stored != quantities:
            raise InvalidStockRequest(f"Order {order_id} holds {stored}, not the requested {quantities}.")
        return lines

    @staticmethod
    def _short_lines(quantities: dict[str, int], levels: dict[str, StockLevel]) -> list[ShortLine]:
        available = {sku: max(levels[sku].available, 0) if sku in levels else 0 for sku in quantities}
        return [
            ShortLine(sku=sku, requested=quantity, available=available[sku])
            for sku, quantity in quantities.items()
            if available[sku] < quantity
        ]

    # ---------------------------------------------------------------- an operator's movements

    def adjust(self, request: AdjustRequest) -> StockOutcome:
        """Units on hand added or removed, once per adjustment id, with its ledger entry and audit entry."""
        sku, delta = request.sku, request.delta
        recorded = {"delta": delta, "reason": request.reason, "note": request.note}
        for attempt in range(_MAX_ROUNDS):
            at = self._now()
            entry = new_entry(
                request.actor,
                "inventory.adjust",
                f"sku:{sku}",
                None,
                {k: v for k, v in recorded.items() if v is not None},
                at,
            )
            try:
                self._inventory.adjust(
                    sku,
                    request.adjustment_id,
                    delta,
                    request.reason,
                    at,
                    request.note,
                    request.actor.model_dump(exclude_none=True),
                    [self._audit.put_item(entry)],
                )
                count("StockAdjusted")
                return StockOutcome(outcome="adjusted", level=self._level(sku))
            except MovementRefused:
                earlier = self._inventory.adjustment(sku, request.adjustment_id)
                if earlier is not None:
                    if {k: earlier.get(k) for k in recorded} != recorded:
                        raise InvalidStockRequest(
                            f"Adjustment {request.adjustment_id} of {sku} was another one: "
                            f"{ {k: earlier.get(k) for k in recorded} }."
                        ) from None
                    return StockOutcome(outcome="adjusted", level=self._level(sku))  # a retry: done already
                available = max(self._level(sku).available, 0)
                if available + delta < 0:
                    return StockOutcome(
                        outcome="rejected",
                        reason=Rejection(
                            detail=f"Only {available} of {sku} available: cannot take away {-delta}.",
                            lines=[ShortLine(sku=sku, requested=-delta, available=available)],
                        ),
                    )
                backoff(attempt)  # refused on a level that changed meanwhile: try again
        raise StockContention(f"Stock for {sku} kept changing; retry shortly.")

    def set_threshold(self, request: ThresholdRequest) -> StockOutcome:
        """The SKU's low_stock_threshold (None: no stock.low events for it), audited; nothing written if unchanged."""
        for attempt in range(_MAX_ROUNDS):
            read = self._inventory.level(request.sku)
            before = read.low_stock_threshold if read else None
            if before == request.low_stock_threshold:
                return StockOutcome(outcome="threshold_set", level=self._level(request.sku))
            entry = new_entry(
                request.actor,
                "inventory.set_threshold",
                f"sku:{request.sku}",
                {"low_stock_threshold": before},
                {"low_stock_threshold": request.low_stock_threshold},
                self._now(),
            )
            try:
                self._inventory.set_threshold(
                    request.sku, request.low_stock_threshold, read, [self._audit.put_item(entry)]
                )
                return StockOutcome(outcome="threshold_set", level=self._level(request.sku))
            except MovementRefused:
                backoff(attempt)  # set by someone else meanwhile (or the level just created): read it again
        raise StockContention(f"The threshold of {request.sku} kept changing; retry shortly.")

    def _level(self, sku: str) -> StockLevel:
        """The SKU's level; one never stocked has none, which is a level of zero."""
        return self._inventory.level(sku) or StockLevel(sku=sku, on_hand=0, reserved=0, available=0)
