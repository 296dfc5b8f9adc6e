"""template.yaml's deploy guardrails, evaluated as CloudFormation evaluates them before it deploys.

cfn-lint checks the Rules section's syntax but does not evaluate it against parameter values (`cfn-lint
--parameters Stage=prod PaymentProvider=fake` passes), so this file holds a small evaluator of what CloudFormation
does first: each parameter against its AllowedValues / AllowedPattern / MinValue / MaxValue (every element of a
CommaDelimitedList), then each rule whose RuleCondition holds, assertion by assertion. It knows the rule functions
the template uses (Ref, Fn::Equals, Fn::Not, Fn::And, Fn::Or, Fn::Contains) and fails on any other, so a new
function in the template cannot pass untested.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest

from local_cloud.template import load_yaml
from tests.edge_stack import EDGE_ON

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_yaml((ROOT / "template.yaml").read_text())

# A prod deploy that keeps every guardrail.
GOOD_PROD = {
    "Stage": "prod",
    "PaymentProvider": "stripe",
    "PaymentApiBase": "https://api.stripe.com",
    "CarrierName": "parcelco",
    "CarrierApiBase": "https://api.parcelco.de/v2",
    "AllowedOrigins": "https://shop.mystore.de,https://www.mystore.de",
    "AlarmEmail": "ops@mystore.de",
}


# ---------------------------------------------------------------- the evaluator


def parameter_values(overrides: dict[str, str]) -> dict[str, Any]:
    """Every parameter's value as a rule sees it: a string, or a list for a CommaDelimitedList."""
    values: dict[str, Any] = {}
    for name, spec in TEMPLATE["Parameters"].items():
        raw = str(overrides.get(name, spec.get("Default", "")))
        values[name] = [v.strip() for v in raw.split(",")] if spec["Type"] == "CommaDelimitedList" else raw
    return values


def parameter_violations(values: dict[str, Any]) -> set[str]:
    """What CloudFormation refuses before it looks at the rules, as '<parameter>: <constraint>'."""
    found = set()
    for name, spec in TEMPLATE["Parameters"].items():
        for value in values[name] if isinstance(values[name], list) else [values[name]]:
            if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
                found.add(f"{name}: AllowedValues")
            # CloudFormation's patterns must match the whole value (Java regexes; these use the common subset).
            if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
                found.add(f"{name}: AllowedPattern")
            if "MinValue" in spec and float(value) < float(spec["MinValue"]):
                found.add(f"{name}: MinValue")
            if "MaxValue" in spec and float(value) > float(spec["MaxValue"]):
                found.add(f"{name}: MaxValue")
    return found


def evaluate(expression: Any, values: dict[str, Any]) -> Any:
    if not isinstance(expression, dict):
        return expression
    ((function, argument),) = expression.items()
    if function == "Ref":
        return values[argument]
    if function == "Fn::Equals":
        left, right = (evaluate(a, values) for a in argument)
        return str(left) == str(right)
    if function == "Fn::Not":
        return not evaluate(argument[0], values)
    if function == "Fn::And":
        return all(evaluate(a, values) for a in argument)
    if function == "Fn::Or":
        return any(evaluate(a, values) for a in argument)
    if function == "Fn::Contains":  # (list of strings, string): the string equals a member of the list
        members, value = (evaluate(a, values) for a in argument)
        return value in members
    raise NotImplementedError(f"the rules evaluator does not know {function}: add it here, with a test")


def rule_violations(values: dict[str, Any]) -> set[str]:
    """The failing assertions of every rule that applies, as '<rule>: <AssertDescription>'."""
    found = set()
    for name, rule in TEMPLATE["Rules"].items():
        if "RuleCondition" in rule and not evaluate(rule["RuleCondition"], values):
            continue
        found |= {f"{name}: {a['AssertDescription']}" for a in rule["Assertions"] if not evaluate(a["Assert"], values)}
    return found


def refusals(overrides: dict[str, str], region: str = "eu-central-1") -> set[str]:
    """Why CloudFormation would refuse to deploy these parameters in `region` (empty: it would deploy)."""
    values = parameter_values(overrides)
    return parameter_violations(values) | rule_violations({**values, "AWS::Region": region})


def _description(rule: str, words: str) -> str:
    """The one assertion of `rule` whose description contains `words`, as rule_violations names it."""
    (description,) = [
        a["AssertDescription"] for a in TEMPLATE["Rules"][rule]["Assertions"] if words in a["AssertDescription"]
    ]
    return f"{rule}: {description}"


# ---------------------------------------------------------------- good parameter sets


def test_a_prod_deploy_that_keeps_every_guardrail_is_accepted() -> None:
    assert refusals(GOOD_PROD) == set()


def test_the_defaults_deploy_a_dev_stack() -> None:
    assert refusals({}) == set()


def test_dev_stacks_may_use_the_local_payment_provider_and_localhost_origins() -> None:
    dev = {
        "Stage": "dev",
        "PaymentProvider": "fake",
        "AllowedOrigins": "http://localhost:8080,http://127.0.0.1:3000",
        "CarrierName": "local",
    }
    assert refusals(dev) == set()


# ---------------------------------------------------------------- bad parameter sets, each for its reason


