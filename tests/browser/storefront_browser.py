"""What the browser tests share: Debian's chromium and how it is launched, the local stack in its own process
(as `make dev` runs it), and a record of everything a page says on its console."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import ConsoleMessage, Page

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")  # Debian's (scripts/install-chromium), never one Playwright downloads
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"  # gitignored; look here after a run
STARTUP_SECONDS = 60
API_LINE = re.compile(r"^\s*API\s+(http://\S+)\s*$", re.MULTILINE)
# What Chromium logs for every 4xx/5xx answer to fetch(); a test says which of these it provokes on purpose.
HTTP_ERROR_LOG = re.compile(r"^console\.error: Failed to load resource: the server responded with a status of (\d{3})\b")


@dataclass
class Stack:
    url: str
    log: Path

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
    env.update({"PYTHONPATH": f"{ROOT / 'layers' / 'storefront'}{os.pathsep}{ROOT}", "PYTHONDONTWRITEBYTECODE": "1",
                "LOCAL_CARRIER_STEP_SECONDS": "1"})
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "local_cloud", "serve", "--port", str(_free_port())],
                                   cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        output = ""
        while not ((match := API_LINE.search(output)) and "Ctrl-C or SIGTERM" in output):  # the whole banner
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the local stack did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.1)
            output = log.read_text(errors="replace")
        yield Stack(match.group(1), log)
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
    expected_http_errors: list[tuple[int, str]] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("console", self._record)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def _record(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning", "assert"):
            self.errors.append(f"console.{message.type}: {message.text} ({message.location.get('url')})")

    def expect_http_error(self, status: int, path: str) -> None:
        """The next `status` answer for a URL containing `path` is wanted (Chromium logs each one as an error)."""
        self.expected_http_errors.append((status, path))

    def unexpected(self) -> list[str]:
        left = list(self.expected_http_errors)
        problems = []
        for error in self.errors:
            found = HTTP_ERROR_LOG.match(error)
            wanted = next((w for w in left if found and int(found.group(1)) == w[0] and w[1] in error), None)
            if wanted:
                left.remove(wanted)
            else:
                problems.append(error)
        return problems + [f"expected HTTP {status} for {path} was never logged" for status, path in left]


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
