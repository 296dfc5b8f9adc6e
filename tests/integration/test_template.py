"""template.yaml and samconfig.toml: lint, build for the real runtime, and the project's security rules.

The subprocess tests (cfn-lint, sam validate --lint, sam build) are marked slow; everything else reads the
parsed template and runs in milliseconds. Nothing here talks to AWS: `sam build` only needs PyPI.
"""

from __future__ import annotations

import ast
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_cloud.template import Template, load_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
VENV_BIN = Path(sys.executable).parent  # the venv's bin/, where cfn-lint and sam live
RUNTIME = "python3.13"

# The public contract (API.md, "Conventions" / CORS): what a browser may send and read.
CORS_ALLOW_HEADERS = {"content-type", "idempotency-key", "if-match", "if-none-match", "authorization"}
CORS_EXPOSE_HEADERS = {"etag", "location", "retry-after"}

# Actions that IAM cannot scope to a resource: for these, and only these, Resource "*" is the only option.
# (X-Ray segments, CloudWatch metrics, Step Functions task-token callbacks, which take a token, not an ARN,
# and dynamodb:ListStreams, which Lambda's stream event source mapping calls and IAM cannot scope.)
UNSCOPABLE_ACTIONS = {
    "dynamodb:liststreams",
    "xray:puttracesegments",
    "xray:puttelemetryrecords",
    "xray:getsamplingrules",
    "xray:getsamplingtargets",
    "xray:getsamplingstatisticsummaries",
    "cloudwatch:putmetricdata",
    "states:sendtasksuccess",
    "states:sendtaskfailure",
    "states:sendtaskheartbeat",
}
# SAM policy templates that take no resource argument but grant nothing beyond the above.
PARAMETERLESS_POLICY_TEMPLATES = {"CloudWatchPutMetricPolicy"}
# Managed policies (by name) narrow enough to attach: SAM adds X-Ray write access itself when Tracing is Active.
ALLOWED_MANAGED_POLICIES = {"AWSXrayWriteOnlyAccess", "AWSLambdaBasicExecutionRole"}
# AWS managed policies a plain AWS::IAM::Role may attach, with the one service allowed to assume such a role. AWS
# Backup's two service-role policies are as narrow as a backup role gets: they act only on the resources a backup
# selection names and the recovery points of its vaults, and AWS updates them as AWS Backup adds what advanced
# DynamoDB backups need (dynamodb:StartAwsBackupJob, dynamodb:RestoreTableFromAwsBackup, KMS grants via the service).
ALLOWED_ROLE_MANAGED_POLICIES = {
    "service-role/AWSBackupServiceRolePolicyForBackup": "backup.amazonaws.com",
    "service-role/AWSBackupServiceRolePolicyForRestores": "backup.amazonaws.com",
}

SECRET_WORDS = re.compile(r"secret|password|passwd|token|api[_-]?key|private[_-]?key|signing[_-]?key", re.I)
SECRET_PATTERNS = [
    re.compile(r"\bA(KI|SI)A[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\b(sk|rk)_(live|test)_[0-9A-Za-z]{10,}"),  # payment provider secret keys
    re.compile(r"\bwhsec_[0-9A-Za-z]{10,}"),  # webhook signing secrets
    re.compile(r"\bgh[pousr]_[0-9A-Za-z]{30,}"),
    re.compile(r"\bxox[abpr]-[0-9A-Za-z-]{10,}"),
]


# ---------------------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def template() -> Template:
    return Template(load_yaml(TEMPLATE_PATH.read_text()))


def _functions(template: Template) -> dict[str, dict[str, Any]]:
    return template.of_type("AWS::Serverless::Function")


def _is_intrinsic(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and len(value) == 1
        and (next(iter(value)) == "Ref" or next(iter(value)).startswith("Fn::"))
    )


def _ref_target(value: Any) -> str | None:
    """The logical id a `!Ref X` (SAM's `!Ref X.Alias` included) or `!GetAtt X.Attr` points at, else None."""
    if isinstance(value, dict) and len(value) == 1:
        if "Ref" in value:
            return str(value["Ref"]).removesuffix(".Alias")
        if "Fn::GetAtt" in value:
            arg = value["Fn::GetAtt"]
            return str(arg[0] if isinstance(arg, list) else arg.split(".", 1)[0])
    return None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every literal string in the template, with where it sits."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, f"{path}[{index}]")
    elif isinstance(node, str):
        yield path, node


def _policy_statements(template: Template) -> Iterator[tuple[str, dict[str, Any]]]:
    """(owner, statement) for every inline IAM statement: SAM Policies and plain IAM resources alike."""
    for logical_id, resource in template.data["Resources"].items():
        props = resource.get("Properties", {})
        documents: list[Any] = []
        if resource["Type"] in {"AWS::Serverless::Function", "AWS::Serverless::StateMachine"}:
            documents += [p for p in _as_list(props.get("Policies", [])) if isinstance(p, dict) and "Statement" in p]
        elif resource["Type"] == "AWS::IAM::Role":
            documents += [p.get("PolicyDocument", {}) for p in props.get("Policies", [])]
        elif resource["Type"] in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}:
            documents.append(props.get("PolicyDocument", {}))
        for document in documents:
            for statement in _as_list(document.get("Statement", [])):
                yield logical_id, statement