BAD_PROD = {
    "the fake payment provider": (
        {"PaymentProvider": "fake"},
        {_description("ProdPayments", "PaymentProvider must be stripe")},
    ),
    "a payment API that is not Stripe's": (
        {"PaymentApiBase": "https://payments-proxy.mystore.de"},
        {_description("ProdPayments", "PaymentApiBase")},
    ),
    "a plain-http payment API": (
        {"PaymentApiBase": "http://api.stripe.com"},
        {"PaymentApiBase: AllowedPattern", _description("ProdPayments", "PaymentApiBase")},
    ),
    "the placeholder carrier API": (
        {"CarrierApiBase": "https://api.carrier.example"},
        {_description("ProdCarrier", "placeholder")},
    ),
    "a plain-http carrier API": ({"CarrierApiBase": "http://api.parcelco.de"}, {"CarrierApiBase: AllowedPattern"}),
    "the local carrier": ({"CarrierName": "local"}, {_description("ProdCarrier", "CarrierName")}),
    "a localhost origin": (
        {"AllowedOrigins": "https://shop.mystore.de,http://localhost:8080"},
        {_description("ProdOrigins", "localhost")},
    ),
    "a loopback origin by address": (
        {"AllowedOrigins": "http://127.0.0.1:3000"},
        {_description("ProdOrigins", "localhost")},
    ),
    "a loopback origin on another port": (
        {"AllowedOrigins": "http://localhost:5173"},
        {"AllowedOrigins: AllowedPattern"},
    ),
    "a plain-http origin": ({"AllowedOrigins": "http://shop.mystore.de"}, {"AllowedOrigins: AllowedPattern"}),
    "samconfig's placeholder origin": (
        {"AllowedOrigins": "https://shop.example.com"},
        {_description("ProdOrigins", "placeholder")},
    ),
    "no alarm email": ({"AlarmEmail": ""}, {_description("ProdAlarms", "AlarmEmail")}),
}


@pytest.mark.parametrize("case", BAD_PROD, ids=list(BAD_PROD))
def test_a_bad_prod_deploy_is_refused_for_its_reason(case: str) -> None:
    changes, expected = BAD_PROD[case]
    assert refusals({**GOOD_PROD, **changes}) == expected


def test_https_only_holds_for_every_stage() -> None:
    dev = {"PaymentApiBase": "http://api.stripe.com", "CarrierApiBase": "http://api.parcelco.de"}
    assert refusals(dev) == {"PaymentApiBase: AllowedPattern", "CarrierApiBase: AllowedPattern"}


def test_samconfig_prod_is_refused_until_the_merchant_sets_their_origin_and_alarm_email() -> None:
    """samconfig.toml ships placeholders for prod on purpose: the first prod deploy stops and says what to set."""
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    overrides = dict(
        pair.split("=", 1) for pair in shlex.split(config["prod"]["deploy"]["parameters"]["parameter_overrides"])
    )
    assert refusals(overrides) == {
        _description("ProdOrigins", "placeholder"),
        _description("ProdAlarms", "AlarmEmail"),
        _description("ProdCarrier", "placeholder"),
    }
    merchant = {
        "AllowedOrigins": "https://shop.mystore.de",
        "AlarmEmail": "ops@mystore.de",
        "CarrierName": "parcelco",
        "CarrierApiBase": "https://api.parcelco.de",
    }
    assert refusals({**overrides, **merchant}) == set()


def test_an_edge_deploy_takes_either_origin_header_slot_and_no_other() -> None:
    edge = {**GOOD_PROD, **EDGE_ON}
    for slot in ("blue", "green"):
        assert refusals({**edge, "EdgeOriginHeaderSlot": slot}, region="us-east-1") == set()
    assert refusals({**edge, "EdgeOriginHeaderSlot": "red"}, region="us-east-1") == {
        "EdgeOriginHeaderSlot: AllowedValues"
    }
    # Elsewhere the web ACL comes from us-east-1 (edge/web-acl.yaml): the edge's own rule says so.
    assert refusals(edge) == {_description("EdgeOutsideUsEast1NeedsAWebAcl", "us-east-1")}
    assert refusals({**edge, "EdgeWebAclArn": "arn:aws:wafv2:us-east-1:123456789012:global/webacl/shop/1"}) == set()


# ---------------------------------------------------------------- the pattern and the rule agree


def _denied_loopback_origins() -> set[str]:
    (assertion,) = [
        a["Assert"] for a in TEMPLATE["Rules"]["ProdOrigins"]["Assertions"] if "localhost" in a["AssertDescription"]
    ]
    return {contains["Fn::Contains"][1] for contains in assertion["Fn::Not"][0]["Fn::Or"]}


def test_every_plain_http_origin_the_pattern_admits_is_refused_in_prod() -> None:
    """A rule cannot match a prefix, so the pattern admits only a few loopback origins and the rule names each."""
    pattern = TEMPLATE["Parameters"]["AllowedOrigins"]["AllowedPattern"]
    admitted = {
        origin
        for host in ("localhost", "127.0.0.1", "[::1]", "0.0.0.0", "example.com")  # noqa: S104  origins, not a bind
        for origin in [f"http://{host}", *(f"http://{host}:{port}" for port in range(1, 65536))]
        if re.fullmatch(pattern, origin)
    }
    assert admitted == _denied_loopback_origins()


def test_the_evaluator_refuses_functions_it_does_not_know() -> None:
    with pytest.raises(NotImplementedError):
        evaluate({"Fn::EachMemberIn": [["a"], ["a"]]}, {})
