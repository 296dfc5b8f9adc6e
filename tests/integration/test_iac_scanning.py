"""Infrastructure-as-code scanning of template.yaml and edge/web-acl.yaml: checkov with zero failed checks and
every skip justified in the template itself, and AWS's serverless rules for cfn-lint (cfn-lint-serverless) clean,
each exception named in docs/observability.md ("IaC scanning"). cfn-lint and sam validate are in test_template.py.

checkov runs from its own virtual environment (.venv-checkov, made by `make setup`): it pins an older boto3 than
the stack's. It never leaves the machine: --skip-download, and any request it would still make goes to a proxy
on a closed loopback port."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from local_cloud.template import load_yaml
from tests.edge_stack import edge_on_copy

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ["template.yaml", "edge/web-acl.yaml"]
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
VENV_BIN = Path(sys.executable).parent
OFFLINE = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return env | OFFLINE


def _skips() -> list[tuple[str, str, str]]:
    """(template, resource, check id, comment) for every inline checkov skip."""
    found = []
    for name in TEMPLATES:
        for logical_id, resource in load_yaml((ROOT / name).read_text())["Resources"].items():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                found.append((f"{name}:{logical_id}", skip["id"], skip.get("comment", "")))
    return found


def test_every_checkov_skip_says_why() -> None:
    skips = _skips()
    assert skips, "no checkov skips found where this test looks for them"
    for where, check, comment in skips:
        assert re.fullmatch(r"CKV2?_AWS_\d+", check), (where, check)
        assert len(comment) >= 60, f"{where}: skipping {check} needs a reason, not {comment!r}"


def _checkov(directory: Path) -> tuple[list[str], set[tuple[str, str]], int, float]:
    """checkov over TEMPLATES in `directory`: (failed checks, (resource, check) skipped, checks passed, seconds)."""
    started = time.monotonic()
    result = subprocess.run(
        [
            str(CHECKOV),
            *(a for t in TEMPLATES for a in ("-f", t)),
            "--framework",
            "cloudformation",
            "--skip-download",
            "-o",
            "json",
        ],
        cwd=directory,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    elapsed = time.monotonic() - started
    reports: Any = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']})"
        for report in reports
        for c in report["results"].get("failed_checks", [])
    ]
    assert failed or result.returncode == 0, result.stderr[-2000:]
    skipped = {
        (c["resource"].split(".")[-1], c["check_id"])
        for report in reports
        for c in report["results"].get("skipped_checks", [])
    }
    return failed, skipped, sum(r["summary"]["passed"] for r in reports), elapsed


@pytest.mark.slow("template")
def test_checkov_finds_no_failed_check_with_the_edge_off_or_on(tmp_path: Path) -> None:
    """checkov leaves out resources whose Condition is false with the defaults, so the edge (off by default) is
    scanned in a copy with it on."""
    assert CHECKOV.exists(), "checkov lives in its own virtual environment: run `make setup`"
    used: set[tuple[str, str]] = set()
    for stack, directory in (("edge off", ROOT), ("edge on", edge_on_copy(tmp_path))):
        failed, skipped, passed, elapsed = _checkov(directory)
        assert failed == [], f"checkov failed checks ({stack}):\n" + "\n".join(failed)
        assert passed > 20, stack
        assert elapsed < 60, f"checkov took {elapsed:.0f} s ({stack})"
        used |= skipped
    assert used == {(where.split(":")[-1], check) for where, check, _ in _skips()}, "a skip checkov did not use"


@pytest.mark.slow("template")
def test_aws_serverless_rules_are_clean_and_each_exception_is_explained() -> None:
    result = subprocess.run(
        [str(VENV_BIN / "cfn-lint"), "--append-rules", "cfn_lint_serverless.rules", "--", *TEMPLATES],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"cfn-lint-serverless:\n{result.stdout}\n{result.stderr}"
    template = load_yaml((ROOT / "template.yaml").read_text())
    ignored = set(template.get("Metadata", {}).get("cfn-lint", {}).get("config", {}).get("ignore_checks", []))
    for resource in template["Resources"].values():
        ignored |= set(resource.get("Metadata", {}).get("cfn-lint", {}).get("config", {}).get("ignore_checks", []))
    assert ignored, "no exceptions found where this test looks for them"
    section = (ROOT / "docs" / "observability.md").read_text().split("## IaC scanning", 1)[-1]
    for rule in sorted(ignored):
        assert f"`{rule}`" in section, f"docs/observability.md, 'IaC scanning', does not explain {rule}"
