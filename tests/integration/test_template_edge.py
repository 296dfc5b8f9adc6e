"""The optional edge (template.yaml, Condition EdgeOn; edge/web-acl.yaml): one CloudFront distribution for the shop
and the API, catalog GETs cached and everything else passed through, the site from a private bucket, a WAF web ACL,
and the execute-api endpoint closed. Off by default (the local cloud then has none of it); linted with it on too."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
from storefront.config import EdgeSettings
from storefront.http import ORIGIN_SECRET_HEADER, OriginSecret, create_app
from storefront.observability import http_handler

from local_cloud.cloud import generated_secret_string
from local_cloud.functions import LambdaContext
from local_cloud.template import Template, load_yaml
from tests.edge_stack import EDGE_ON, edge_on_copy

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"  # AWS's managed origin request policy
EDGE_TYPES = ("AWS::CloudFront::", "AWS::S3::", "AWS::WAFv2::", "AWS::ApiGatewayV2::", "AWS::CloudFormation::Stack")


def _template(**overrides: str) -> Template:
    return Template(load_yaml((ROOT / "template.yaml").read_text()), parameter_overrides=overrides)


@pytest.fixture(scope="module")
def distribution() -> dict[str, Any]:
    return _template().data["Resources"]["EdgeDistribution"]["Properties"]["DistributionConfig"]


def test_the_edge_exists_only_when_asked_for() -> None:
    # The product images bucket is the admin API's, edge or not; the edge only serves it (its /images/* behaviour).
    declared = {lid for lid, r in _template().data["Resources"].items() if r["Type"].startswith(EDGE_TYPES)} - {
        "ProductImagesBucket",
        "ProductImagesBucketPolicy",
    }
    assert {"EdgeDistribution", "WebBucket", "WebOriginAccessControl", "EdgeWebAcl", "ApiOriginDomain"} <= declared
    assert declared.isdisjoint(_template().resources), "the edge must be off by default (and so locally)"
    on = set(_template(**EDGE_ON).resources)
    assert declared - {"EdgeWebAcl"} <= on
    # In us-east-1 the stack makes its web ACL itself; elsewhere it takes edge/web-acl.yaml's, made in us-east-1.
    assert "EdgeWebAcl" in on
    elsewhere = Template(
        load_yaml((ROOT / "template.yaml").read_text()),
        region="eu-central-1",
        parameter_overrides={**EDGE_ON, "EdgeWebAclArn": "arn:aws:wafv2:us-east-1:123456789012:global/webacl/x/1"},
    )
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
    assert all(
        block[k] is True for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    )
    statements = resources["WebBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    reader = next(s for s in statements if s["Effect"] == "Allow")
    assert reader["Principal"] == {"Service": "cloudfront.amazonaws.com"} and reader["Action"] == "s3:GetObject"
    assert "EdgeDistribution" in reader["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
    api = next(o for o in distribution["Origins"] if o["Id"] == "api")
    assert api["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert api["DomainName"] == {"Ref": "ApiOriginDomainName"}, "execute-api is closed: the API's own domain"


def test_product_images_come_from_their_private_bucket_through_the_edge(distribution: dict[str, Any]) -> None:
    behavior = _behavior(distribution, "/images/linen-shirt/x.jpg")
    assert behavior["TargetOriginId"] == "images" and behavior["AllowedMethods"] == ["GET", "HEAD"]
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    images = next(o for o in distribution["Origins"] if o["Id"] == "images")
    assert images["DomainName"] == {"Fn::GetAtt": ["ProductImagesBucket", "RegionalDomainName"]}
    assert images["OriginAccessControlId"] == {"Fn::GetAtt": ["WebOriginAccessControl", "Id"]}
    statements = _template().data["Resources"]["ProductImagesBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    [(condition, reader, otherwise)] = [s["Fn::If"] for s in statements if "Fn::If" in s]
    assert (condition, otherwise) == ("EdgeOn", {"Ref": "AWS::NoValue"}), "without the edge nobody may read the bucket"
    assert reader["Principal"] == {"Service": "cloudfront.amazonaws.com"} and reader["Action"] == "s3:GetObject"
    assert reader["Resource"] == {"Fn::Sub": "${ProductImagesBucket.Arn}/images/*"}
    assert "${EdgeDistribution}" in reader["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
    assert all(s["Effect"] == "Deny" for s in statements if "Fn::If" not in s)
    on, off = _template(**EDGE_ON), _template(ImageBaseUrl="https://cdn.example.com")
    # The admin API hands out image URLs at the distribution with the edge on; at ImageBaseUrl without it.
    assert (
        on.resolve(on.function_properties("AdminFunction")["Environment"]["Variables"]["IMAGE_BASE_URL"])
        == "https://shop.example.com"
    )
    assert (
        off.resolve(off.function_properties("AdminFunction")["Environment"]["Variables"]["IMAGE_BASE_URL"])
        == "https://cdn.example.com"
    )


def _http_functions(template: Template) -> set[str]:
    return {route.function for route in template.routes()}


def test_with_the_edge_every_http_function_answers_only_what_cloudfront_sent() -> None:
    """The execute-api endpoint is closed and the API's own domain is public: every function behind a route holds
    the origin secret's id (and may read it: no other function may), and CloudFront sends one of its values."""
    template = _template()
    resources = template.data["Resources"]
    api = resources["HttpApi"]["Properties"]
    assert api["DisableExecuteApiEndpoint"] == {"Fn::If": ["EdgeOn", True, False]}
    assert _template(**EDGE_ON).resolve(api["DisableExecuteApiEndpoint"]) is True
    assert _template().resolve(api["DisableExecuteApiEndpoint"]) is False
    http = _http_functions(template)
    assert {"CatalogFunction", "CheckoutFunction", "PaymentWebhookFunction", "AdminFunction"} <= http
    secret_id = {"Fn::If": ["EdgeOn", {"Ref": "EdgeOriginSecret"}, ""]}
    for function in template.of_type("AWS::Serverless::Function"):
        variables = template.function_properties(function).get("Environment", {}).get("Variables", {})
        assert variables.get("EDGE_ORIGIN_SECRET_ID") == (secret_id if function in http else None), function
        assert "CLIENT_IP_HEADER" not in variables, "the viewer's address is trusted only with the origin secret"
    readers = resources["EdgeOriginSecretReaders"]
    assert readers["Condition"] == "EdgeOn"
    assert {role["Ref"] for role in readers["Properties"]["Roles"]} == {f"{f}Role" for f in http}
    assert readers["Properties"]["PolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": {"Ref": "EdgeOriginSecret"}}
    ]
    permissions = {
        lid: r["Properties"].get("Policies", []) if r["Type"] == "AWS::Serverless::Function" else r["Properties"]
        for lid, r in resources.items()
        if r["Type"] == "AWS::Serverless::Function" or r["Type"].startswith("AWS::IAM::")
    }
    granted = {lid for lid, policies in permissions.items() if "EdgeOriginSecret" in json.dumps(policies)}
    assert granted == {"EdgeOriginSecretReaders"}


