"""The edge's web ACL (edge/web-acl.yaml), evaluated rule by rule for requests to every route of template.yaml: the
shop's traffic meets every rule; the provider webhooks skip the per-address request limit and the body-inspecting
managed groups; the admin API skips the request limit and the common rule set's 8 KB body limit only; no path detour
(`/webhooks/../checkout`) escapes a rule meant for the shop.

The evaluator below does what AWS WAF does with the statements this web ACL uses (rules in priority order, scope-down
statements, text transformations, labels, rule action overrides) and fails on any other, so a new kind of statement
cannot pass untested. Managed rules are opaque: a request is described by the managed rules it would match.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from local_cloud.template import Template, load_yaml

ROOT = Path(__file__).resolve().parents[2]
ACL = load_yaml((ROOT / "edge" / "web-acl.yaml").read_text())["Resources"]["WebAcl"]["Properties"]
RULES = sorted(ACL["Rules"], key=lambda rule: rule["Priority"])

CRS, BAD_INPUTS, IP_REPUTATION = (
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
)
# The labels managed rules add, as AWS WAF's developer guide lists them ("Baseline rule groups"): only those a rule of
# this web ACL matches on (test_every_label_the_acl_matches_is_known keeps the two in step).
LABELS = {(CRS, "SizeRestrictions_BODY"): "awswaf:managed:aws:core-rule-set:SizeRestrictions_Body"}
# The site's files and the shop's routes (every other route of the template is added to these below).
SHOP_PATHS = [
    "/",
    "/index.html",
    "/products",
    "/products/p-1",
    "/categories",
    "/shop",
    "/carts",
    "/carts/c-1/items",
    "/shipping-methods",
    "/checkout",
    "/orders/o-1",
]
# Detours that normalise to a shop path: each must meet every rule the shop path meets.
DETOURS = {
    "/webhooks/../checkout": "/checkout",
    "/webhooks/%2e%2e/checkout": "/checkout",
    "/admin/../carts/c-1/items": "/carts/c-1/items",
    "/admin//..//checkout": "/checkout",
    "/./checkout": "/checkout",
    "//products": "/products",
}


@dataclass
class Request:
    path: str
    managed_matches: set[tuple[str, str]] = field(default_factory=set)  # (group, rule) it would match
    labels: set[str] = field(default_factory=set)


def _normalise_path(path: str) -> str:
    """AWS WAF's NORMALIZE_PATH: multiple slashes, self-references and back-references not at the start removed."""
    parts: list[str] = []
    for segment in path.split("/")[1:]:
        if segment in ("", "."):
            continue
        if segment == ".." and parts and parts[-1] != "..":
            parts.pop()
        else:
            parts.append(segment)
    trailing = "/" if path.endswith("/") and parts else ""
    return "/" + "/".join(parts) + trailing


TRANSFORMATIONS = {
    "NONE": lambda v: v,
    "URL_DECODE": unquote,
    "NORMALIZE_PATH": _normalise_path,
    "LOWERCASE": str.lower,
}


def matches(statement: dict[str, Any], request: Request) -> bool:
    ((kind, body),) = statement.items()
    if kind == "NotStatement":
        return not matches(body["Statement"], request)
    if kind == "OrStatement":
        return any(matches(s, request) for s in body["Statements"])
    if kind == "AndStatement":
        return all(matches(s, request) for s in body["Statements"])
    if kind == "LabelMatchStatement":
        assert body["Scope"] == "LABEL", body
        return body["Key"] in request.labels
    if kind == "ByteMatchStatement":
        assert body["FieldToMatch"] == {"UriPath": {}}, body
        value = request.path
        for transformation in sorted(body["TextTransformations"], key=lambda t: t["Priority"]):
            value = TRANSFORMATIONS[transformation["Type"]](value)
        wanted = body["SearchString"]
        return {
            "STARTS_WITH": value.startswith,
            "EXACTLY": value.__eq__,
            "CONTAINS": value.__contains__,
            "ENDS_WITH": value.endswith,
        }[body["PositionalConstraint"]](wanted)
    raise NotImplementedError(f"the evaluator does not know {kind}: add it here, with a test")


