"""The local gateway enforces the template's route throttles as API Gateway does: a route whose bucket is empty
is answered 429 {"message":"Too Many Requests"} before its function runs, other routes are untouched, and the
bucket refills at its rate. Run with the template's own settings (the session's gateway runs unthrottled)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from local_cloud.cloud import LocalCloud
from local_cloud.gateway import Gateway


class Clock:
    """The buckets' clock, moved by the test: a slow machine must not refill a bucket between two requests."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def throttled(cloud: LocalCloud, clock: Clock) -> Iterator[httpx.Client]:
    """A second gateway on the session's cloud, built with a checkout bucket of 3 refilling at 2 per second."""
    overrides = cloud.template.parameter_overrides
    saved = dict(overrides)
    overrides.update(CheckoutBurstLimit="3", CheckoutRateLimit="2")
    try:
        gateway = Gateway(cloud, port=0)  # reads the throttles now
    finally:
        overrides.clear()
        overrides.update(saved)
    gateway.throttles._clock = clock
    gateway.start()
    try:
        with httpx.Client(base_url=gateway.url, timeout=30) as client:
            yield client
    finally:
        gateway.stop()


def test_a_route_over_its_burst_is_429_before_the_function_runs(
    throttled: httpx.Client, cloud: LocalCloud, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = cloud.functions["CheckoutFunction"]
    calls: list[object] = []
    real_invoke = checkout.invoke
    monkeypatch.setattr(checkout, "invoke", lambda event, *a, **k: calls.append(event) or real_invoke(event, *a, **k))

    answers = [throttled.post("/checkout", json={}, headers={"Idempotency-Key": f"throttle-{i}"}) for i in range(5)]
    assert [a.status_code for a in answers[:3]] == [422, 422, 422]  # the function ran: an empty body is invalid
    assert [a.status_code for a in answers[3:]] == [429, 429]
    assert all(a.json() == {"message": "Too Many Requests"} for a in answers[3:])
    assert len(calls) == 3, "a throttled request must not reach the function"

    assert throttled.get("/products?limit=1").status_code == 200  # another route, another bucket
    clock.now += 0.6  # 2 per second: one token back
    assert throttled.post("/checkout", json={}, headers={"Idempotency-Key": "throttle-5"}).status_code == 422
    assert throttled.post("/checkout", json={}, headers={"Idempotency-Key": "throttle-6"}).status_code == 429
