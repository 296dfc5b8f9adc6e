"""The local gateway's route throttles (local_cloud.gateway.RouteThrottles): API Gateway's token bucket per route,
from the template's DefaultRouteSettings and RouteSettings, on a clock the test moves."""

from __future__ import annotations

from local_cloud.gateway import RouteThrottles
from local_cloud.template import Template


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_route_takes_its_burst_at_once_then_its_rate() -> None:
    clock = Clock()
    throttles = RouteThrottles((10.0, 100.0), {"POST /checkout": (2.0, 3.0)}, clock)
    assert [throttles.allow("POST /checkout") for _ in range(4)] == [True, True, True, False]
    clock.now += 0.4  # 0.8 of a token: still empty
    assert throttles.allow("POST /checkout") is False
    clock.now += 0.2  # 1.2 tokens
    assert [throttles.allow("POST /checkout") for _ in range(2)] == [True, False]
    clock.now += 60  # refills to the burst, never beyond it
    assert sum(throttles.allow("POST /checkout") for _ in range(10)) == 3


def test_routes_have_separate_buckets_and_the_default_applies_to_the_others() -> None:
    clock = Clock()
    throttles = RouteThrottles((1.0, 2.0), {"POST /checkout": (1.0, 1.0)}, clock)
    assert throttles.allow("POST /checkout") and not throttles.allow("POST /checkout")
    assert [throttles.allow("GET /products") for _ in range(3)] == [True, True, False]
    assert [throttles.allow("GET /categories") for _ in range(3)] == [True, True, False]


def test_no_settings_means_no_throttle() -> None:
    throttles = RouteThrottles.of({})
    assert all(throttles.allow("GET /products") for _ in range(10_000))


def test_the_template_throttles_checkout_and_webhooks_far_below_catalog_reads() -> None:
    template = Template.load()
    api = template.of_type("AWS::Serverless::HttpApi")["HttpApi"]["Properties"]
    throttles = RouteThrottles.of(template.resolve({k: api[k] for k in ("DefaultRouteSettings", "RouteSettings")}))
    catalog_rate, catalog_burst = throttles.limits("GET /products")  # type: ignore[misc]
    routes = {route.route_key for route in template.routes()}
    for route_key in ("POST /checkout", "POST /webhooks/payments/{provider}", "POST /webhooks/carriers/{carrier}"):
        assert route_key in routes, f"RouteSettings names {route_key}, which the template does not route"
        rate, burst = throttles.limits(route_key)  # type: ignore[misc]
        assert rate * 5 <= catalog_rate and burst * 5 <= catalog_burst, (route_key, rate, burst)
    for route_key in api["RouteSettings"]:
        assert route_key in routes, f"RouteSettings names {route_key}, which no function serves"
