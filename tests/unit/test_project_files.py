"""The project's own files agree with each other: pins, function folders, sample events, CI entry point, README."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

from local_cloud.template import Template, load_yaml

ROOT = Path(__file__).resolve().parents[2]


def _template() -> Template:
    return Template(load_yaml((ROOT / "template.yaml").read_text()))


def _requirement_lines(path: Path) -> list[str]:
    """Non-comment, non-blank lines of a requirements file, inline comments and spaces removed."""
    lines = (line.split(" #", 1)[0].strip() for line in path.read_text().splitlines())
    return [line.replace(" ", "") for line in lines if line and not line.startswith("#")]


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~;@ ]", requirement, maxsplit=1)[0].lower().replace("_", "-").replace(".", "-")


def _function_code_dirs() -> dict[str, Path]:
    """Function logical id -> its CodeUri folder."""
    template = _template()
    return {
        logical_id: ROOT / template.function_properties(logical_id)["CodeUri"]
        for logical_id in template.of_type("AWS::Serverless::Function")
    }


def test_pyproject_dependencies_equal_the_layer_pins() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = [d.replace(" ", "") for d in pyproject["project"]["dependencies"]]
    layer = _requirement_lines(ROOT / "layers/storefront/requirements.txt")
    assert sorted(declared) == sorted(layer), (
        "pyproject.toml [project.dependencies] and layers/storefront/requirements.txt differ: "
        f"only in pyproject {sorted(set(declared) - set(layer))}, "
        f"only in the layer {sorted(set(layer) - set(declared))}"
    )
    assert len(set(layer)) == len(layer), "duplicate lines in layers/storefront/requirements.txt"
    for requirement in layer:
        assert re.fullmatch(r"[A-Za-z0-9_.\-\[\],]+==[^=,;]+", requirement), f"{requirement} is not an exact pin"


def test_every_function_folder_has_app_and_requirements() -> None:
    functions = _function_code_dirs()
    assert functions, "the template defines no functions"
    template = _template()
    layer_packages = {_name(r) for r in _requirement_lines(ROOT / "layers/storefront/requirements.txt")}
    for logical_id, code_dir in functions.items():
        assert code_dir.is_dir(), f"{logical_id}: CodeUri {code_dir.relative_to(ROOT)} does not exist"
        assert (code_dir / "app.py").is_file(), f"{logical_id}: {code_dir.relative_to(ROOT)}/app.py missing"
        assert (code_dir / "requirements.txt").is_file(), f"{logical_id}: requirements.txt missing (sam build needs it)"
        module = template.function_properties(logical_id)["Handler"].rsplit(".", 1)[0]
        assert (code_dir / f"{module.replace('.', '/')}.py").is_file(), f"{logical_id}: Handler module {module} missing"
        # A function that re-lists a layer package would ship a second copy that shadows the layer's pin.
        shadowed = {_name(r) for r in _requirement_lines(code_dir / "requirements.txt")} & layer_packages
        assert not shadowed, f"{logical_id} re-lists layer packages {sorted(shadowed)}"


def test_event_folders_match_function_folders() -> None:
    events = ROOT / "events"
    if not events.is_dir():
        return  # no sample events yet: nothing to keep in step
    function_folders = {path.name for path in _function_code_dirs().values()}
    for folder in sorted(p for p in events.iterdir() if p.is_dir()):
        assert folder.name in function_folders, (
            f"events/{folder.name} matches no function folder (functions/: {sorted(function_folders)})"
        )
        for sample in folder.glob("*.json"):
            json.loads(sample.read_text())  # `sam local invoke -e` needs valid JSON


def test_ci_entry_point_runs_make_test() -> None:
    script = ROOT / ".ci" / "run"
    assert script.is_file(), ".ci/run is missing"
    assert os.access(script, os.X_OK), ".ci/run is not executable"
    commands = [
        line.strip() for line in script.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    assert any(re.fullmatch(r"(exec\s+)?make(\s+-\S+)*\s+test(\s.*)?", c) for c in commands), (
        f".ci/run does not call `make test`: {commands}"
    )


def test_readme_names_the_two_commands() -> None:
    readme = ROOT / "README.md"
    if not readme.is_file():
        return  # checked once the README exists
    text = readme.read_text()
    for command in ("make dev", "make test"):
        assert command in text, f"README.md does not mention `{command}`"


def test_no_credentials_in_the_repository() -> None:
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    patterns = [
        re.compile(r"\bA(KI|SI)A[0-9A-Z]{16}\b"),  # AWS access key ids
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    ]
    for name in filter(None, listed):
        path = ROOT / name
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for pattern in patterns:
            assert not pattern.search(text), f"{name} contains something that looks like a credential"


def test_install_chromium_falls_back_to_playwrights_chromium_without_apt_get(tmp_path: Path) -> None:
    """On a machine without apt-get (macOS), make test still gets a chromium: Playwright's own download, through
    the project's pinned Playwright. (The download itself needs Playwright's CDN, which this machine can't reach.)"""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "env"):  # what the script needs, and no apt-get
        (bin_dir / tool).symlink_to(shutil.which(tool))
    calls = tmp_path / "calls"
    fake_python = tmp_path / "python"
    fake_python.write_text(f'#!{shutil.which("bash")}\necho "$@" >> {calls}\n')
    fake_python.chmod(0o755)
    run = subprocess.run(
        [str(ROOT / "scripts" / "install-chromium")],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": str(bin_dir), "CHROMIUM": str(tmp_path / "no-chromium"), "PYTHON": str(fake_python)},
    )
    assert run.returncode == 0, run.stderr
    assert calls.read_text().split() == ["-m", "playwright", "install", "chromium"]
    assert "Playwright's chromium" in run.stderr
