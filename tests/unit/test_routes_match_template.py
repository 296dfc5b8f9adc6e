"""template.yaml's HttpApi routes and the FastAPI apps behind them agree, function by function.

A route in the template that the app does not serve answers 404 on AWS; a route the app serves that the
template does not declare is unreachable on AWS (API Gateway answers 404 before Lambda is called).
"""

from __future__ import annotations

import importlib.util
import re
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from local_cloud.template import ROOT, Template

TEMPLATE = Template.load()
HTTP_FUNCTIONS = sorted({route.function for route in TEMPLATE.routes()})


def _environment(logical_id: str) -> dict[str, str]:
    """The function's environment variables, with placeholders where the value is only known once deployed."""
    variables = TEMPLATE.function_properties(logical_id).get("Environment", {}).get("Variables", {})
    environment = {}
    for name, value in variables.items():
        if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in TEMPLATE.data.get("Parameters", {}):
            parameter = TEMPLATE.parameter(value["Ref"])
            value = ",".join(parameter) if isinstance(parameter, list) else parameter
        elif isinstance(value, dict | list):
            try:
                value = TEMPLATE.resolve(value)  # made of parameters and conditions only (an Fn::If on the edge)
            except KeyError:
                value = f"unit-test-{name.lower().replace('_', '-')}"  # a Ref/GetAtt/Sub of a resource
        environment[name] = str(value)
    return environment


def _import_handler_module(logical_id: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    props = TEMPLATE.function_properties(logical_id)
    module_path = props["Handler"].rsplit(".", 1)[0]
    source = (ROOT / props["CodeUri"] / (module_path.replace(".", "/") + ".py")).resolve()
    for name, value in _environment(logical_id).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    module_name = f"routes_match_template_{logical_id}_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(module_name, source)
    assert spec is not None and spec.loader is not None, f"cannot import {source}"
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, module_name, module)  # removed again after the test
    spec.loader.exec_module(module)
    return module


def _served_routes(app: Any) -> set[tuple[str, str]]:
    """(METHOD, path) for every route of the app, in API Gateway's path syntax ({name:path} -> {name+})."""
    served = set()
    for route in app.routes:
        methods = getattr(route, "methods", None)
        if not methods or route.path == app.openapi_url:
            continue  # mounts and websockets have no methods; /openapi.json is FastAPI's own
        if "GET" in methods:
            methods = set(methods) - {"HEAD"}  # Starlette adds HEAD to GET routes; API Gateway routes GET only
        path = re.sub(r"\{(\w+):path\}", r"{\1+}", route.path)
        served |= {(method.upper(), path) for method in methods}
    return served


def test_the_template_has_http_functions() -> None:
    assert HTTP_FUNCTIONS, "template.yaml routes no HTTP API event to any function"


@pytest.mark.parametrize("logical_id", HTTP_FUNCTIONS)
def test_app_serves_exactly_the_template_routes(logical_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    module = _import_handler_module(logical_id, monkeypatch)
    app = getattr(module, "app", None)
    assert app is not None and hasattr(app, "routes"), f"{logical_id}'s handler module has no FastAPI `app`"
    declared = {(route.method, route.path) for route in TEMPLATE.routes() if route.function == logical_id}
    served = _served_routes(app)
    assert not declared - served, (
        f"{logical_id}: in template.yaml but not served by the app: {sorted(declared - served)}"
    )
    assert not served - declared, (
        f"{logical_id}: served by the app but not routed in template.yaml: {sorted(served - declared)}"
    )


@pytest.mark.parametrize("logical_id", HTTP_FUNCTIONS)
def test_openapi_document_lists_the_same_routes(logical_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The OpenAPI document (what the fuzz tests and frontends read) documents every route, and no other."""
    app = _import_handler_module(logical_id, monkeypatch).app
    documented = {
        (method.upper(), path) for path, operations in app.openapi()["paths"].items() for method in operations
    }
    declared = {(route.method, route.path) for route in TEMPLATE.routes() if route.function == logical_id}
    assert documented == declared


def test_served_routes_reads_methods_and_paths() -> None:
    """The comparison itself: HEAD dropped beside GET, /openapi.json ignored, greedy paths translated."""
    from fastapi import FastAPI

    app = FastAPI(docs_url=None, redoc_url=None)
    app.get("/things/{thing_id}")(lambda thing_id: None)
    app.post("/things")(lambda: None)
    app.get("/files/{rest:path}")(lambda rest: None)
    assert _served_routes(app) == {("GET", "/things/{thing_id}"), ("POST", "/things"), ("GET", "/files/{rest+}")}


def test_import_is_isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each import is a fresh module under its own name (no state leaks between tests or into the local cloud)."""
    first = _import_handler_module(HTTP_FUNCTIONS[0], monkeypatch)
    second = _import_handler_module(HTTP_FUNCTIONS[0], monkeypatch)
    assert first is not second and first.__name__ != second.__name__
    assert Path(first.__file__).is_file()
