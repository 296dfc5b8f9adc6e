"""OpenAPI-driven fuzzing of the local stack (schemathesis + Hypothesis), over HTTP, through the API Gateway emulation.

Every route template.yaml declares is fuzzed from the merged OpenAPI document the local stack serves at
/openapi.json, with schema-valid (positive) and schema-violating (negative) requests. A run fails on any 5xx,
on a status code, content type, header or body the document does not declare for that operation, and on
invalid input that is not rejected with a 4xx.

Why not `@schema.parametrize()` with `schemathesis.pytest.from_fixture`: in schemathesis 4.32.5 the lazy
loader assigns `request.node._nodeid`, an attribute pytest 9 no longer has, so every such test fails with
AttributeError before sending a request. The routes are known from template.yaml at collection time, so the
tests below parametrize over them and drive each operation's Hypothesis strategy (`operation.as_strategy()`,
the documented schemathesis 4 Python API) themselves; checks are the same `case.call_and_validate()` ones.

Routes behind the JWT authorizer (/admin/*) are fuzzed with a valid token of group admin (POST /dev/auth/token),
so the fuzzing reaches the function; what the authorizer refuses is tested in tests/integration/test_admin_auth.py.
Their path parameters are also drawn from things that exist (demo products, SKUs, orders), so that valid requests
get past 404; the admin's writes act on a product, SKU and category of the fuzz's own, never on the demo data other
tests of this cloud rely on, and valid product bodies name that category and the shop's currency.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from local_cloud.demo_data import DEMO_AWAITING_PAYMENT_ORDER_ID, DEMO_ORDER_ID, DEMO_PAID_ORDER_ID
from local_cloud.template import Route, Template

pytestmark = pytest.mark.slow("fuzz")

MAX_EXAMPLES = int(os.environ.get("STOREFRONT_FUZZ_EXAMPLES", "30"))  # per route and mode; raise it to hunt
# `make test` fuzzes the same examples every run, so no landing is blocked by a random find; `make fuzz` explores at
# random (STOREFRONT_FUZZ_RANDOM=1) with many more examples, and what it finds becomes a test of its own.
DERANDOMIZE = os.environ.get("STOREFRONT_FUZZ_RANDOM") != "1"
ROUTES = sorted(Template.load().routes(), key=lambda r: (r.path, r.method))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Schema-valid requests the catalog may still refuse, by problem code: a cursor is opaque and signed, so any
# string the schema allows is valid input but almost never a cursor this API issued (400 invalid_cursor).
CATALOG_REFUSALS = {400: {"invalid_cursor"}, 404: {"not_found"}}


@pytest.fixture(scope="module")
def schema(gateway: Any) -> schemathesis.BaseSchema:
    """The merged OpenAPI document, exactly as the local stack serves it to developers and frontends."""
    config = schemathesis.Config()  # explicit: a schemathesis.toml somewhere up the tree must not change the run
    # The admin routes' bearer scheme is not fuzzed: every admin request carries the real token (admin_headers), so
    # negative cases are invalid in what they send to the function, never merely in a dropped or mangled token (the
    # authorizer's refusals are tests/integration/test_admin_auth.py's).
    config.projects.default.generation.update(with_security_parameters=False)
    return schemathesis.openapi.from_url(f"{gateway.url}/openapi.json", config=config, timeout=30)


@pytest.fixture(scope="module")
def demo_product_ids(gateway: Any) -> list[str]:
    """Real ids, so that positive fuzzing of /products/{product_id} also reaches products that exist."""
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        response = client.get("/products", params={"limit": 100})
    assert response.status_code == 200, response.text
    ids = [item["id"] for item in response.json()["items"]]
    assert ids, "the local stack serves no demo products"
    return ids


@pytest.fixture(scope="module")
def admin_headers(gateway: Any) -> dict[str, str]:
    """A real token of the authorizer's user pool, group admin: the authorizer lets fuzzed admin requests through."""
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        response = client.post("/dev/auth/token", json={"groups": ["admin"]})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture(scope="module")
def known(gateway: Any, admin_headers: dict[str, str], demo_product_ids: list[str]) -> dict[str, dict[str, list[str]]]:
    """Path parameter values that name something, for reads (the demo's) and for writes (the fuzz's own)."""
    suffix = uuid.uuid4().hex[:8]
    category, product, sku = f"fuzz-{suffix}", f"fuzz-{suffix}", f"FUZZ-{suffix.upper()}"
    with httpx.Client(base_url=gateway.url, timeout=30, headers=admin_headers) as client:
        assert client.post("/admin/categories", json={"id": category, "name": "Fuzz"}).status_code == 201
        created = client.post(
            "/admin/products",
            json={
                "id": product,
                "name": "Fuzz",
                "description": "",
                "category": category,
                "status": "active",
                "images": [],
                "variants": [{"sku": sku, "title": "One", "price": {"amount": 100, "currency": "EUR"}}],
            },
        )
        assert created.status_code == 201, created.text
        demo_skus = [
            v["sku"] for p in client.get("/products", params={"limit": 100}).json()["items"] for v in p["variants"]
        ]
    reads = {
        "product_id": demo_product_ids,
        "sku": demo_skus,
        "category_id": [category],
        "order_id": [DEMO_ORDER_ID, DEMO_PAID_ORDER_ID, DEMO_AWAITING_PAYMENT_ORDER_ID],
    }
    writes = {"product_id": [product], "sku": [sku], "category_id": [category]}
    return {"read": reads, "write": writes, "category": [category]}