def test_the_origin_header_cloudfront_sends_is_one_the_functions_accept(
    distribution: dict[str, Any], cloud: Any
) -> None:
    """The header's name, the slots the secret is generated with and the parameter that picks one agree with
    storefront.http; resolved as CloudFormation resolves it, CloudFront's value opens the API, and nothing else."""
    template = _template()
    resources = template.data["Resources"]
    api = next(o for o in distribution["Origins"] if o["Id"] == "api")
    (header,) = api["OriginCustomHeaders"]
    assert header["HeaderName"].lower() == ORIGIN_SECRET_HEADER
    secret = resources["EdgeOriginSecret"]
    assert secret["Condition"] == "EdgeOn"
    generate = secret["Properties"]["GenerateSecretString"]
    slots = set(json.loads(generate["SecretStringTemplate"])) | {generate["GenerateStringKey"]}
    assert (
        slots
        == set(OriginSecret.model_fields)
        == set(template.data["Parameters"]["EdgeOriginHeaderSlot"]["AllowedValues"])
    )
    assert generate["ExcludePunctuation"] is True and 32 <= generate["PasswordLength"] <= 256

    # The session's local cloud's Secrets Manager, not mock_aws (which resets every moto backend of its process).
    client = cloud.client("secretsmanager")
    arn = client.create_secret(
        Name=f"edge-origin-{uuid.uuid4()}", SecretString=generated_secret_string(secret["Properties"])
    )["ARN"]
    on = _template(**EDGE_ON)
    on.physical["EdgeOriginSecret"] = {"Ref": arn}
    sent = _resolve_secretsmanager_reference(on.resolve(header["HeaderValue"]), client)
    variables = on.function_properties("CheckoutFunction")["Environment"]["Variables"]
    settings = EdgeSettings(EDGE_ORIGIN_SECRET_ID=on.resolve(variables["EDGE_ORIGIN_SECRET_ID"]))
    assert settings.origin_secret_id == arn
    DEFAULT_PROVIDERS.clear()
    try:
        statuses = _through_the_edge_only(settings, sent)
    finally:
        DEFAULT_PROVIDERS.clear()
    assert statuses == {"from cloudfront": 200, "from anyone else": 403}


def _resolve_secretsmanager_reference(text: str, client: Any) -> str:
    """{{resolve:secretsmanager:<secret id>:SecretString:<json key>}} as CloudFormation resolves it at deploy time."""
    match = re.fullmatch(r"\{\{resolve:secretsmanager:(?P<id>.+):SecretString:(?P<key>[A-Za-z0-9_-]+)\}\}", text)
    assert match, text
    return str(json.loads(client.get_secret_value(SecretId=match["id"])["SecretString"])[match["key"]])


