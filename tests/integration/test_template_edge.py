"""The optional edge (template.yaml, Condition EdgeOn; edge/web-acl.yaml): one CloudFront distribution for the shop
and the API, catalog GETs cached and everything else passed through, the site from a private bucket, a WAF web ACL,
and the execute-api endpoint closed. Off by default (the local cloud then has none of it); linted with it on too."""

from __future__ import annotations

import fnmatch
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local_cloud.template import Template, load_yaml

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"  # AWS's managed origin request policy
EDGE_ON = {
    "Edge": "true",
    "ApiOriginDomainName": "api-origin.shop.example.com",
    "ApiOriginCertificateArn": "arn:aws:acm:eu-central-1:123456789012:certificate/11111111-2222-3333-4444-555555555555",
    "EdgeDomainName": "shop.example.com",
    "EdgeCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555",
}
EDGE_TYPES = ("AWS::CloudFront::", "AWS::S3::", "AWS::WAFv2::", "AWS::ApiGatewayV2::", "AWS::CloudFormation::Stack")


def _template(**overrides: str) -> Template:
    return Template(load_yaml((ROOT / "template.yaml").read_text()), parameter_overrides=overrides)


@pytest.fixture(scope="module")
def distribution() -> dict[str, Any]:
    return _template().data["Resources"]["EdgeDistribution"]["Properties"]["DistributionConfig"]


def test_the_edge_exists_only_when_asked_for() -> None:
    declared = {lid for lid, r in _template().data["Resources"].items() if r["Type"].startswith(EDGE_TYPES)}
    assert {"EdgeDistribution", "WebBucket", "WebOriginAccessControl", "EdgeWebAcl", "ApiOriginDomain"} <= declared
    assert declared.isdisjoint(_template().resources), "the edge must be off by default (and so locally)"
    on = set(_template(**EDGE_ON).resources)
    assert declared - {"EdgeWebAcl"} <= on
    # In us-east-1 the stack makes its web ACL itself; elsewhere it takes edge/web-acl.yaml's, made in us-east-1.
    assert "EdgeWebAcl" in on
    elsewhere = Template(load_yaml((ROOT / "template.yaml").read_text()), region="eu-central-1",
                         parameter_overrides={**EDGE_ON, "EdgeWebAclArn": "arn:aws:wafv2:us-east-1:123456789012:global/webacl/x/1"})
    assert "EdgeWebAcl" not in elsewhere.resources and "EdgeDistribution" in elsewhere.resources


def _behavior(distribution: dict[str, Any], path: str) -> dict[str, Any]:
    """The cache behavior CloudFront picks for a path: the first whose pattern matches, else the default."""
    for behavior in distribution["CacheBehaviors"]:
        if fnmatch.fnmatchcase(path, behavior["PathPattern"]):
            return behavior
    return distribution["DefaultCacheBehavior"]


