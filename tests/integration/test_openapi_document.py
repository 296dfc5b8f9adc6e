"""The API's contract in the repository: openapi.json is the merged OpenAPI document the local stack serves, regenerated
and compared here; it puts the bearer scheme on exactly the routes behind the JWT authorizer; and docs/api.md, the
contract in prose, names every route template.yaml declares."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from local_cloud.cloud import LocalCloud
from local_cloud.gateway import merged_openapi
from local_cloud.template import Template

ROOT = Path(__file__).resolve().parents[2]
COMMAND = "make openapi (python -m local_cloud openapi > openapi.json)"


def test_the_committed_openapi_json_is_the_current_document(cloud: LocalCloud) -> None:
    committed = json.loads((ROOT / "openapi.json").read_text())
    assert committed == merged_openapi(cloud), f"openapi.json is stale: run {COMMAND}"
    assert (ROOT / "openapi.json").read_text() == json.dumps(committed, indent=2, ensure_ascii=False) + "\n", (
        f"openapi.json is not formatted as the command writes it: run {COMMAND}"
    )


def test_routes_behind_the_authorizer_and_only_they_take_a_bearer_token(cloud: LocalCloud) -> None:
    document = merged_openapi(cloud)
    assert document["components"]["securitySchemes"] == {
        "AdminJwt": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": document["components"]["securitySchemes"]["AdminJwt"]["description"],
        }
    }
    for route in cloud.template.routes():
        operation: dict[str, Any] = document["paths"][route.path][route.method.lower()]
        expected = [{"AdminJwt": []}] if route.path.startswith("/admin/") else None
        assert operation.get("security") == expected, route.route_key
        if expected:
            assert {"401", "403"} <= set(operation["responses"]), route.route_key


def test_the_contract_in_prose_names_every_route() -> None:
    text = (ROOT / "docs" / "api.md").read_text()
    documented = {
        (method, re.sub(r"\{[^}]+\}", "{}", path))
        for method, path in re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s?]*)", text)
    }
    missing = [
        route.route_key
        for route in Template.load().routes()
        if (route.method, re.sub(r"\{[^}]+\}", "{}", route.path)) not in documented
    ]
    assert not missing, f"docs/api.md does not document {missing}"