def _realistic(case: schemathesis.Case, category: str) -> schemathesis.Case:
    """A schema-valid product body, made one the shop can take: its category exists, its prices are in the shop's
    currency and not negative (rules JSON Schema cannot say)."""
    if isinstance(case.body, dict) and "variants" in case.body and "category" in case.body:
        variants = [
            {**v, "price": {"amount": abs(v["price"]["amount"]), "currency": "EUR"}}
            if isinstance(v, dict) and isinstance(v.get("price"), dict) and isinstance(v["price"].get("amount"), int)
            else v
            for v in case.body["variants"]
        ]
        case.body = {**case.body, "category": category, "variants": variants}
    return case


def _strategy(
    schema: schemathesis.BaseSchema, route: Route, mode: GenerationMode, known: dict[str, dict[str, list[str]]]
) -> st.SearchStrategy[Any]:
    operation = schema[route.path][route.method]
    generated = operation.as_strategy(generation_mode=mode)
    if mode is not GenerationMode.POSITIVE:
        return generated
    values = known["write" if route.authorizer is not None and route.method != "GET" else "read"]
    names = [name for name in values if "{" + name + "}" in route.path]
    if names:
        choices = st.fixed_dictionaries({name: st.sampled_from(values[name]) for name in names})
        generated = st.one_of(
            generated,
            choices.flatmap(lambda parameters: operation.as_strategy(generation_mode=mode, path_parameters=parameters)),
        )
    if route.authorizer is not None and route.method in ("POST", "PUT"):
        generated = generated.map(lambda case: _realistic(case, known["category"][0]))
    return generated


def test_openapi_documents_exactly_the_template_routes(schema: schemathesis.BaseSchema) -> None:
    documented = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    assert documented == {(r.method, r.path) for r in ROUTES}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.route_key)
def test_fuzz(
    schema: schemathesis.BaseSchema,
    known: dict[str, dict[str, list[str]]],
    admin_headers: dict[str, str],
    route: Route,
    mode: GenerationMode,
) -> None:
    definition = schema.raw_schema["paths"][route.path][route.method.lower()]
    if mode is GenerationMode.NEGATIVE and not (definition.get("parameters") or definition.get("requestBody")):
        # An operation without any input has no invalid request (Hypothesis would report Unsatisfiable).
        assert not schema[route.path][route.method].path_parameters
        return
    statuses: Counter[int] = Counter()
    checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])
    headers = admin_headers if route.authorizer is not None else None

    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=DERANDOMIZE,
        suppress_health_check=[hypothesis.HealthCheck.too_slow],
    )
    @hypothesis.given(case=_strategy(schema, route, mode, known))
    def fuzz(case: schemathesis.Case) -> None:
        response = case.call_and_validate(headers=headers, checks=checks, timeout=30)
        statuses[response.status_code] += 1
        if mode is GenerationMode.POSITIVE and route.function == "CatalogFunction" and response.status_code >= 400:
            code = response.json().get("code")
            assert code in CATALOG_REFUSALS.get(response.status_code, set()), (
                f"schema-valid request refused with {response.status_code} {code}: {response.text}"
            )
            if code == "invalid_cursor":
                assert case.query and "cursor" in case.query, "invalid_cursor without a cursor"

    fuzz()
    assert sum(statuses.values()) > 0, "no request was sent"
    if mode is GenerationMode.POSITIVE and route.function in ("CatalogFunction", "AdminFunction"):
        assert any(200 <= s < 300 for s in statuses), f"positive fuzzing never got a 2xx: {dict(statuses)}"
    if mode is GenerationMode.NEGATIVE:
        assert any(400 <= s < 500 for s in statuses), f"negative fuzzing never got a 4xx: {dict(statuses)}"