def rate_limits_counting(request: Request) -> set[str]:
    """The rate-based rules that count the request against its address's limit."""
    counting = set()
    for rule in RULES:
        if "RateBasedStatement" in rule["Statement"]:
            scope = rule["Statement"]["RateBasedStatement"].get("ScopeDownStatement")
            if scope is None or matches(scope, request):
                counting.add(rule["Name"])
    return counting


def verdict(request: Request) -> str:
    """What the web ACL does with a request whose address is under every rate limit: "allow", or "block by <rule>"."""
    for rule in RULES:
        statement = rule["Statement"]
        if "RateBasedStatement" in statement:
            continue  # under its limit
        if "ManagedRuleGroupStatement" in statement:
            group = statement["ManagedRuleGroupStatement"]
            scope = group.get("ScopeDownStatement")
            if scope is not None and not matches(scope, request):
                continue
            overrides = {o["Name"]: next(iter(o["ActionToUse"])) for o in group.get("RuleActionOverrides", [])}
            group_override = next(iter(rule["OverrideAction"]))
            for group_name, managed_rule in sorted(request.managed_matches):
                if group_name != group["Name"]:
                    continue
                request.labels.add(LABELS.get((group_name, managed_rule), f"unknown:{managed_rule}"))
                action = "Count" if group_override == "Count" else overrides.get(managed_rule, "Block")
                if action == "Block":
                    return f"block by {rule['Name']}:{managed_rule}"
            continue
        if matches(statement, request):
            action = next(iter(rule["Action"]))
            if action == "Block":
                return f"block by {rule['Name']}"
    return "allow"


def _sample(path_template: str) -> str:
    return path_template.replace("{", "").replace("}", "")


def _route_paths() -> list[str]:
    template = Template(load_yaml((ROOT / "template.yaml").read_text()))
    return sorted({_sample(route.path) for route in template.routes()})


ROUTE_PATHS = _route_paths()
WEBHOOK_PATHS = [p for p in ROUTE_PATHS if p.startswith("/webhooks/")]
ADMIN_PATHS = [p for p in ROUTE_PATHS if p.startswith("/admin/")]


def test_the_template_has_each_kind_of_route() -> None:
    assert {p.split("/")[2] for p in WEBHOOK_PATHS} == {"payments", "carriers"}, ROUTE_PATHS
    assert ADMIN_PATHS, ROUTE_PATHS


@pytest.mark.parametrize(
    "path", sorted({*SHOP_PATHS, *(p for p in ROUTE_PATHS if p not in WEBHOOK_PATHS + ADMIN_PATHS)})
)
def test_the_shops_traffic_meets_every_rule(path: str) -> None:
    assert "requests-per-ip" in rate_limits_counting(Request(path))
    assert ("checkouts-per-ip" in rate_limits_counting(Request(path))) == path.startswith("/checkout")
    assert verdict(Request(path)) == "allow"
    assert verdict(Request(path, {(IP_REPUTATION, "AWSManagedIPReputationList")})).startswith("block by aws-ip-rep")
    assert verdict(Request(path, {(BAD_INPUTS, "Log4JRCE_BODY")})).startswith("block by aws-known-bad-inputs")
    for crs_rule in ("CrossSiteScripting_BODY", "GenericRFI_BODY", "NoUserAgent_HEADER"):
        assert verdict(Request(path, {(CRS, crs_rule)})).startswith("block by aws-common"), crs_rule
    assert verdict(Request(path, {(CRS, "SizeRestrictions_BODY")})) == "block by body-size-except-admin"


