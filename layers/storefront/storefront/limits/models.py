"""Client holds: an order's place in its clients' limits, and the problems a limit answers with."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from storefront.errors import StorefrontError


class ClientHold(BaseModel):
    """Where an order counts while it holds stock: one limit item per client (its email, its source IP), in each
    of which it is `member`, "<expiry, epoch seconds, 10 digits>#<order id>". Stored on the order, so whatever ends
    the order can give the places back; the expiry lets a place that was never given back lapse by itself."""

    model_config = ConfigDict(frozen=True)
    keys: list[str]
    member: str

    @property
    def expires_epoch(self) -> int:
        return expiry_of(self.member)


def member_for(order_id: str, expires_epoch: int) -> str:
    return f"{expires_epoch:010d}#{order_id}"


def expiry_of(member: str) -> int:
    return int(member.split("#", 1)[0])


class RateLimited(StorefrontError):
    """A client is at its limit: 429 with Retry-After, the seconds until one of its places lapses at the latest."""

    status, code, title = 429, "rate_limited", "Too many requests"

    def __init__(self, detail: str, retry_after_seconds: int, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail, errors)
        self.headers = {"Retry-After": str(retry_after_seconds)}
