"""SnapStart's runtime hooks (storefront.snapstart), run the way the Lambda runtime runs them: registered through
`snapshot_restore_py` when the module is imported, before-snapshot hooks in reverse order of registration and
after-restore hooks in order (docs.aws.amazon.com/lambda/latest/dg/snapstart-runtime-hooks-python.html)."""

from __future__ import annotations

import importlib
import random
import subprocess
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parameters import secrets as powertools_secrets
from storefront import snapstart as imported_without_the_runtime  # noqa: F401 - what each test puts back
from storefront.secrets import get_secret

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Runtime:
    """The registry `snapshot_restore_py` keeps, and the runtime's two moments."""

    module: types.ModuleType  # storefront.snapstart, imported with the runtime present
    before: list[Callable[[], Any]] = field(default_factory=list)
    after: list[Callable[[], Any]] = field(default_factory=list)

    def snapshot(self) -> None:
        for hook in reversed(self.before):
            hook()

    def restore(self) -> None:
        for hook in self.after:
            hook()


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Runtime:
    before: list[Callable[[], Any]] = []
    after: list[Callable[[], Any]] = []
    library = types.ModuleType("snapshot_restore_py")
    library.register_before_snapshot = lambda hook, *a, **k: before.append(hook) or hook  # type: ignore[attr-defined]
    library.register_after_restore = lambda hook, *a, **k: after.append(hook) or hook  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", library)
    monkeypatch.delitem(sys.modules, "storefront.snapstart")  # put back after the test
    return Runtime(importlib.import_module("storefront.snapstart"), before, after)


def test_importing_the_module_registers_one_hook_of_each_kind(runtime: Runtime) -> None:
    assert runtime.before == [runtime.module.before_snapshot]
    assert runtime.after == [runtime.module.after_restore]


def test_two_copies_restored_from_one_snapshot_draw_different_jitter(runtime: Runtime) -> None:
    random.seed(14)  # whatever init left in the generator is in the snapshot, the same for every copy
    snapshot = random.getstate()
    draws = []
    for _ in range(2):
        random.setstate(snapshot)
        runtime.restore()
        draws.append([random.uniform(0, 0.025) for _ in range(5)])  # storefront.dynamodb.backoff's draws
    random.setstate(snapshot)
    without_the_hook = [random.uniform(0, 0.025) for _ in range(5)]
    assert draws[0] != draws[1]
    assert without_the_hook not in draws


def test_a_secret_rotated_since_the_snapshot_is_read_again_after_restore(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets_manager = {"cursor-key": "before-rotation"}

    class FakeSecretsManager:
        def get_secret_value(self, SecretId: str) -> dict[str, str]:  # noqa: N803 - the SDK's parameter name
            return {"SecretString": secrets_manager[SecretId]}

    real_provider = powertools_secrets.SecretsProvider
    monkeypatch.setattr(powertools_secrets, "SecretsProvider", lambda: real_provider(boto3_client=FakeSecretsManager()))
    monkeypatch.delitem(powertools_secrets.DEFAULT_PROVIDERS, "secrets", raising=False)

    assert get_secret("cursor-key") == "before-rotation"
    secrets_manager["cursor-key"] = "after-rotation"
    assert get_secret("cursor-key") == "before-rotation"  # cached for SECRET_CACHE_SECONDS: what a snapshot holds
    runtime.restore()
    assert get_secret("cursor-key") == "after-rotation"
    powertools_secrets.DEFAULT_PROVIDERS.pop("secrets", None)  # no provider with the fake client outlives the test


def test_primed_modules_wait_for_the_snapshot(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "heavy_sdk_for_snapstart_test.py").write_text("LOADED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    runtime.module.prime("heavy_sdk_for_snapstart_test")
    assert "heavy_sdk_for_snapstart_test" not in sys.modules  # a plain cold start does not pay for it
    runtime.snapshot()
    assert sys.modules.pop("heavy_sdk_for_snapstart_test").LOADED


def test_outside_the_lambda_runtime_nothing_registers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # `import` raises ImportError, as off Lambda
    monkeypatch.delitem(sys.modules, "storefront.snapstart")
    module = importlib.import_module("storefront.snapstart")
    assert module.register_before_snapshot is None and module.register_after_restore is None


def test_the_stripe_sdk_is_primed_not_imported_with_the_adapter() -> None:
    """The payment adapter leaves the SDK to its first request (the order admin function rarely needs it) and to
    the snapshot of a SnapStart function (the payment tasks function)."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; import storefront.payments.stripe_provider; "
            "from storefront import snapstart; print('stripe' in sys.modules, snapstart._to_prime)",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "layers" / "storefront"), "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.stdout.split() == ["False", "['stripe']"]
