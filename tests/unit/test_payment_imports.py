"""Only the payment tasks function may load the provider's SDK (and only it holds the provider's API key): the
public webhook receiver and every other function must not import `stripe`, directly or through the storefront
package. Checked on the import graph of each function's app.py, every import statement included (those inside
functions too), so a lazy import cannot hide one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from local_cloud.template import Template, load_yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "storefront"
MAY_IMPORT_THE_SDK = {"PaymentTasksFunction", "OrderAdminFunction"}  # they hold the API key


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _module_file(name: str) -> Path | None:
    base = PACKAGE / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def reachable(app: Path) -> set[str]:
    """Every module name the app's imports reach through the storefront package (third-party names included)."""
    seen: set[str] = set()
    pending = [app]
    visited: set[Path] = set()
    while pending:
        path = pending.pop()
        if path in visited:
            continue
        visited.add(path)
        for name in _imports(path):
            seen.add(name)
            if name.split(".")[0] == "storefront":
                parts = name.split(".")
                for end in range(1, len(parts) + 1):  # the package's __init__ files run too
                    module = _module_file(".".join(parts[:end]))
                    if module is not None:
                        pending.append(module)
    return seen


def _functions() -> dict[str, Path]:
    template = Template(load_yaml((ROOT / "template.yaml").read_text()))
    return {
        logical_id: ROOT / resource["Properties"]["CodeUri"] / "app.py"
        for logical_id, resource in template.of_type("AWS::Serverless::Function").items()
    }


@pytest.mark.parametrize("logical_id", sorted(_functions()))
def test_only_the_functions_holding_the_api_key_import_the_provider_sdk(logical_id: str) -> None:
    imports_sdk = any(name == "stripe" or name.startswith("stripe.") for name in reachable(_functions()[logical_id]))
    assert imports_sdk == (logical_id in MAY_IMPORT_THE_SDK)


def test_the_check_sees_an_import_hidden_in_a_function(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text("def later():\n    from storefront.payments.stripe_provider import StripeProvider\n")
    assert "stripe" in reachable(app)
    app.write_text("from storefront.payments.webhooks import PaymentWebhooks\n")
    assert "stripe" not in reachable(app)
