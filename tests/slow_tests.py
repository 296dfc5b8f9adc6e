"""The rule for slow tests (tests/README.md, "Slow tests"), loaded by pyproject.toml's `-p tests.slow_tests`.

A test is marked `@pytest.mark.slow("<kind>")` (or its module `pytestmark = pytest.mark.slow("<kind>")`) when it is one
of the kinds below, or takes more than about two seconds on an idle machine; `make test-fast` runs `-m "not slow"`. Two
checks keep the marks honest: a slow mark must name one of KINDS (else the run stops at collection), and a test without
one whose call takes longer than BUDGET_SECONDS is named at the end of the run — and fails it where the budget is
enforced (STOREFRONT_TEST_BUDGET_ENFORCED=1: `make test-fast`, whose point is to stay fast). `make test`, which CI runs,
only reports it: a test that runs long on a busy machine must not block a landing.
"""

from __future__ import annotations

import os

import pytest

KINDS = {
    "browser": "drives a real browser against the demo shop",
    "fuzz": "fuzzes the API from its OpenAPI document",
    "race": "races hundreds of concurrent requests to prove an invariant",
    "template": "builds, lints or scans the template",
    "process": "starts a child process that builds a local cloud or imports the functions' code",
    "waits": "waits for real time to pass: timeouts, retries' backoff, pollers, restore jobs",
    "bulk": "sends hundreds of requests in sequence through the local API (a bulk import)",
}
# Unmarked tests take under two seconds on an idle machine; a busy one (two cores shared by several test runs) was
# measured to stretch them nearly four times, hence the margin.
BUDGET_SECONDS = float(os.environ.get("STOREFRONT_TEST_BUDGET_SECONDS", "10"))
ENFORCED = os.environ.get("STOREFRONT_TEST_BUDGET_ENFORCED") == "1"
_over_budget: list[tuple[str, float]] = []


# Modules with tests of these kinds, the ones that take tens of seconds each, start first (in this order): the
# workers take whole modules from a queue (`--dist loadscope`, pyproject.toml), so a long module collected last would
# be one worker's tail while the others sit idle. Whole modules, so that a module's fixtures start once.
STARTED_FIRST = ("browser", "fuzz", "bulk", "race", "template")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for mark in item.iter_markers("slow"):
            if len(mark.args) != 1 or mark.args[0] not in KINDS or mark.kwargs:
                raise pytest.UsageError(
                    f'{item.nodeid}: mark it slow with one of {sorted(KINDS)}, e.g. @pytest.mark.slow("race"); '
                    f"got slow{mark.args or ''}{mark.kwargs or ''}"
                )
    module_rank: dict[str, int] = {}
    for item in items:
        module = item.nodeid.split("::")[0]
        module_rank[module] = min(module_rank.get(module, len(STARTED_FIRST)), _start_rank(item))
    items.sort(key=lambda item: module_rank[item.nodeid.split("::")[0]])  # stable: otherwise as collected


def _start_rank(item: pytest.Item) -> int:
    kinds = {mark.args[0] for mark in item.iter_markers("slow")}
    return min((STARTED_FIRST.index(kind) for kind in kinds & set(STARTED_FIRST)), default=len(STARTED_FIRST))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and "slow" not in report.keywords and report.duration > BUDGET_SECONDS:
        _over_budget.append((report.nodeid, report.duration))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _over_budget:
        terminalreporter.section("tests over the budget of unmarked tests", red=True)
        for nodeid, seconds in sorted(_over_budget, key=lambda pair: -pair[1]):
            terminalreporter.line(f"{seconds:6.1f} s  {nodeid}")
        terminalreporter.line(
            f"Each took longer than {BUDGET_SECONDS:g} s without a slow mark: make it faster, or "
            f"mark it @pytest.mark.slow(<kind>) with one of {sorted(KINDS)} (tests/README.md)."
        )


def pytest_sessionfinish(session: pytest.Session) -> None:
    if (
        ENFORCED
        and _over_budget
        and not hasattr(session.config, "workerinput")
        and session.exitstatus == pytest.ExitCode.OK
    ):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
