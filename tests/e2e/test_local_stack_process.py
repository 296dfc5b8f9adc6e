"""`make dev` as a newcomer runs it: `python -m local_cloud serve` in its own process, used over HTTP, then stopped.

The process is started the way the Makefile starts it (PYTHONPATH set, no terminal: stdin from /dev/null,
output to a file), with no AWS settings of this test session in its environment.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
import pytest
from botocore import UNSIGNED
from botocore.config import Config

pytestmark = pytest.mark.slow("process")

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 60
STOP_SECONDS = 15
FRONTEND = "http://localhost:5173"  # a Vite dev server: allowed by the local default http://localhost:*
API_LINE = re.compile(r"^\s*API\s+(http://\S+)\s*$", re.MULTILINE)
ADMIN_LINE = re.compile(r"sign in as\s+(\S+@\S+) / (\S+)\s")
COGNITO_LINE = re.compile(r"Cognito\s+(http://127\.0\.0\.1:\d+)\s.*client id (\S+),")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_")) and k != "PORT"}
    env.update(
        {
            "PYTHONPATH": f"{ROOT / 'layers' / 'storefront'}{os.pathsep}{ROOT}",
            "SAM_CLI_TELEMETRY": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            **extra,
        }
    )
    return env


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, as `kill`, systemd or a container runtime sends it; returns the exit status."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"still running {STOP_SECONDS}s after SIGTERM; output:\n{self.output()}")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def start(log: Path, args: list[str], env: dict[str, str]) -> Served:
    with log.open("wb") as out:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "local_cloud", "serve", *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # no controlling terminal, as under make in CI
    served = Served(process, log)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if (match := API_LINE.search(served.output())) and "Ctrl-C or SIGTERM" in served.output():
            served.url = match.group(1)
            return served
        if process.poll() is not None:
            pytest.fail(f"`python -m local_cloud serve` exited with {process.returncode}:\n{served.output()}")
        time.sleep(0.1)
    served.kill()
    pytest.fail(f"no URLs printed within {STARTUP_SECONDS}s; output so far:\n{served.output()}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    port = _free_port()
    served = start(tmp_path_factory.mktemp("serve") / "serve.log", ["--port", str(port)], _environment())
    try:
        assert served.url == f"http://127.0.0.1:{port}", served.output()
        yield served
    finally:
        if served.process.poll() is None:
            served.process.send_signal(signal.SIGTERM)
            try:
                served.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                served.kill()


@pytest.fixture
def http(stack: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        yield client


def _assert_problem(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == "application/problem+json", response.headers
    problem = response.json()
    assert problem["status"] == status and problem["code"] == code, problem
    assert {"type", "title", "detail"} <= set(problem), problem
    return problem


def test_banner_names_every_url(stack: Served) -> None:
    output = stack.output()
    for path in ("/products", "/products/linen-shirt", "/categories", "/openapi.json"):
        assert f"{stack.url}{path}" in output, output
    assert re.search(r"AWS \(moto\)\s+http://127\.0\.0\.1:\d+", output), output


def test_lists_every_demo_product_across_pages(http: httpx.Client) -> None:
    ids: list[str] = []
    pages = 0
    params: dict[str, str | int] = {"limit": 7}
    while True:
        response = http.get("/products", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 7
        ids += [item["id"] for item in page["items"]]
        pages += 1
        assert pages <= 50, "pagination does not end"
        if page["next_cursor"] is None:
            break
        params = {"limit": 7, "cursor": page["next_cursor"]}
    assert len(ids) >= 20, ids
    assert len(set(ids)) == len(ids), f"a product appears on two pages: {ids}"
    assert pages >= 3
    everything = http.get("/products", params={"limit": 100}).json()
    assert sorted(ids) == sorted(item["id"] for item in everything["items"])
    assert everything["next_cursor"] is None


def test_etag_and_if_none_match(http: httpx.Client) -> None:
    first = http.get("/products/linen-shirt")
    assert first.status_code == 200, first.text
    assert first.json()["id"] == "linen-shirt"
    etag = first.headers["etag"]
    assert re.fullmatch(r'"[^"]+"', etag), f"not a strong ETag: {etag}"
    assert first.headers["cache-control"].startswith("public, max-age="), first.headers
    again = http.get("/products/linen-shirt", headers={"If-None-Match": etag})
    assert again.status_code == 304, again.text
    assert again.content == b""
    assert again.headers["etag"] == etag
    other = http.get("/products/linen-shirt", headers={"If-None-Match": '"not-the-current-etag"'})
    assert other.status_code == 200 and other.content == first.content


@pytest.mark.parametrize("cursor", ["not-a-cursor", "eyJrIjp7fX0.AAAAAAAAAAAAAAAAAAAAAA", "tampered"])
def test_bad_cursor_is_400(http: httpx.Client, cursor: str) -> None:
    if cursor == "tampered":  # a real cursor with one character of its payload changed
        real = http.get("/products", params={"limit": 2}).json()["next_cursor"]
        assert real, "the demo catalog has more than two products"
        cursor = ("B" if real[0] != "B" else "C") + real[1:]
    _assert_problem(http.get("/products", params={"cursor": cursor}), 400, "invalid_cursor")


@pytest.mark.parametrize("limit", ["0", "101"])
def test_limit_out_of_range_is_422(http: httpx.Client, limit: str) -> None:
    problem = _assert_problem(http.get("/products", params={"limit": limit}), 422, "validation_error")
    assert any(error.get("field") == "limit" for error in problem["errors"]), problem


def test_unknown_product_is_404(http: httpx.Client) -> None:
    _assert_problem(http.get("/products/no-such-product"), 404, "not_found")


def test_cors_preflight_from_a_local_frontend(http: httpx.Client) -> None:
    preflight = http.options(
        "/products",
        headers={
            "Origin": FRONTEND,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "if-none-match",
        },
    )
    assert 200 <= preflight.status_code < 300, preflight.text
    assert preflight.headers["access-control-allow-origin"] == FRONTEND
    assert "GET" in [m.strip() for m in preflight.headers["access-control-allow-methods"].split(",")]
    assert "if-none-match" in preflight.headers["access-control-allow-headers"].lower()
    actual = http.get("/products", params={"limit": 1}, headers={"Origin": FRONTEND})
    assert actual.headers["access-control-allow-origin"] == FRONTEND
    assert "etag" in actual.headers["access-control-expose-headers"].lower()
    foreign = http.options(
        "/products", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in foreign.headers


def test_the_printed_admin_signs_in_and_is_admitted(stack: Served, http: httpx.Client) -> None:
    """What the banner prints is enough: the credentials, and Cognito's endpoint and client id for InitiateAuth
    (unsigned, as the admin page calls it), whose access token GET /admin/me admits."""
    output = stack.output()
    admin, cognito_line = ADMIN_LINE.search(output), COGNITO_LINE.search(output)
    assert admin and cognito_line, output
    email, password = admin.groups()
    endpoint, client_id = cognito_line.groups()
    assert email == "admin@example.com" and len(password) >= 12
    cognito = boto3.client(
        "cognito-idp", region_name="us-east-1", endpoint_url=endpoint, config=Config(signature_version=UNSIGNED)
    )
    tokens = cognito.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": email, "PASSWORD": password}
    )["AuthenticationResult"]
    me = http.get("/admin/me", headers={"Authorization": f"Bearer {tokens['AccessToken']}"})
    assert me.status_code == 200, me.text
    assert me.json()["groups"] == ["admin"]
    assert http.get("/admin/me").json() == {"message": "Unauthorized"}


def test_the_smoke_test_passes_against_make_dev_as_its_operator(stack: Served) -> None:
    """docs/deploy.md's smoke test against `make dev`, signed in as the operator the banner prints, from a shell
    with no AWS settings: every step ok, the order it made cancelled again."""
    admin = ADMIN_LINE.search(stack.output())
    assert admin, stack.output()
    email, password = admin.groups()
    run = subprocess.run(
        [sys.executable, "-m", "ops.smoke", "--api", stack.url, "--admin-user", email],
        cwd=ROOT,
        env=_environment(STOREFRONT_ADMIN_PASSWORD=password),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    assert f"Cognito InitiateAuth as {email}" in run.stdout and "Smoke test passed" in run.stdout, run.stdout
    order_id = re.search(r"POST /checkout: order (\S+) ", run.stdout).group(1)  # type: ignore[union-attr]
    with httpx.Client(base_url=stack.url, timeout=30) as http:
        assert http.get(f"/orders/{order_id}").json()["status"] == "cancelled"


def test_sigterm_stops_it_cleanly(stack: Served) -> None:
    """Last in this module: it stops the shared process."""
    assert stack.stop() == 0, stack.output()
    assert "Stopped." in stack.output()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{stack.url}/categories", timeout=5)


def test_port_environment_variable(tmp_path: Path) -> None:
    port = _free_port()
    served = start(tmp_path / "serve.log", [], _environment(PORT=str(port)))
    try:
        assert served.url == f"http://127.0.0.1:{port}", served.output()
        response = httpx.get(f"{served.url}/categories", timeout=30)
        assert response.status_code == 200, response.text
        assert {c["id"] for c in response.json()["items"]} >= {"shirts", "shoes"}
        assert served.stop() == 0, served.output()
        assert "Stopped." in served.output()
    finally:
        served.kill()
