"""The Makefile says what it does: `make help` lists every target, and `make deploy` runs the project's own SAM CLI,
guided without ENV, with samconfig.toml's environment when ENV names one (and refuses any other)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAKEFILE = (ROOT / "Makefile").read_text()


def makefile_targets() -> set[str]:
    """The Makefile's own targets (rules named by a word; file targets such as $(VENV)/.installed are not)."""
    return set(re.findall(r"^([A-Za-z][A-Za-z0-9_-]*)\s*:(?!=)", MAKEFILE, re.MULTILINE))


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_make_help_lists_every_target_and_nothing_else() -> None:
    run = _make("help")
    assert run.returncode == 0, run.stderr
    listed = re.findall(r"^make ([a-z][a-z-]*)", run.stdout, re.MULTILINE)
    assert len(listed) == len(set(listed)), f"a target listed twice: {listed}"
    assert set(listed) == makefile_targets(), (
        f"targets without a line in make help: {sorted(makefile_targets() - set(listed))}; "
        f"lines for no target: {sorted(set(listed) - makefile_targets())}"
    )
    assert MAKEFILE.startswith("#") and ".DEFAULT_GOAL := help" in MAKEFILE, "plain `make` shows the list"


def test_every_target_is_phony() -> None:
    phony = set(re.search(r"^\.PHONY:(.*)$", MAKEFILE, re.MULTILINE).group(1).split())  # type: ignore[union-attr]
    assert phony == makefile_targets()


def _deploy_commands(*args: str) -> list[str]:
    run = _make("-n", "deploy", *args)
    assert run.returncode == 0, run.stderr
    return [line for line in run.stdout.splitlines() if ".venv/bin/sam " in line]


def test_the_first_deploy_is_guided_with_the_projects_sam_cli() -> None:
    build, deploy = _deploy_commands()
    assert build.rstrip().endswith(".venv/bin/sam build") and "PATH=" in build, (
        build
    )  # python3.13 from the .venv for sam
    assert re.search(r"\.venv/bin/sam deploy --guided\s*$", deploy), deploy


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_env_deploys_samconfigs_environment(environment: str) -> None:
    build, deploy = _deploy_commands(f"ENV={environment}", "REGION=eu-central-1")
    assert build.endswith(f"sam build --config-env {environment}"), build
    assert re.search(rf"sam deploy --config-env {environment} --region eu-central-1\s*$", deploy), deploy
    assert f"[{environment}.deploy.parameters]" in (ROOT / "samconfig.toml").read_text()


def test_an_env_samconfig_does_not_have_is_refused_before_anything_runs() -> None:
    run = _make("-n", "deploy", "ENV=staging")
    assert run.returncode == 2 and run.stdout == ""
    assert "ENV=staging: samconfig.toml has the environments dev prod" in run.stderr


def test_an_env_from_the_shell_is_not_a_deploy_environment() -> None:
    """POSIX shells may export ENV (a startup file): only ENV on make's command line picks an environment."""
    run = subprocess.run(
        ["make", "--no-print-directory", "-n", "deploy"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "ENV": "/etc/shrc"},
    )
    assert run.returncode == 0, run.stderr
    assert re.search(r"sam deploy --guided\s*$", run.stdout, re.MULTILINE), run.stdout


def test_make_smoke_without_a_target_says_how_to_call_it() -> None:
    run = _make("smoke")
    assert run.returncode == 2
    assert "usage: make smoke API=<url>" in run.stderr and "Traceback" not in run.stderr
