"""Fixtures of the browser tests: the local stack (one process per module), Debian's chromium driven by
Playwright, and a fresh browser context per test whose console is watched.

Module scope, not session scope: while Playwright's sync API is running it holds the main thread's asyncio
loop as "running", and every in-process Lambda handler that later tests invoke through Mangum would fail
with "This event loop is already running". So Playwright stops when the browser tests are done.
When chromium is missing the tests fail: a skipped browser test would prove nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright
from storefront_browser import CHROMIUM, LAUNCH_ARGS, SCREENSHOTS, Console, Stack, local_stack

expect.set_options(timeout=10_000)
FAILED = pytest.StashKey[bool]()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    try:
        with local_stack(tmp_path_factory.mktemp("stack") / "serve.log") as served:
            yield served
    except RuntimeError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    executable = CHROMIUM if CHROMIUM.exists() else Path(playwright.chromium.executable_path)
    if not executable.exists():
        pytest.fail(f"no chromium at {CHROMIUM} or {executable}: run scripts/install-chromium (make test does)")
    browser = playwright.chromium.launch(executable_path=str(executable), args=LAUNCH_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def api(stack: Stack) -> Iterator[httpx.Client]:
    """The API as another shopper (or the test) uses it, beside the browser."""
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        yield client


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


def _page(
    browser: Browser, request: pytest.FixtureRequest, stack: Stack, width: int, height: int
) -> Iterator[tuple[Page, Console]]:
    context = browser.new_context(
        locale="en-US", timezone_id="Europe/Berlin", viewport={"width": width, "height": height}
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    console = Console()
    console.watch(page)
    failure_shot = SCREENSHOTS / f"FAILED-{request.node.name}.png"
    failure_shot.unlink(missing_ok=True)  # from an earlier run
    try:
        yield page, console
    finally:
        if request.node.stash.get(FAILED, False):  # what the page looked like when it went wrong
            SCREENSHOTS.mkdir(exist_ok=True)
            page.screenshot(path=failure_shot, full_page=True)
            print(f"local stack log (tail):\n{stack.output_tail()}")  # noqa: T201  pytest shows it with the failure
        context.close()


@pytest.fixture
def desktop(browser: Browser, request: pytest.FixtureRequest, stack: Stack) -> Iterator[tuple[Page, Console]]:
    yield from _page(browser, request, stack, 1100, 900)


@pytest.fixture
def phone(browser: Browser, request: pytest.FixtureRequest, stack: Stack) -> Iterator[tuple[Page, Console]]:
    """A phone-sized screen: 375 CSS pixels wide."""
    yield from _page(browser, request, stack, 375, 740)