def _through_the_edge_only(settings: EdgeSettings, sent: str) -> dict[str, int]:
    """GET /shop of a function configured so, asked as CloudFront asks it and as anyone else would: the statuses."""
    app = create_app("edge", edge=settings)

    @app.get("/shop")
    def shop() -> dict[str, str]:
        return {}

    handler = http_handler(app, Logger(service="edge"))
    context = LambdaContext("edge", "arn:aws:lambda:us-east-1:123456789012:function:edge", 128, 3)

    def status(headers: dict[str, str]) -> int:
        event = {
            "version": "2.0",
            "routeKey": "GET /shop",
            "rawPath": "/shop",
            "rawQueryString": "",
            "headers": {"host": EDGE_ON["ApiOriginDomainName"], **headers},
            "isBase64Encoded": False,
            "requestContext": {
                "http": {
                    "method": "GET",
                    "path": "/shop",
                    "protocol": "HTTP/1.1",
                    "sourceIp": "130.176.0.10",
                    "userAgent": "Amazon CloudFront",
                },
                "requestId": "r",
                "routeKey": "GET /shop",
                "stage": "$default",
            },
        }
        return int(handler(event, context)["statusCode"])

    return {"from cloudfront": status({ORIGIN_SECRET_HEADER: sent}), "from anyone else": status({})}


def test_the_web_acl_limits_rates_and_runs_aws_managed_rules() -> None:
    acl_template = load_yaml((ROOT / "edge" / "web-acl.yaml").read_text())
    acl = acl_template["Resources"]["WebAcl"]["Properties"]
    assert acl["Scope"] == "CLOUDFRONT"
    rules = acl["Rules"]
    rate = [r for r in rules if "RateBasedStatement" in r["Statement"]]
    assert rate and all(r["Statement"]["RateBasedStatement"]["AggregateKeyType"] == "IP" for r in rate)
    managed = {
        r["Statement"]["ManagedRuleGroupStatement"]["Name"]
        for r in rules
        if "ManagedRuleGroupStatement" in r["Statement"]
    }
    assert {
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
    } <= managed
    assert sorted(r["Priority"] for r in rules) == list(range(len(rules)))
    assert any(r["Type"] == "AWS::WAFv2::LoggingConfiguration" for r in acl_template["Resources"].values())
    distribution = _template().data["Resources"]["EdgeDistribution"]
    assert distribution["Properties"]["DistributionConfig"]["WebACLId"] == {
        "Fn::If": ["EdgeMakesWebAcl", {"Fn::GetAtt": ["EdgeWebAcl", "Outputs.WebAclArn"]}, {"Ref": "EdgeWebAclArn"}]
    }


@pytest.mark.slow("template")
def test_cfn_lint_and_sam_validate_are_clean_with_the_edge_on(tmp_path: Path) -> None:
    copy = edge_on_copy(tmp_path)
    assert load_yaml((copy / "template.yaml").read_text())["Parameters"]["Edge"]["Default"] == "true"
    env = dict(os.environ, SAM_CLI_TELEMETRY="0", PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    for command in (
        [str(VENV_BIN / "cfn-lint"), "--", "template.yaml", "edge/web-acl.yaml"],
        [str(VENV_BIN / "sam"), "validate", "--lint", "--template", "template.yaml"],
    ):
        result = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, timeout=600, check=False)
        assert result.returncode == 0, f"{command[0]}: {result.stdout}\n{result.stderr}"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("/manage/", {"uri": "/manage/index.html"}),
        ("/", {"uri": "/index.html"}),
        ("/manage", {"statusCode": 301, "location": "/manage/"}),
        ("/manage/app.js", {"uri": "/manage/app.js"}),
        ("/favicon.svg", {"uri": "/favicon.svg"}),
    ],
)
def test_the_sites_folders_get_their_index_html_at_the_edge(
    distribution: dict[str, Any], uri: str, expected: dict[str, Any]
) -> None:
    """CloudFront's DefaultRootObject covers "/" only; the viewer-request function gives /manage/ its page. Run in
    Node.js (CloudFront Functions are JavaScript), with the event shape CloudFront passes."""
    associations = distribution["DefaultCacheBehavior"]["FunctionAssociations"]
    assert associations == [
        {
            "EventType": "viewer-request",
            "FunctionARN": {"Fn::GetAtt": ["SiteFolderIndexFunction", "FunctionMetadata.FunctionARN"]},
        }
    ]
    function = _template(**EDGE_ON).data["Resources"]["SiteFolderIndexFunction"]["Properties"]
    assert function["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0" and function["AutoPublish"] is True
    event = {"version": "1.0", "request": {"method": "GET", "uri": uri, "querystring": {}, "headers": {}}}
    script = f"{function['FunctionCode']}\nprocess.stdout.write(JSON.stringify(handler({json.dumps(event)})));"
    result = json.loads(subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True).stdout)
    if "statusCode" in expected:
        assert result["statusCode"] == expected["statusCode"]
        assert result["headers"]["location"]["value"] == expected["location"]
    else:
        assert result["uri"] == expected["uri"] and "statusCode" not in result