def test_every_route_reaches_the_api_and_only_catalog_reads_are_cached(distribution: dict[str, Any]) -> None:
    template = _template()
    cached = {"products", "categories", "shop"}
    for route in template.routes():
        sample = route.path.replace("{", "").replace("}", "")  # /products/{product_id} -> /products/product_id
        behavior = _behavior(distribution, sample)
        assert behavior["TargetOriginId"] == "api", f"{route.route_key} would be served by the site's bucket"
        assert route.method in behavior["AllowedMethods"], f"{route.route_key}: method not allowed at the edge"
        assert behavior["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST, route.route_key
        assert behavior["ViewerProtocolPolicy"] == "https-only", route.route_key
        catalog = route.method == "GET" and sample.strip("/").split("/")[0] in cached
        policy = behavior["CachePolicyId"]
        assert policy == {"Ref": "CatalogCachePolicy" if catalog else "ApiPassThroughCachePolicy"}, route.route_key
    resources = template.data["Resources"]
    catalog = resources["CatalogCachePolicy"]["Properties"]["CachePolicyConfig"]
    assert catalog["ParametersInCacheKeyAndForwardedToOrigin"]["QueryStringsConfig"] == {"QueryStringBehavior": "all"}
    assert catalog["DefaultTTL"] == 0 and catalog["MinTTL"] == 0, "only what the API says is cacheable is cached"
    passthrough = resources["ApiPassThroughCachePolicy"]["Properties"]["CachePolicyConfig"]
    assert passthrough["MaxTTL"] <= 1 and passthrough["DefaultTTL"] == 0
    assert passthrough["ParametersInCacheKeyAndForwardedToOrigin"]["HeadersConfig"]["Headers"] == ["Authorization"]


def test_the_site_comes_from_a_private_bucket_only_the_distribution_reads(distribution: dict[str, Any]) -> None:
    resources = _template().data["Resources"]
    default = distribution["DefaultCacheBehavior"]
    assert default["TargetOriginId"] == "web" and default["ViewerProtocolPolicy"] == "redirect-to-https"
    web = next(o for o in distribution["Origins"] if o["Id"] == "web")
    assert web["OriginAccessControlId"] == {"Fn::GetAtt": ["WebOriginAccessControl", "Id"]}
    assert web["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    block = resources["WebBucket"]["Properties"]["PublicAccessBlockConfiguration"]
    assert all(block[k] is True for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls",
                                           "RestrictPublicBuckets"))
    statements = resources["WebBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    reader = next(s for s in statements if s["Effect"] == "Allow")
    assert reader["Principal"] == {"Service": "cloudfront.amazonaws.com"} and reader["Action"] == "s3:GetObject"
    assert "EdgeDistribution" in reader["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
    api = next(o for o in distribution["Origins"] if o["Id"] == "api")
    assert api["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert api["DomainName"] == {"Ref": "ApiOriginDomainName"}, "execute-api is closed: the API's own domain"


def test_with_the_edge_only_cloudfront_reaches_the_api_and_names_the_client() -> None:
    template = _template()
    api = template.data["Resources"]["HttpApi"]["Properties"]
    assert api["DisableExecuteApiEndpoint"] == {"Fn::If": ["EdgeOn", True, False]}
    checkout = template.function_properties("CheckoutFunction")["Environment"]["Variables"]
    assert checkout["CLIENT_IP_HEADER"] == {"Fn::If": ["EdgeOn", "cloudfront-viewer-address", ""]}
    assert _template(**EDGE_ON).resolve(api["DisableExecuteApiEndpoint"]) is True
    assert _template().resolve(api["DisableExecuteApiEndpoint"]) is False


def test_the_web_acl_limits_rates_and_runs_aws_managed_rules() -> None:
    acl_template = load_yaml((ROOT / "edge" / "web-acl.yaml").read_text())
    acl = acl_template["Resources"]["WebAcl"]["Properties"]
    assert acl["Scope"] == "CLOUDFRONT"
    rules = acl["Rules"]
    rate = [r for r in rules if "RateBasedStatement" in r["Statement"]]
    assert rate and all(r["Statement"]["RateBasedStatement"]["AggregateKeyType"] == "IP" for r in rate)
    managed = {r["Statement"]["ManagedRuleGroupStatement"]["Name"] for r in rules
               if "ManagedRuleGroupStatement" in r["Statement"]}
    assert {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet",
            "AWSManagedRulesAmazonIpReputationList"} <= managed
    assert sorted(r["Priority"] for r in rules) == list(range(len(rules)))
    assert any(r["Type"] == "AWS::WAFv2::LoggingConfiguration" for r in acl_template["Resources"].values())
    distribution = _template().data["Resources"]["EdgeDistribution"]
    assert distribution["Properties"]["DistributionConfig"]["WebACLId"] == {
        "Fn::If": ["EdgeMakesWebAcl", {"Fn::GetAtt": ["EdgeWebAcl", "Outputs.WebAclArn"]}, {"Ref": "EdgeWebAclArn"}]}


def _edge_on_copy(tmp_path: Path) -> Path:
    """template.yaml with the edge switched on by its defaults (linters lint one parameter set: the defaults), next
    to links to everything it names (code, state machine, the web ACL's template)."""
    data = (ROOT / "template.yaml").read_text()
    for name, value in EDGE_ON.items():
        marker = f"\n  {name}:\n"
        start = data.index(marker)
        default = data.index("    Default:", start)
        end = data.index("\n", default)
        data = data[:default] + f'    Default: "{value}"' + data[end:]
    for entry in ROOT.iterdir():
        if entry.name not in {"template.yaml", ".git", ".venv", ".aws-sam"}:
            (tmp_path / entry.name).symlink_to(entry)
    (tmp_path / "template.yaml").write_text(data)
    return tmp_path


@pytest.mark.slow("template")
def test_cfn_lint_and_sam_validate_are_clean_with_the_edge_on(tmp_path: Path) -> None:
    copy = _edge_on_copy(tmp_path)
    assert load_yaml((copy / "template.yaml").read_text())["Parameters"]["Edge"]["Default"] == "true"
    env = dict(os.environ, SAM_CLI_TELEMETRY="0", PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    for command in ([str(VENV_BIN / "cfn-lint"), "--", "template.yaml", "edge/web-acl.yaml"],
                    [str(VENV_BIN / "sam"), "validate", "--lint", "--template", "template.yaml"]):
        result = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, timeout=600, check=False)
        assert result.returncode == 0, f"{command[0]}: {result.stdout}\n{result.stderr}"