def _find_python313() -> Path | None:
    """A bin/ directory holding a *working* python3.13 (pyenv shims on PATH may exist yet refuse to run)."""
    candidates = [shutil.which(RUNTIME)]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13")), reverse=True)
    if sys.version_info[:2] == (3, 13):
        candidates.append(str(Path(sys.executable).with_name(RUNTIME)))
    for candidate in filter(None, candidates):
        try:
            result = subprocess.run(
                [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except OSError:
            continue
        if result.returncode == 0 and result.stdout.strip() == "3.13":
            return Path(candidate).parent
    return None


def _tool_env(extra_path: Path | None = None) -> dict[str, str]:
    env = dict(os.environ, SAM_CLI_TELEMETRY="0", PYTHONDONTWRITEBYTECODE="1")
    # sam must find the real python3.13 before any pyenv shim (a shim exists, yet fails where 3.13 is not
    # pyenv's selected version); then the venv's own bin, so `sam` uses the venv's cfn-lint.
    paths = ([str(extra_path)] if extra_path else []) + [str(VENV_BIN), env.get("PATH", "")]
    env["PATH"] = os.pathsep.join(paths)
    return env


def _run(args: list[str], env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)


# ---------------------------------------------------------------------------------------------- lint and build


@pytest.mark.slow("template")
def test_cfn_lint_is_clean() -> None:
    # Default rule set: errors and warnings both fail (cfn-lint exits 2 or 4). Informational rules (I*) are
    # advice, not defects, and are left out, as cfn-lint itself does by default.
    result = _run([str(VENV_BIN / "cfn-lint"), "--", "template.yaml"], _tool_env())
    assert result.returncode == 0, f"cfn-lint exit {result.returncode}:\n{result.stdout}\n{result.stderr}"


@pytest.mark.slow("template")
def test_sam_validate_lint_is_clean() -> None:
    result = _run([str(VENV_BIN / "sam"), "validate", "--lint", "--template", "template.yaml"], _tool_env())
    assert result.returncode == 0, f"sam validate --lint exit {result.returncode}:\n{result.stdout}\n{result.stderr}"
    assert "is a valid SAM Template" in result.stdout + result.stderr


PYTHON313_BIN = _find_python313()


@pytest.mark.slow("template")
@pytest.mark.skipif(
    PYTHON313_BIN is None,
    reason="no working python3.13 interpreter on PATH or under ~/.pyenv/versions/3.13*: "
    "sam build for the python3.13 runtime needs one (hardware/tool availability, not a project defect)",
)
def test_sam_build_for_python313_arm64(tmp_path: Path, template: Template) -> None:
    build_dir = tmp_path / "build"
    repo_build_existed = (ROOT / ".aws-sam").exists()
    # --no-cached overrides samconfig's `cached = true`; --cache-dir keeps even the cache out of the repo.
    result = _run(
        [
            str(VENV_BIN / "sam"),
            "build",
            "--template",
            "template.yaml",
            "--build-dir",
            str(build_dir),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-cached",
        ],
        _tool_env(PYTHON313_BIN),
    )
    assert result.returncode == 0, f"sam build exit {result.returncode}:\n{result.stdout}\n{result.stderr}"

    layer = build_dir / "StorefrontLayer" / "python"
    assert (layer / "storefront" / "__init__.py").is_file()
    assert (layer / "storefront" / "config.py").is_file()
    for package in ("fastapi", "mangum", "pydantic", "aws_lambda_powertools"):
        assert (layer / package).is_dir(), f"{package} missing from the built layer"
    # The compiled pydantic-core must be the Linux arm64 wheel for CPython 3.13, not the build machine's.
    binaries = [p.name for p in (layer / "pydantic_core").glob("_pydantic_core*.so")]
    assert binaries and all("cpython-313-aarch64-linux-gnu" in name for name in binaries), binaries

    for logical_id in _functions(template):
        props = template.function_properties(logical_id)
        module = props["Handler"].rsplit(".", 1)[0].replace(".", "/")
        artifact = build_dir / logical_id
        assert (artifact / f"{module}.py").is_file(), f"{logical_id}: {module}.py missing from {artifact}"
        # The layer owns the shared dependencies: a function that bundles its own copy would shadow it.
        assert not (artifact / "fastapi").exists(), f"{logical_id} bundles FastAPI instead of using the layer"
    assert repo_build_existed or not (ROOT / ".aws-sam").exists(), "sam build wrote into the repository's .aws-sam/"


# ---------------------------------------------------------------------------------------------- state


def test_tables_are_protected_and_on_demand(template: Template) -> None:
    tables = template.of_type("AWS::DynamoDB::Table")
    assert tables, "the template has no DynamoDB tables"
    for logical_id, table in tables.items():
        props = table["Properties"]
        assert props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") is True, logical_id
        assert props.get("DeletionProtectionEnabled") is True, logical_id
        assert table.get("DeletionPolicy") == "Retain", logical_id
        assert table.get("UpdateReplacePolicy") == "Retain", logical_id
        assert props.get("BillingMode") == "PAY_PER_REQUEST", logical_id
        assert "TableName" not in props, f"{logical_id}: a fixed TableName blocks replacement and a second stack"


def test_every_table_is_backed_up_by_the_backup_plan(template: Template) -> None:
    """The selection takes DynamoDB tables by a tag; every table must carry it, so a new table is covered."""
    selections = template.of_type("AWS::Backup::BackupSelection")
    assert len(selections) == 1, f"expected one backup selection, found {sorted(selections)}"
    (selection,) = (s["Properties"] for s in selections.values())
    assert _ref_target(selection["BackupPlanId"]) in template.of_type("AWS::Backup::BackupPlan")
    chosen = selection["BackupSelection"]
    assert chosen["Resources"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/*"}
    ]
    (condition,) = chosen["Conditions"]["StringEquals"]
    tag_key = condition["ConditionKey"].removeprefix("aws:ResourceTag/")
    assert tag_key != condition["ConditionKey"] and condition["ConditionValue"] == {"Ref": "AWS::StackName"}
    tables = template.of_type("AWS::DynamoDB::Table")
    assert tables
    for logical_id, table in tables.items():
        tags = {tag["Key"]: tag["Value"] for tag in table["Properties"].get("Tags", [])}
        assert tags.get(tag_key) == {"Ref": "AWS::StackName"}, (
            f"{logical_id} lacks the tag {tag_key}: !Ref AWS::StackName, so AWS Backup would not back it up"
        )


def test_backups_are_kept_35_days_daily_and_a_year_monthly_in_an_encrypted_vault(template: Template) -> None:
    (plan,) = template.of_type("AWS::Backup::BackupPlan").values()
    rules = plan["Properties"]["BackupPlan"]["BackupPlanRule"]
    kept = {rule["ScheduleExpression"]: rule["Lifecycle"]["DeleteAfterDays"] for rule in rules}
    assert kept == {"cron(0 3 * * ? *)": 35, "cron(0 4 1 * ? *)": 365}, kept
    vaults = template.of_type("AWS::Backup::BackupVault")
    for rule in rules:
        assert _ref_target(rule["TargetBackupVault"]) in vaults, rule["RuleName"]
        copy = rule["CopyActions"]["Fn::If"]  # a copy elsewhere only when a vault is given, kept as long
        assert copy[0] == "HasBackupCopy" and copy[1][0]["Lifecycle"] == rule["Lifecycle"], rule["RuleName"]
    for logical_id, vault in vaults.items():
        key = _ref_target(vault["Properties"]["EncryptionKeyArn"])
        assert template.resources[key]["Type"] == "AWS::KMS::Key", f"{logical_id} is not encrypted with our own key"
        assert template.resources[key]["Properties"]["EnableKeyRotation"] is True, key
        for retained in (logical_id, key):
            assert template.resources[retained].get("DeletionPolicy") == "Retain", f"{retained} is not retained"
        lock = vault["Properties"]["LockConfiguration"]["Fn::If"]
        assert lock[0] == "HasBackupVaultLock" and lock[1]["MinRetentionDays"] <= min(kept.values()), lock
        assert lock[1]["MaxRetentionDays"] >= max(kept.values()), lock


def test_roles_attach_only_allowed_managed_policies(template: Template) -> None:
    roles = template.of_type("AWS::IAM::Role")
    for logical_id, role in roles.items():
        props = role["Properties"]
        services = {
            service
            for statement in props["AssumeRolePolicyDocument"]["Statement"]
            for service in _as_list(statement.get("Principal", {}).get("Service", []))
        }
        for arn in props.get("ManagedPolicyArns", []):
            text = arn["Fn::Sub"] if isinstance(arn, dict) else arn
            name = text.split(":policy/", 1)[1]
            assert name in ALLOWED_ROLE_MANAGED_POLICIES, f"{logical_id}: managed policy {name} is not allowed"
            assert services == {ALLOWED_ROLE_MANAGED_POLICIES[name]}, f"{logical_id}: {name} for {services}"


# ---------------------------------------------------------------------------------------------- IAM


def test_function_policy_templates_name_their_resources(template: Template) -> None:
    for logical_id in _functions(template) | template.of_type("AWS::Serverless::StateMachine"):
        props = template.data["Resources"][logical_id]["Properties"]
        assert "Role" not in props or "Policies" not in props, f"{logical_id}: Role and Policies together"
        for policy in _as_list(props.get("Policies", [])):
            if isinstance(policy, str):
                assert policy in ALLOWED_MANAGED_POLICIES, f"{logical_id}: broad managed policy {policy!r}"
                continue
            if "Statement" in policy:
                continue  # inline statements: checked below
            ((name, arguments),) = policy.items()
            if not arguments:
                assert name in PARAMETERLESS_POLICY_TEMPLATES, f"{logical_id}: {name} names no resource"
                continue
            for argument, value in arguments.items():
                assert value != "*" and not (isinstance(value, str) and "*" in value), (
                    f"{logical_id}: {name}.{argument} is a wildcard"
                )
                target = _ref_target(value)
                if target is not None:
                    assert target in template.data["Resources"] or target in template.data.get("Parameters", {}), (
                        f"{logical_id}: {name}.{argument} refers to unknown {target}"
                    )


def test_inline_statements_are_least_privilege(template: Template) -> None:
    statements = list(_policy_statements(template))
    assert statements, "no inline statements found: has the template's IAM moved somewhere this test misses?"
    for owner, statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        actions = [a.lower() for a in _as_list(statement.get("Action", [])) if isinstance(a, str)]
        assert "NotAction" not in statement and "NotResource" not in statement, f"{owner}: NotAction/NotResource"
        for action in actions:
            assert action != "*" and not action.endswith(":*"), f"{owner}: wildcard action {action}"
        for resource in _as_list(statement.get("Resource")):
            if resource == "*":
                assert set(actions) <= UNSCOPABLE_ACTIONS, f"{owner}: Resource '*' for {sorted(actions)}"
            elif isinstance(resource, str):
                assert not re.fullmatch(r"arn:[^:]+:[^:]+:[^:]*:[^:]*:\*", resource), f"{owner}: {resource}"
            else:
                assert _is_intrinsic(resource), f"{owner}: {resource!r}"
                target = _ref_target(resource)
                assert target is None or target in template.data["Resources"], f"{owner}: unknown resource {target}"


def test_event_source_mappings_are_explicit(template: Template) -> None:
    """SAM's SQS, DynamoDB and Kinesis events attach a managed policy whose Resource is "*" (every queue or
    stream in the account); explicit mappings plus inline statements naming the source keep it least-privilege."""
    for logical_id in _functions(template):
        for name, event in template.function_properties(logical_id).get("Events", {}).items():
            assert event["Type"] not in {"SQS", "DynamoDB", "Kinesis", "MSK", "MQ"}, (
                f"{logical_id}.{name}: use an AWS::Lambda::EventSourceMapping resource instead of a SAM "
                f"{event['Type']} event"
            )
    mappings = template.of_type("AWS::Lambda::EventSourceMapping")
    assert mappings, "no event source mappings: what consumes the fulfilment queue and the streams?"
    statements = list(_policy_statements(template))
    for logical_id, mapping in mappings.items():
        props = mapping["Properties"]
        function = _ref_target(props["FunctionName"])
        source = _ref_target(props["EventSourceArn"])
        assert function in template.data["Resources"] and source in template.data["Resources"], f"{logical_id}: {props}"
        assert props.get("FunctionResponseTypes") == ["ReportBatchItemFailures"], f"{logical_id}: partial failures"
        granted = [s for owner, s in statements if owner == function and source in json.dumps(s.get("Resource"))]
        assert granted, f"{logical_id}: {function} has no statement naming {source}"
        if template.data["Resources"][source]["Type"] == "AWS::SQS::Queue":
            timeout = int(template.function_properties(function).get("Timeout", 3))
            visibility = int(template.data["Resources"][source]["Properties"]["VisibilityTimeout"])
            assert visibility >= 6 * timeout, f"{source}: visibility {visibility}s < 6 x {function}'s {timeout}s"
            assert "RedrivePolicy" in template.data["Resources"][source]["Properties"], f"{source}: no DLQ"
        else:
            assert "OnFailure" in props.get("DestinationConfig", {}), f"{logical_id}: stream records need a DLQ"


def test_the_fulfilment_function_has_time_for_a_whole_batch(template: Template) -> None:
    """A timeout fails the whole batch, shipped messages included: the slowest batch must fit, and the handler
    leaves untried whatever might not (test_fulfilment.py)."""
    from storefront.fulfilment.carriers import HttpCarrier

    mapping = template.data["Resources"]["FulfilmentQueueMapping"]["Properties"]
    timeout = int(template.function_properties("FulfilmentFunction")["Timeout"])
    seconds_per_message = HttpCarrier("any", "https://carrier.example", str).longest_call_seconds + 2  # as app.py
    assert timeout >= int(mapping["BatchSize"]) * seconds_per_message, (timeout, mapping["BatchSize"])


# ---------------------------------------------------------------------------------------------- logs


def test_every_function_logs_to_its_own_group_with_retention(template: Template) -> None:
    groups = template.of_type("AWS::Logs::LogGroup")
    seen: dict[str, str] = {}
    for logical_id in _functions(template):
        props = template.function_properties(logical_id)
        target = _ref_target(props.get("LoggingConfig", {}).get("LogGroup"))
        assert target in groups, f"{logical_id}: LoggingConfig.LogGroup must !Ref an AWS::Logs::LogGroup"
        assert target not in seen, f"{logical_id} and {seen.get(target)} share the log group {target}"
        seen[target] = logical_id
    for logical_id, group in groups.items():
        assert group.get("Properties", {}).get("RetentionInDays") is not None, f"{logical_id} keeps logs forever"


def test_http_api_access_logs_have_retention(template: Template) -> None:
    groups = template.of_type("AWS::Logs::LogGroup")
    for logical_id, api in template.of_type("AWS::Serverless::HttpApi").items():
        target = _ref_target(api["Properties"].get("AccessLogSettings", {}).get("DestinationArn"))
        assert target in groups, f"{logical_id}: access logs must go to a log group of this template"


# ---------------------------------------------------------------------------------------------- runtime


def test_globals_pin_runtime_architecture_tracing_environment(template: Template) -> None:
    function_globals = template.data["Globals"]["Function"]
    assert function_globals["Runtime"] == RUNTIME
    assert function_globals["Architectures"] == ["arm64"]
    assert function_globals["Tracing"] == "Active"
    assert function_globals["Environment"]["Variables"], "Globals.Function.Environment.Variables is empty"
    for logical_id, function in _functions(template).items():
        for key in ("Runtime", "Architectures", "Tracing"):
            assert key not in function["Properties"], f"{logical_id} overrides Globals.Function.{key}"


def test_layer_is_built_for_the_runtime(template: Template) -> None:
    layers = template.of_type("AWS::Serverless::LayerVersion")
    assert "StorefrontLayer" in layers
    for logical_id, layer in layers.items():
        assert layer.get("Metadata", {}).get("BuildMethod") == RUNTIME, logical_id
        assert layer.get("Metadata", {}).get("BuildArchitecture") == "arm64", logical_id
        assert layer["Properties"].get("CompatibleRuntimes") == [RUNTIME], logical_id
        assert layer["Properties"].get("CompatibleArchitectures") == ["arm64"], logical_id
    for logical_id in _functions(template):
        layers_used = [_ref_target(x) for x in template.function_properties(logical_id).get("Layers", [])]
        assert "StorefrontLayer" in layers_used, f"{logical_id} does not use the storefront layer"


# ---------------------------------------------------------------------------------------------- secrets


def test_no_secret_values_in_the_template(template: Template) -> None:
    for name, spec in template.data.get("Parameters", {}).items():
        if SECRET_WORDS.search(name) or SECRET_WORDS.search(str(spec.get("Description", ""))):
            assert "Default" not in spec, f"parameter {name} has a default value: secrets never live in the repo"
            assert spec.get("NoEcho") is True, f"parameter {name} looks secret but is not NoEcho"
    for path, text in _strings(template.data):
        for pattern in SECRET_PATTERNS:
            assert not pattern.search(text), f"{path} holds something that looks like a credential"
        if path.endswith(".SecretString"):
            raise AssertionError(f"{path} is a literal secret value; generate it or resolve it at deploy time")
    for logical_id, secret in template.of_type("AWS::SecretsManager::Secret").items():
        value = secret["Properties"].get("SecretString")
        assert value is None or _is_intrinsic(value), f"{logical_id}: literal SecretString"
    for logical_id in _functions(template):
        variables = template.function_properties(logical_id).get("Environment", {}).get("Variables", {})
        for name, value in variables.items():
            if SECRET_WORDS.search(name):
                assert _is_intrinsic(value), f"{logical_id}: {name} must point at a secret (!Ref), not hold one"


# ---------------------------------------------------------------------------------------------- CORS


def test_cors_follows_the_api_contract(template: Template) -> None:
    apis = template.of_type("AWS::Serverless::HttpApi")
    assert apis, "no HttpApi in the template"
    parameters = template.data.get("Parameters", {})
    for logical_id, api in apis.items():
        cors = api["Properties"]["CorsConfiguration"]
        origins = _ref_target(cors["AllowOrigins"])
        assert origins in parameters, f"{logical_id}: AllowOrigins must come from a parameter, not be hard-coded"
        assert parameters[origins]["Type"] == "CommaDelimitedList"
        assert "*" not in str(parameters[origins].get("Default", "")).split(","), "wildcard origin by default"
        allowed = {h.lower() for h in cors["AllowHeaders"]}
        exposed = {h.lower() for h in cors["ExposeHeaders"]}
        assert allowed >= CORS_ALLOW_HEADERS, f"{logical_id}: missing {sorted(CORS_ALLOW_HEADERS - allowed)}"
        assert exposed >= CORS_EXPOSE_HEADERS, f"{logical_id}: missing {sorted(CORS_EXPOSE_HEADERS - exposed)}"
        assert "OPTIONS" in {m.upper() for m in cors.get("AllowMethods", [])} or "*" in cors.get("AllowMethods", [])
        # Every routed method, and PATCH, which the admin API's contract uses (PATCH /admin/inventory/{sku}).
        assert {route.method for route in template.routes()} | {"PATCH"} <= {m.upper() for m in cors["AllowMethods"]}


# ---------------------------------------------------------------------------------------------- admin sign-in


def test_admin_routes_and_only_they_sit_behind_the_jwt_authorizer(template: Template) -> None:
    auth = template.resources["HttpApi"]["Properties"]["Auth"]
    assert set(auth) == {"Authorizers"}, "no DefaultAuthorizer: the shop's routes stay public"
    admin_jwt = auth["Authorizers"]["AdminJwt"]
    assert admin_jwt["IdentitySource"] == "$request.header.Authorization"
    assert admin_jwt["JwtConfiguration"] == {
        "issuer": {"Fn::Sub": "https://cognito-idp.${AWS::Region}.amazonaws.com/${AdminUserPool}"},
        "audience": [{"Ref": "AdminUserPoolClient"}],
    }
    routes = template.routes()
    assert any(route.path.startswith("/admin/") for route in routes)
    for route in routes:
        expected = "AdminJwt" if route.path.startswith("/admin/") else None
        assert route.authorizer == expected, f"{route.route_key} has authorizer {route.authorizer}"


def test_the_admin_user_pool_and_client_are_locked_down(template: Template) -> None:
    pool = template.resources["AdminUserPool"]
    assert (pool.get("DeletionPolicy"), pool.get("UpdateReplacePolicy")) == ("Retain", "Retain")
    props = pool["Properties"]
    assert props["DeletionProtection"] == "ACTIVE"
    assert props["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True, "no self sign-up"
    assert props["UsernameAttributes"] == ["email"]
    password = props["Policies"]["PasswordPolicy"]
    assert password["MinimumLength"] >= 12
    assert all(password[f"Require{kind}"] is True for kind in ("Uppercase", "Lowercase", "Numbers", "Symbols"))
    assert password["TemporaryPasswordValidityDays"] <= 7
    assert props["MfaConfiguration"] in {"OPTIONAL", "ON"} and "SOFTWARE_TOKEN_MFA" in props["EnabledMfas"]
    assert props["AccountRecoverySetting"]["RecoveryMechanisms"] == [{"Name": "verified_email", "Priority": 1}]

    client = template.resources["AdminUserPoolClient"]["Properties"]
    assert client["UserPoolId"] == {"Ref": "AdminUserPool"}
    assert client["GenerateSecret"] is False, "the admin page is static JavaScript: a secret would be public"
    assert set(client["ExplicitAuthFlows"]) == {"ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"}
    assert client["PreventUserExistenceErrors"] == "ENABLED"
    hours = {"hours": 1, "minutes": 1 / 60, "days": 24}
    units = client["TokenValidityUnits"]
    assert client["AccessTokenValidity"] * hours[units["AccessToken"]] == 1
    assert client["IdTokenValidity"] * hours[units["IdToken"]] == 1
    assert 1 < client["RefreshTokenValidity"] * hours[units["RefreshToken"]] <= 24

    groups = template.of_type("AWS::Cognito::UserPoolGroup").values()
    assert {g["Properties"]["GroupName"] for g in groups} == {"admin", "staff"}
    assert all(g["Properties"]["UserPoolId"] == {"Ref": "AdminUserPool"} for g in groups)


# ---------------------------------------------------------------------------------------------- configuration


def _settings_classes() -> dict[str, set[str]]:
    """Settings class name -> the environment variable names (pydantic aliases) it reads."""
    from storefront import config

    return {
        name: {field.alias or field_name.upper() for field_name, field in cls.model_fields.items()}
        for name, cls in vars(config).items()
        if isinstance(cls, type) and issubclass(cls, config._EnvSettings) and not name.startswith("_")
    }


def _settings_imported_by(app_py: Path) -> set[str]:
    """The settings classes a handler module reads: those it imports, and EdgeSettings, which create_app reads."""
    tree = ast.parse(app_py.read_text())
    imported = {
        (node.module, alias.name) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names
    }
    edge = {"EdgeSettings"} if ("storefront.http", "create_app") in imported else set()
    return {name for module, name in imported if module == "storefront.config"} | edge


def test_every_settings_variable_is_set_for_its_function(template: Template) -> None:
    settings = _settings_classes()
    assert "CatalogSettings" in settings
    claimed: set[str] = set()
    for logical_id in _functions(template):
        props = template.function_properties(logical_id)
        variables = set(props.get("Environment", {}).get("Variables", {}))
        module = props["Handler"].rsplit(".", 1)[0].replace(".", "/")
        app_py = ROOT / props["CodeUri"] / f"{module}.py"
        # CatalogFunction <-> CatalogSettings by name, plus whatever settings its handler module imports.
        by_name = {f"{logical_id.removesuffix('Function')}Settings"} & set(settings)
        used = by_name | (_settings_imported_by(app_py) & set(settings))
        claimed |= used
        for cls in used:
            missing = settings[cls] - variables
            assert not missing, f"{logical_id} reads {cls} but the template does not set {sorted(missing)}"
    unclaimed = set(settings) - claimed
    assert not unclaimed, f"settings classes no function uses (renamed function?): {sorted(unclaimed)}"


# ---------------------------------------------------------------------------------------------- samconfig


def _overrides(text: str | list[str]) -> dict[str, str]:
    """samconfig's parameter_overrides (`Key=Value Key2="a b"` or a list of such) as a dict."""
    pairs = shlex.split(text) if isinstance(text, str) else [p for item in text for p in shlex.split(item)]
    return dict(pair.split("=", 1) for pair in pairs)


def test_samconfig_has_dev_and_prod_deploy_environments(template: Template) -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    parameters = set(template.data.get("Parameters", {}))
    stacks = {}
    for env in ("dev", "prod"):
        assert env in config, f"samconfig.toml has no [{env}] environment"
        deploy = config[env]["deploy"]["parameters"]
        stack = deploy.get("stack_name") or config[env].get("global", {}).get("parameters", {}).get("stack_name")
        assert stack, f"[{env}] has no stack_name"
        stacks[env] = stack
        overrides = _overrides(deploy["parameter_overrides"])
        assert overrides.get("Stage") == env, f"[{env}] deploys Stage={overrides.get('Stage')}"
        assert set(overrides) <= parameters, (
            f"[{env}] overrides unknown parameters {sorted(set(overrides) - parameters)}"
        )
        assert "CAPABILITY_IAM" in deploy.get("capabilities", ""), f"[{env}] cannot create the functions' roles"
    assert stacks["dev"] != stacks["prod"], "dev and prod would deploy to the same stack"
    prod = _overrides(config["prod"]["deploy"]["parameters"]["parameter_overrides"])
    assert "localhost" not in prod.get("AllowedOrigins", ""), "prod must not allow localhost origins"


# ---------------------------------------------------------------------------------------------- customer emails


def test_the_notifications_rule_subscribes_to_exactly_the_events_that_send_an_email(template: Template) -> None:
    from storefront.notifications.models import EMAIL_FOR_EVENT

    rule = template.data["Resources"]["NotificationsRule"]["Properties"]
    assert _ref_target(rule["EventBusName"]) == "IntegrationEventBus"
    assert rule["EventPattern"]["source"] == ["storefront"]
    assert sorted(rule["EventPattern"]["detail-type"]) == sorted(EMAIL_FOR_EVENT)
    feedback = template.data["Resources"]["EmailFeedbackRule"]["Properties"]
    assert "EventBusName" not in feedback, "SES publishes to the default bus only"
    assert feedback["EventPattern"]["detail"]["mail"]["tags"]["ses:configuration-set"] == [
        {"Ref": "NotificationsConfigurationSet"}
    ], "only our configuration set's feedback"
    for properties in (rule, feedback):
        (target,) = properties["Targets"]
        assert _ref_target(target["Arn"]) == "NotificationsQueue"
        assert _ref_target(target["DeadLetterConfig"]["Arn"]) == "NotificationsDeadLetterQueue"


def test_the_notifications_queue_timing_fits_the_function_and_the_claim(template: Template) -> None:
    """Visibility timeout = 6 x the function's timeout (Lambda's advice); the claim on an event's email outlives
    an invocation (a live one never loses it) and expires before the redelivery (a crashed one's is taken over)."""
    queue = template.data["Resources"]["NotificationsQueue"]["Properties"]
    function = template.function_properties("NotificationsFunction")
    timeout = int(function["Timeout"])
    lock = int(function["Environment"]["Variables"]["EMAIL_CLAIM_LOCK_SECONDS"])
    assert int(queue["VisibilityTimeout"]) == 6 * timeout
    assert timeout < lock < int(queue["VisibilityTimeout"])
    assert _ref_target(queue["RedrivePolicy"]["deadLetterTargetArn"]) == "NotificationsDeadLetterQueue"
    assert queue.get("SqsManagedSseEnabled") is True
    assert template.data["Resources"]["NotificationsDeadLetterQueue"]["Properties"].get("SqsManagedSseEnabled") is True
    # The archive keeps events 90 days for replay: the record of a sent email must outlive that.
    archive_days = int(template.data["Resources"]["IntegrationEventsArchive"]["Properties"]["RetentionDays"])
    assert int(function["Environment"]["Variables"]["EMAIL_RECORD_TTL_DAYS"]) >= archive_days


def test_the_function_paces_itself_for_the_mappings_concurrency(template: Template) -> None:
    mapping = template.data["Resources"]["NotificationsQueueMapping"]["Properties"]
    variables = template.function_properties("NotificationsFunction")["Environment"]["Variables"]
    assert int(variables["EMAIL_SENDERS"]) == int(mapping["ScalingConfig"]["MaximumConcurrency"])
    assert _ref_target(variables["EMAIL_SEND_RATE"]) == "EmailSendRate"


def test_only_the_notification_rules_may_send_to_the_notification_queues(template: Template) -> None:
    policy = template.data["Resources"]["NotificationsQueuePolicy"]["Properties"]
    assert {_ref_target(q) for q in policy["Queues"]} == {"NotificationsQueue", "NotificationsDeadLetterQueue"}
    for statement in policy["PolicyDocument"]["Statement"]:
        assert statement["Effect"] == "Allow"
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert _as_list(statement["Action"]) == ["sqs:SendMessage"]
        assert {_ref_target(r) for r in _as_list(statement["Resource"])} <= {
            "NotificationsQueue",
            "NotificationsDeadLetterQueue",
        }
        sources = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
        assert {_ref_target(s) for s in sources} == {"NotificationsRule", "EmailFeedbackRule"}


def test_only_the_notifications_function_sends_email_from_the_stacks_identity(template: Template) -> None:
    statements = [
        (owner, s)
        for owner, s in _policy_statements(template)
        if any(str(a).lower().startswith("ses:") for a in _as_list(s.get("Action", [])))
    ]
    assert [owner for owner, _ in statements] == ["NotificationsFunction"]
    ((_, statement),) = statements
    assert _as_list(statement["Action"]) == ["ses:SendEmail"]
    resources = [r["Fn::Sub"] for r in statement["Resource"]]
    assert [r.rsplit(":", 1)[1] for r in resources] == [
        "identity/${EmailIdentity}",
        "configuration-set/${NotificationsConfigurationSet}",
    ]
    # The From address is built at the verified domain: a From elsewhere could never be sent.
    assert statement["Condition"] == {
        "StringEquals": {"ses:FromAddress": {"Fn::Sub": "${EmailFromLocalPart}@${EmailDomain}"}}
    }
    identity = template.data["Resources"]["EmailIdentity"]["Properties"]
    assert identity["DkimAttributes"] == {"SigningEnabled": True}
    assert _ref_target(identity["EmailIdentity"]) == "EmailDomain"
    destination = template.data["Resources"]["EmailFeedbackDestination"]["Properties"]["EventDestination"]
    assert sorted(destination["MatchingEventTypes"]) == ["bounce", "complaint"] and destination["Enabled"] is True


# ---------------------------------------------------------------------------------------------- the admin API


def _targets_of(resource: Any) -> set[str]:
    """The logical ids a statement's Resource names (`!GetAtt X.Arn`, `!Ref X`, `!Sub "${X.Arn}/..."`)."""
    found = set()
    for value in _as_list(resource):
        target = _ref_target(value)
        if target is None and isinstance(value, dict) and "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            found |= {name.split(".")[0] for name in re.findall(r"\$\{([^}]+)\}", text) if not name.startswith("AWS::")}
        elif target is not None:
            found.add(target)
    return found


def _grants(template: Template, target: str) -> dict[str, set[str]]:
    """Per owner, the actions its statements allow on `target` (lower case)."""
    grants: dict[str, set[str]] = {}
    for owner, statement in _policy_statements(template):
        if statement.get("Effect") == "Allow" and target in _targets_of(statement.get("Resource")):
            grants.setdefault(owner, set()).update(a.lower() for a in _as_list(statement["Action"]))
    return grants


def test_the_images_bucket_is_private_encrypted_and_tls_only(template: Template) -> None:
    bucket = template.resources["ProductImagesBucket"]
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")
    props = bucket["Properties"]
    assert all(
        props["PublicAccessBlockConfiguration"][k] is True
        for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    )
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    [rule] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    [cors] = props["CorsConfiguration"]["CorsRules"]
    assert cors["AllowedMethods"] == ["POST"] and cors["AllowedOrigins"] == {"Ref": "AllowedOrigins"}
    statements = template.resources["ProductImagesBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    # The edge's read is an Fn::If on EdgeOn (tests/integration/test_template_edge.py): both branches are held here.
    policy = [
        branch
        for s in statements
        for branch in (s["Fn::If"][1:] if "Fn::If" in s else [s])
        if branch != {"Ref": "AWS::NoValue"}
    ]
    assert {
        "Sid": "TlsOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [{"Fn::GetAtt": ["ProductImagesBucket", "Arn"]}, {"Fn::Sub": "${ProductImagesBucket.Arn}/*"}],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    } in policy
    assert not [s for s in policy if s["Effect"] == "Allow" and s.get("Principal") == "*"], "a public read"


def test_only_the_admin_function_signs_image_uploads_and_only_puts_images(template: Template) -> None:
    assert _grants(template, "ProductImagesBucket") == {"AdminFunction": {"s3:putobject"}}
    [statement] = [
        s
        for owner, s in _policy_statements(template)
        if owner == "AdminFunction" and "ProductImagesBucket" in _targets_of(s.get("Resource"))
    ]
    assert statement["Resource"] == {"Fn::Sub": "${ProductImagesBucket.Arn}/images/*"}


def test_audit_entries_are_only_ever_added(template: Template) -> None:
    grants = _grants(template, "AuditTable")
    assert grants == {
        "AdminFunction": {"dynamodb:putitem", "dynamodb:query"},
        "StockFunction": {"dynamodb:putitem"},
        "OrderAdminFunction": {"dynamodb:putitem"},
    }
    table = template.resources["AuditTable"]["Properties"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at_epoch", "Enabled": True}
    retention = template.data["Parameters"]["AuditRetentionDays"]
    assert retention["MinValue"] >= 365, "PCI DSS 10.5.1: a year of audit history at least"


def test_the_admin_function_changes_stock_only_through_the_stock_function(template: Template) -> None:
    assert _grants(template, "InventoryTable")["AdminFunction"] == {
        "dynamodb:getitem",
        "dynamodb:batchgetitem",
        "dynamodb:query",
    }
    assert _grants(template, "StockFunction") == {"AdminFunction": {"lambda:invokefunction"}}
    writers = {
        owner
        for owner, actions in _grants(template, "InventoryTable").items()
        if actions & {"dynamodb:putitem", "dynamodb:updateitem", "dynamodb:deleteitem"}
    }
    assert writers == {"StockFunction"}


def test_the_admin_function_writes_the_orders_table_only_for_idempotency_keys(template: Template) -> None:
    for owner, statement in _policy_statements(template):
        if owner != "AdminFunction" or "OrdersTable" not in _targets_of(statement.get("Resource")):
            continue
        writes = {a.lower() for a in _as_list(statement["Action"])} & {
            "dynamodb:putitem",
            "dynamodb:updateitem",
            "dynamodb:deleteitem",
        }
        if writes:
            assert statement["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["IDEMPOTENCY#*"]}}


# ---------------------------------------------------------------------------------------------- cold starts

# The functions a shopper waits on at a cold start (docs/architecture.md, "Cold starts" says why these and no others).
SHOPPER_WAITS_ON = {"CatalogFunction", "CartFunction", "CheckoutFunction", "PaymentTasksFunction"}


def test_every_function_is_called_through_its_alias(template: Template) -> None:
    """SnapStart and provisioned concurrency exist only on published versions: the workflow's tasks, the event source
    mappings and the functions that invoke one another call the AutoPublishAlias (SAM points the API's routes and
    the schedules at it by itself). A `!Ref Function` or `!GetAtt Function.Arn` would call $LATEST."""
    assert template.data["Globals"]["Function"]["AutoPublishAlias"] == "live"
    functions = set(_functions(template))
    resources = template.data["Resources"]
    callers = {
        f"{lid}.DefinitionSubstitutions": props.get("DefinitionSubstitutions", {})
        for lid, r in resources.items()
        if r["Type"] == "AWS::Serverless::StateMachine"
        for props in [r["Properties"]]
    }
    callers |= {
        f"{lid}.FunctionName": {"FunctionName": r["Properties"]["FunctionName"]}
        for lid, r in resources.items()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
    }
    callers |= {
        f"{lid}.Environment": r["Properties"].get("Environment", {}).get("Variables", {})
        for lid, r in _functions(template).items()
    }
    checked = 0
    for where, values in callers.items():
        for name, value in values.items():
            target = _ref_target(value)
            if target in functions:
                checked += 1
                assert value == {"Ref": f"{target}.Alias"}, f"{where}: {name} calls {value}, not {target}'s alias"
    assert checked >= 10  # the workflow's three, the four mappings, the functions that invoke another


def test_the_functions_a_shopper_waits_on_start_from_snapstart_or_provisioned_concurrency(template: Template) -> None:
    for logical_id, function in _functions(template).items():
        props = function["Properties"]
        if logical_id not in SHOPPER_WAITS_ON:
            assert "SnapStart" not in props and "ProvisionedConcurrencyConfig" not in props, logical_id
            continue
        # Lambda refuses SnapStart with provisioned concurrency: exactly one of them, by the parameter.
        assert props["SnapStart"] == {
            "Fn::If": ["HasProvisionedConcurrency", {"Ref": "AWS::NoValue"}, {"ApplyOn": "PublishedVersions"}]
        }, logical_id
        assert props["ProvisionedConcurrencyConfig"] == {
            "Fn::If": [
                "HasProvisionedConcurrency",
                {"ProvisionedConcurrentExecutions": {"Ref": "ProvisionedConcurrency"}},
                {"Ref": "AWS::NoValue"},
            ]
        }, logical_id
    assert template.data["Conditions"]["HasProvisionedConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ProvisionedConcurrency"}, 0]}]
    }
    assert template.data["Parameters"]["ProvisionedConcurrency"]["Default"] == 0  # SnapStart unless asked
