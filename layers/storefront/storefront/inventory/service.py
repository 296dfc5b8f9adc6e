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
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from storefront.dynamodb import backoff
from storefront.errors import InsufficientStock, NotFound, StorefrontError, ValidationFailed
from storefront.inventory.models import (
    STATE_AFTER, CommitRequest, InvalidStockRequest, Movement, Rejection, ReleaseRequest, ReservationLine,
    ReserveRequest, ReturnRequest, ShortLine, StockLevel, StockOutcome,
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
    def __init__(self, inventory: InventoryRepository, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._inventory = inventory
        self._now = now

    def handle(self, request: ReserveRequest | CommitRequest | ReleaseRequest | ReturnRequest) -> StockOutcome:
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
                    return StockOutcome(outcome="rejected", reason=Rejection(
                        detail="Not enough stock: " + "; ".join(
                            f"{s.sku} ({s.requested} requested, {s.available} available)" for s in short) + ".",
                        lines=short))
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
                        f"Cannot {movement} order {order_id}: its stock is {', '.join(sorted(states))}.") from None
                backoff(attempt)  # still reserved as requested: the refusal was transient
        raise StockContention(f"Stock for order {order_id} kept changing; retry shortly.")

    def return_units(self, return_id: str, order_id: str, quantities: dict[str, int]) -> StockOutcome:
        """Committed units back on hand (ledger reason `returned`), exactly once per return id."""
        skus = sorted(quantities)
        for start in range(0, len(skus), _RETURN_SKUS_PER_TRANSACTION):
            chunk = {sku: quantities[sku] for sku in skus[start:start + _RETURN_SKUS_PER_TRANSACTION]}
            self._return_chunk(return_id, order_id, chunk)
        return StockOutcome(outcome="returned")

    def _return_chunk(self, return_id: str, order_id: str, quantities: dict[str, int]) -> None:
        for attempt in range(_MAX_ROUNDS):
            recorded = self._inventory.returns(return_id, quantities)
            for sku, entry in recorded.items():
                if entry.order_id != order_id or entry.quantity != quantities[sku]:
                    raise InvalidStockRequest(f"Return {return_id} of {sku} is recorded as {entry.quantity} units of "
                                              f"order {entry.order_id}, not {quantities[sku]} of {order_id}.")
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
        return [ShortLine(sku=sku, requested=quantity, available=available[sku])
                for sku, quantity in quantities.items() if available[sku] < quantity]

    # ---------------------------------------------------------------- admin

    def level(self, sku: str) -> StockLevel:
        level = self._inventory.level(sku)
        if level is None:
            raise NotFound(f"No stock record for {sku}.")
        return level

    def adjust(self, sku: str, delta: int, reason: str) -> StockLevel:
        """Add `delta` units on hand (a delivery, a stock count, damage); 409 if available would go below zero."""
        if delta == 0:
            raise ValidationFailed("validation_error", "An adjustment must change the stock.",
                                   [{"field": "delta", "code": "zero", "message": "must not be 0"}])
        for attempt in range(_MAX_ROUNDS):
            try:
                self._inventory.adjust(sku, delta, reason, self._now())
                return self.level(sku)
            except MovementRefused:
                available = self.level(sku).available  # NotFound when the SKU has no stock record
                if available + delta < 0:
                    raise InsufficientStock(
                        f"Only {available} of {sku} available: cannot remove {-delta}.",
                        [{"sku": sku, "code": "insufficient_stock", "available": available,
                          "message": f"{-delta} removed, {available} available"}]) from None
                backoff(attempt)
        raise StockContention(f"Stock for {sku} kept changing; retry shortly.")
