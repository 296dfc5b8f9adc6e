"""`python -m ops.smoke` (docs/deploy.md, "Smoke test") against the local stack: a purchase to awaiting_payment,
cancelled by an operator, and no stock left held, whichever way the admin token is obtained and wherever the run
stops."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from storefront.inventory.repository import InventoryRepository
from storefront.orders.models import OrderStatus
from storefront.orders.repository import OrderRepository

from ops import smoke

ROOT = Path(__file__).resolve().parents[2]
ORDER_LINE = re.compile(r"POST /checkout: order (\S+) ")
SKU_LINE = re.compile(r"GET /products: \d+ products; (\S+) has \d+ available")


def _order_and_sku(output: str) -> tuple[str, str]:
    order, sku = ORDER_LINE.search(output), SKU_LINE.search(output)
    assert order and sku, output
    return order.group(1), sku.group(1)


def _assert_undone(cloud: Any, order_id: str, sku: str) -> None:
    """The order is cancelled and its reservation released: the unit is back, exactly once."""
    orders = OrderRepository(cloud.client("dynamodb"), cloud.physical_id("OrdersTable"))
    order = orders.get(order_id)
    assert order is not None and order.status == OrderStatus.CANCELLED, order
    inventory = InventoryRepository(cloud.client("dynamodb"), cloud.physical_id("InventoryTable"))
    line = inventory.reservation_lines(order_id, [sku])[sku]
    assert line.state == "released", line
    assert [entry.movement for entry in line.history] == ["reserve", "release"], line.history


def _orders_of(cloud: Any, email: str) -> list[dict[str, Any]]:
    answer = cloud.client("dynamodb").query(
        TableName=cloud.physical_id("OrdersTable"),
        IndexName="ByEmail",
        KeyConditionExpression="email_key = :email",
        ExpressionAttributeValues={":email": {"S": email}},
    )
    return list(answer["Items"])


def _smoke(argv: list[str], api: httpx.Client | None = None) -> tuple[int, str]:
    """ops.smoke in this process: through main(), or with `api` as its HTTP client."""
    out = io.StringIO()
    if api is None:
        return smoke.main(argv, out=out), out.getvalue()
    return (0 if smoke.run(api, smoke.parse_args(argv), {}, out) else 1), out.getvalue()


def test_the_smoke_test_passes_against_the_local_stack_and_leaves_no_stock_held(gateway: Any, cloud: Any) -> None:
    """As docs/deploy.md runs it, in a process of its own: every step ok, exit 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    env.update({"PYTHONPATH": f"{ROOT / 'layers' / 'storefront'}{os.pathsep}{ROOT}", "PYTHONDONTWRITEBYTECODE": "1"})
    run = subprocess.run(
        [sys.executable, "-m", "ops.smoke", "--api", gateway.url],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    steps = [line.split()[:2] for line in run.stdout.splitlines() if line.startswith("  ")]
    assert [status for status, _ in steps] == ["ok"] * 9, run.stdout
    assert [name for _, name in steps] == [
        "shop",
        "catalog",
        "admin",
        "cart",
        "shipping",
        "checkout",
        "payment",
        "cancel",
        "stock",
    ], run.stdout
    assert "Smoke test passed" in run.stdout
    _assert_undone(cloud, *_order_and_sku(run.stdout))


def test_an_operator_signs_in_through_the_user_pool(gateway: Any, cloud: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """--admin-user: InitiateAuth USER_PASSWORD_AUTH with the pool's client, as on AWS; the password from the
    environment, never asked for when it is there."""
    email, password = f"smoke-{uuid.uuid4().hex[:8]}@example.com", "Smoke-test-passw0rd!"
    gateway.user_pool.create_user(email, password, ["admin"])
    monkeypatch.setenv(smoke.PASSWORD_VARIABLE, password)
    monkeypatch.setattr(smoke.getpass, "getpass", lambda prompt: pytest.fail(f"asked: {prompt}"))

    code, output = _smoke(["--api", gateway.url, "--admin-user", email])

    assert code == 0, output
    assert f"Cognito InitiateAuth as {email}" in output
    _assert_undone(cloud, *_order_and_sku(output))


def test_a_token_of_another_group_or_none_at_all_fails_before_anything_is_made(gateway: Any, cloud: Any) -> None:
    staff = httpx.post(f"{gateway.url}/dev/auth/token", json={"groups": ["staff"]}).json()["access_token"]
    for token, said in ((staff, "cancelling needs admin"), ("not-a-token", "answered 401")):
        email = f"smoke-{uuid.uuid4().hex[:8]}@example.com"
        code, output = _smoke(["--api", gateway.url, "--token", token, "--email", email])

        assert code == 1, output
        assert re.search(r"^  FAIL admin token .*" + said, output, re.MULTILINE), output
        assert "cart" not in output and "Smoke test FAILED" in output
        assert _orders_of(cloud, email) == []


class _OrdersUnreadable(httpx.BaseTransport):
    """The gateway, except that GET /orders/{id} answers 503: the run fails after its checkout."""

    def __init__(self) -> None:
        self._real = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path.startswith("/orders/"):
            return httpx.Response(503, json={"code": "service_unavailable"})
        return self._real.handle_request(request)


def test_a_run_that_fails_after_checkout_cancels_its_order(gateway: Any, cloud: Any) -> None:
    with httpx.Client(base_url=gateway.url, transport=_OrdersUnreadable(), timeout=30) as api:
        code, output = _smoke(["--api", gateway.url], api=api)

    assert code == 1, output
    assert re.search(r"^  FAIL payment .*answered 503", output, re.MULTILINE), output
    order_id, sku = _order_and_sku(output)
    assert re.search(rf"^  cleanup +POST /admin/orders/{order_id}/cancel: 200 cancelled$", output, re.MULTILINE), output
    # The release is the saga's, after the cancel: wait for it as the stock step would.
    inventory = InventoryRepository(cloud.client("dynamodb"), cloud.physical_id("InventoryTable"))
    smoke._wait_for("the release", lambda: inventory.reservation_lines(order_id, [sku])[sku].state == "released", 30)
    _assert_undone(cloud, order_id, sku)


def test_usage_errors_say_what_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, said in (
        ([], "give --api URL, or --stack NAME"),
        (
            ["--api", "http://127.0.0.1:9", "--token", "t", "--admin-user", "a@example.com"],
            "give --token or --admin-user, not both",
        ),
    ):
        with pytest.raises(SystemExit) as exit_:
            smoke.main(argv)
        assert exit_.value.code == 2
        assert said in capsys.readouterr().err
