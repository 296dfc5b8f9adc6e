"""Jinja2 and Babel cost the notifications function's cold start (docs/benchmarks.md); no other function may pay
for them. Every other handler of template.yaml is imported, in a fresh process, with its own environment."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks.import_time import handler_targets
from local_cloud.template import ROOT, Template

EMAIL_ONLY = ["jinja2", "babel", "markupsafe", "storefront.notifications.content"]

CHILD = """
import importlib.util, json, os, sys
found = {}
for name, code_dir, paths, environment in json.loads(sys.argv[1]):
    sys.path[:0] = paths
    os.environ.update(environment)
    spec = importlib.util.spec_from_file_location(f"handler_{name}", os.path.join(code_dir, "app.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found[name] = sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)
print(json.dumps(found))
"""


@pytest.mark.slow("process")
def test_only_the_notifications_function_imports_jinja2_and_babel() -> None:
    targets = [
        t for t in handler_targets(Template.load(), deployed_like=False) if t.function != "NotificationsFunction"
    ]
    assert len(targets) >= 5, [t.function for t in targets]
    handlers = [(t.function, t.paths[0], t.paths, t.environment) for t in targets]
    env = targets[0].env()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(handlers), json.dumps(EMAIL_ONLY)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {t.function: [] for t in targets}, "a handler imports what only customer emails need"


@pytest.mark.slow("process")
def test_the_notifications_function_does_import_them() -> None:
    """The check above can fail: the same import of the notifications handler finds them."""
    (target,) = [
        t for t in handler_targets(Template.load(), deployed_like=False) if t.function == "NotificationsFunction"
    ]
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            json.dumps([(target.function, target.paths[0], target.paths, target.environment)]),
            json.dumps(EMAIL_ONLY),
        ],
        cwd=ROOT,
        env=target.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"NotificationsFunction": sorted(EMAIL_ONLY)}