@pytest.mark.parametrize("path", WEBHOOK_PATHS)
def test_signed_webhooks_skip_the_request_limit_and_the_body_inspecting_groups(path: str) -> None:
    assert rate_limits_counting(Request(path)) == set()
    # Large Stripe events, a shopper's name that looks like script or Log4j, a carrier without a User-Agent: all
    # reach the function, which refuses anything its signature does not cover.
    for hit in (
        (CRS, "SizeRestrictions_BODY"),
        (CRS, "CrossSiteScripting_BODY"),
        (CRS, "GenericRFI_BODY"),
        (CRS, "NoUserAgent_HEADER"),
        (BAD_INPUTS, "Log4JRCE_BODY"),
    ):
        assert verdict(Request(path, {hit})) == "allow", hit
    assert verdict(Request(path, {(IP_REPUTATION, "AWSManagedIPReputationList")})).startswith("block by aws-ip-rep")


@pytest.mark.parametrize("path", ADMIN_PATHS)
def test_the_admin_api_skips_the_request_limit_and_the_8_kb_body_limit_only(path: str) -> None:
    assert rate_limits_counting(Request(path)) == set()
    assert verdict(Request(path, {(CRS, "SizeRestrictions_BODY")})) == "allow"
    for crs_rule in ("CrossSiteScripting_BODY", "GenericRFI_BODY", "NoUserAgent_HEADER"):
        assert verdict(Request(path, {(CRS, crs_rule)})).startswith("block by aws-common"), crs_rule
    assert verdict(Request(path, {(BAD_INPUTS, "Log4JRCE_BODY")})).startswith("block by aws-known-bad-inputs")
    assert verdict(Request(path, {(IP_REPUTATION, "AWSManagedIPReputationList")})).startswith("block by aws-ip-rep")
    # A large body that also carries script is still refused.
    both = {(CRS, "SizeRestrictions_BODY"), (CRS, "CrossSiteScripting_BODY")}
    assert verdict(Request(path, both)).startswith("block by aws-common:CrossSiteScripting_BODY")


@pytest.mark.parametrize("detour", DETOURS)
def test_no_path_detour_escapes_the_shops_rules(detour: str) -> None:
    shop_path = DETOURS[detour]
    assert rate_limits_counting(Request(detour)) == rate_limits_counting(Request(shop_path))
    for hit in ((CRS, "SizeRestrictions_BODY"), (CRS, "CrossSiteScripting_BODY"), (BAD_INPUTS, "Log4JRCE_BODY")):
        assert verdict(Request(detour, {hit})) == verdict(Request(shop_path, {hit})), hit


def test_every_label_the_acl_matches_is_known() -> None:
    def label_keys(node: Any) -> set[str]:
        if isinstance(node, dict):
            own = {node["Key"]} if "Key" in node and node.get("Scope") == "LABEL" else set()
            return own.union(*(label_keys(v) for v in node.values()))
        if isinstance(node, list):
            return set().union(*(label_keys(v) for v in node))
        return set()

    assert label_keys(RULES) == set(LABELS.values())
    # A label is only there for rules that run after the group that adds it.
    crs = next(r["Priority"] for r in RULES if r["Statement"].get("ManagedRuleGroupStatement", {}).get("Name") == CRS)
    assert all(r["Priority"] > crs for r in RULES if label_keys(r))
    assert [r["Priority"] for r in RULES] == list(range(len(RULES)))


def test_the_evaluator_normalises_paths_as_aws_waf_does() -> None:
    assert _normalise_path("/a//b/./c/../d/") == "/a/b/d/"
    assert _normalise_path("/../a") == "/../a"  # a back-reference at the start stays
    assert _normalise_path("/webhooks/../checkout") == "/checkout"


def test_the_evaluator_refuses_statements_it_does_not_know() -> None:
    with pytest.raises(NotImplementedError):
        matches({"GeoMatchStatement": {"CountryCodes": ["DE"]}}, Request("/"))
