"""Shared fixtures. Nothing here reaches beyond loopback: every AWS call goes to the local cloud (moto)."""

from __future__ import annotations

import functools
import json
import os
import socket
from collections.abc import Iterator

import httpx
import pytest

# Belt and braces: even a test that forgot the local cloud can never sign a request for a real account.
os.environ.update({"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"})
# What template.yaml's Globals give every function; handlers built directly in tests (not through the local cloud)
# need it for the metrics their entry point flushes.
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Storefront")
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_SESSION_TOKEN", None)

# Every httpx.Client loads the CA bundle into a new TLS context (40 ms of CPU) though the tests speak plain HTTP to
# loopback, and a run makes some 900 clients: the default context is made once and shared (contexts are
# immutable once made, and safe to share between clients and threads).
httpx._transports.default.create_ssl_context = functools.lru_cache(maxsize=8)(  # type: ignore[attr-defined]
    httpx._transports.default.create_ssl_context  # type: ignore[attr-defined]
)


@pytest.fixture(scope="session")
def shop_config_without_client_limits(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """shop.json with the per-client checkout limits at their maxima, for every local cloud of the session
    (SHOP_CONFIG_FILE): the suite's checkouts come from one address, and many of its tests check out far more
    orders than a shopper may hold. tests/integration/test_checkout_limits.py runs the shipped limits."""
    from storefront.shop import DEFAULT_FILE

    config = json.loads(DEFAULT_FILE.read_text())
    config["checkout_limits"].update(
        orders_holding_stock_per_email=1000, orders_holding_stock_per_ip=100_000, units_per_sku=99
    )
    path = tmp_path_factory.mktemp("shop") / "shop.json"
    path.write_text(json.dumps(config))
    previous = os.environ.get("SHOP_CONFIG_FILE")
    os.environ["SHOP_CONFIG_FILE"] = str(path)
    yield str(path)
    if previous is None:
        os.environ.pop("SHOP_CONFIG_FILE", None)
    else:
        os.environ["SHOP_CONFIG_FILE"] = previous


@pytest.fixture(scope="session")
def gateway_port() -> int:
    """The session gateway's port, chosen before the cloud starts: the admin API makes image URLs with it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def cloud(shop_config_without_client_limits: str, gateway_port: int) -> Iterator[object]:
    """One local cloud per test session (per xdist worker), provisioned from template.yaml with the demo data."""
    from local_cloud.cloud import LocalCloud
    from local_cloud.demo_data import seed

    # The route throttles at their maxima: many tests race hundreds of checkouts through one gateway, which is not
    # what they test; tests/integration/test_route_throttles.py runs the template's own buckets.
    unthrottled = dict.fromkeys(("CheckoutBurstLimit", "WebhookBurstLimit", "ApiBurstLimit"), "5000")
    unthrottled |= dict.fromkeys(("CheckoutRateLimit", "WebhookRateLimit", "ApiRateLimit"), "10000")
    with LocalCloud(
        parameter_overrides={
            "AllowedOrigins": "http://localhost:*,http://127.0.0.1:*",
            "ImageBaseUrl": f"http://127.0.0.1:{gateway_port}",
            **unthrottled,
        }
    ) as local:
        seed(local)
        yield local


@pytest.fixture(scope="session")
def gateway(cloud: object, gateway_port: int) -> Iterator[object]:
    from local_cloud.gateway import Gateway

    gw = Gateway(cloud, port=gateway_port).start()  # type: ignore[arg-type]
    yield gw
    gw.stop()


@pytest.fixture
def api(gateway: object) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=30) as client:  # type: ignore[attr-defined]
        yield client
