"""What the browser tests share: Debian's chromium and how it is launched, the local stack in its own process
(as `make dev` runs it), and a record of everything a page says on its console."""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from playwright.sync_api import ConsoleMessage, Page, Route

ROOT = Path(__file__).resolve().parents[2]
# Debian's chromium (scripts/install-chromium installs it where apt-get exists); elsewhere (macOS, say) the script
# downloads Playwright's own chromium instead, which the browser fixture then uses.
CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WEB = ROOT / "web"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"  # gitignored; look here after a run
STARTUP_SECONDS = 60
API_LINE = re.compile(r"^\s*API\s+(http://\S+)\s*$", re.MULTILINE)
MOTO_LINE = re.compile(r"^\s*AWS \(moto\)\s+(http://\S+)", re.MULTILINE)
# What Chromium logs for every 4xx/5xx answer to fetch() and every request that fails on the network; a test
# says which of these it provokes on purpose.
FAILED_LOAD_LOG = re.compile(
    r"^console\.error: Failed to load resource: "
    r"(?:the server responded with a status of (\d{3})\b|net::(ERR_[A-Z_]+))"
)


@dataclass
class Stack:
    url: str
    log: Path
    moto_url: str  # the stack's AWS endpoint, for a test that must set up what no API call can

    def output_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def local_stack(log: Path) -> Iterator[Stack]:
    """`python -m local_cloud serve` on a free port with the demo data; the local carrier moves a parcel on
    every second. Stopped with SIGTERM, as Ctrl-C would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_")) and k != "PORT"}
    env.update(
        {
            "PYTHONPATH": f"{ROOT / 'layers' / 'storefront'}{os.pathsep}{ROOT}",
            "PYTHONDONTWRITEBYTECODE": "1",
            "LOCAL_CARRIER_STEP_SECONDS": "1",
        }
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "local_cloud", "serve", "--port", str(_free_port())],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        output = ""
        while not ((match := API_LINE.search(output)) and "Ctrl-C or SIGTERM" in output):  # the whole banner
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the local stack did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.1)
            output = log.read_text(errors="replace")
        moto = MOTO_LINE.search(output)
        assert moto, output
        yield Stack(match.group(1), log, moto.group(1))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Console:
    """Every console message and uncaught error of a page, and the HTTP errors the test provokes on purpose."""

    errors: list[str] = field(default_factory=list)
    expected_failures: list[tuple[str, str]] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("console", self._record)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def _record(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning", "assert"):
            self.errors.append(f"console.{message.type}: {message.text} ({message.location.get('url')})")

    def expect_http_error(self, status: int, path: str) -> None:
        """The next `status` answer for a URL containing `path` is wanted (Chromium logs each one as an error)."""
        self.expected_failures.append((str(status), path))

    def expect_network_error(self, code: str, path: str) -> None:
        """The next request to a URL containing `path` is meant to fail with `code`, e.g. ERR_CONNECTION_RESET."""
        self.expected_failures.append((code, path))

    def unexpected(self) -> list[str]:
        left = list(self.expected_failures)
        problems = []
        for error in self.errors:
            found = FAILED_LOAD_LOG.match(error)
            what = found and (found.group(1) or found.group(2))
            wanted = next((w for w in left if what == w[0] and w[1] in error), None)
            if wanted:
                left.remove(wanted)
            else:
                problems.append(error)
        return problems + [f"expected {what} for {path} was never logged" for what, path in left]


@contextmanager
def static_site(directory: Path, api: str) -> Iterator[str]:
    """`directory` served over HTTP at http://localhost:<free port>, as S3 + CloudFront would serve web/: another
    origin than the API's http://127.0.0.1:<port>, with the Content-Security-Policy docs/demo-shop.md recommends;
    product images come from the API's origin here, over plain HTTP (on AWS from the CDN, over https:)."""
    policy = f"default-src 'self'; connect-src 'self' {api}; img-src 'self' {api} https: data:; frame-ancestors 'none'"

    class Files(SimpleHTTPRequestHandler):
        def end_headers(self) -> None:
            self.send_header("Content-Security-Policy", policy)
            super().end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Files, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, name="static-site", daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def override_config(page: Page, **settings: object) -> None:
    """Serves the page a web/config.js whose `settings` are replaced, as a deployment edits that file."""

    def edit(route: Route) -> None:
        text = route.fetch().text()
        for name, value in settings.items():
            text, found = re.subn(rf"^(\s*{name}:) [^\n]*,$", rf"\g<1> {json.dumps(value)},", text, flags=re.MULTILINE)
            assert found == 1, f"config.js has no setting {name}"
        route.fulfill(body=text, content_type="text/javascript")

    page.route(re.compile(r"/config\.js$"), edit)


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
