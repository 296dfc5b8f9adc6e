"""Restore the stack's DynamoDB tables into new tables, to one instant or from backups, and check what came back.

    python -m ops.restore --to 2026-11-30T14:05:00Z --stack storefront-prod [--suffix S] [--dry-run] [--copy-back]
    python -m ops.restore --to latest --tables NAME[,NAME...] ...                 # the latest restorable instant
    python -m ops.restore --backup-arn ARN[,ARN...] [--stack NAME] ...           # DynamoDB or AWS Backup ARNs
    ... [--region R] [--endpoint-url URL]                                          # the local cloud: its moto URL

--to restores every table of the stack (the DynamoDB tables tagged storefront:stack=<stack>) to that instant with
point-in-time recovery; --backup-arn restores each backup: a DynamoDB backup (arn:aws:dynamodb:...:backup/...) or an
AWS Backup recovery point (arn:aws:backup:...:recovery-point:..., what the stack's backup plan makes), the latter as
an AWS Backup restore job running as the stack's BackupRole. Each restore makes a NEW table, <source>-<suffix>.

A restore keeps the items, indexes and encryption, and drops the rest (DynamoDB's RestoreTableToPointInTime and
RestoreTableFromBackup documentation): so this re-applies what template.yaml declares for the table, found by its
logical id in the table's name (CloudFormation names tables <stack>-<LogicalId>-<random>, the local cloud
<stack>-<LogicalId>): billing mode, TTL, stream, point-in-time recovery, deletion protection and tags, plus
storefront:restored-from and storefront:restore-point, which keep restored tables out of --stack's tables.

Then it verifies the restored tables: every item counted; the inventory invariant (storefront.inventory.invariant);
orders against their reservation lines (storefront.orders.reservations_check), each check only where both of its
tables were restored. And it prints how to put the data back: --copy-back copies every item the live table lacks
from the restored table into it (with --overwrite, also items that differ), never deletes, then checks the live
tables the same way. Why copying back rather than pointing the stack at new tables: docs/operations.md.

--dry-run explains the restore (tables, sources, settings, checks) and changes nothing.
Exit code 0 when everything restored and verified, 1 otherwise.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "storefront"))  # the storefront package, as the tests and Lambda see it

from storefront.inventory.invariant import check_inventory  # noqa: E402
from storefront.orders.reservations_check import check_orders_against_reservations  # noqa: E402

from local_cloud.template import TEMPLATE_PATH, Template  # noqa: E402 - the template's loader and resolver

STACK_TAG = "storefront:stack"  # every table of a stack carries it (template.yaml); the backup plan selects by it
RESTORED_FROM_TAG = "storefront:restored-from"
RESTORE_POINT_TAG = "storefront:restore-point"
INVENTORY, ORDERS = "InventoryTable", "OrdersTable"
# A restore of a large table can take hours on AWS; locally it is immediate.
ACTIVE_POLL_SECONDS = 20
ACTIVE_POLL_ATTEMPTS = 1080  # 6 hours


class RestoreError(Exception):
    """The restore cannot go on; the message says why."""


# ---------------------------------------------------------------- what the template declares


@dataclass(frozen=True)
class TableSettings:
    """What template.yaml declares for one table and a restore does not carry over."""

    logical_id: str
    billing_mode: str
    ttl_attribute: str | None
    stream_view_type: str | None
    point_in_time_recovery: bool
    deletion_protection: bool
    tags: dict[str, str]

    def summary(self) -> str:
        parts = [self.billing_mode]
        parts += [f"TTL on {self.ttl_attribute}"] if self.ttl_attribute else []
        parts += [f"stream {self.stream_view_type}"] if self.stream_view_type else []
        parts += ["point-in-time recovery"] if self.point_in_time_recovery else []
        parts += ["deletion protection"] if self.deletion_protection else []
        kept = restored_tags(self.tags)
        parts += ["tags " + ", ".join(f"{k}={v}" for k, v in sorted(kept.items()))] if kept else []
        return "; ".join(parts)


def restored_tags(declared: dict[str, str]) -> dict[str, str]:
    """The template's tags a restored table gets: all but the stack's backup tag. The backup plan must not copy a
    restored working copy (with its personal data, under a possible compliance lock, out of reach of a later
    erasure): the live tables are the ones backed up."""
    return {k: v for k, v in declared.items() if k != STACK_TAG}


def template_settings(stack: str, template_path: Path = TEMPLATE_PATH) -> dict[str, TableSettings]:
    """Each table's settings by logical id, with the stack's name resolved in its tags."""
    template = Template.load(template_path, stack_name=stack)
    settings = {}
    for logical_id, table in template.of_type("AWS::DynamoDB::Table").items():
        props = template.resolve(table["Properties"])
        ttl = props.get("TimeToLiveSpecification", {})
        settings[logical_id] = TableSettings(
            logical_id=logical_id,
            billing_mode=props.get("BillingMode", "PROVISIONED"),
            ttl_attribute=ttl.get("AttributeName") if ttl.get("Enabled") else None,
            stream_view_type=props.get("StreamSpecification", {}).get("StreamViewType"),
            point_in_time_recovery=bool(
                props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled")
            ),
            deletion_protection=bool(props.get("DeletionProtectionEnabled")),
            tags={tag["Key"]: str(tag["Value"]) for tag in props.get("Tags", [])},
        )
    return settings


def parse_table_name(name: str, logical_ids: list[str]) -> tuple[str, str]:
    """(stack, logical id) of a table CloudFormation or the local cloud named."""
    for logical_id in logical_ids:
        if match := re.fullmatch(rf"(?P<stack>.+)-{re.escape(logical_id)}(-[A-Za-z0-9]+)?", name):
            return match["stack"], logical_id
    raise RestoreError(
        f"{name} is not named <stack>-<LogicalId>[-<random>] for a table of template.yaml ({', '.join(logical_ids)})"
    )


# ---------------------------------------------------------------- which tables, from where


@dataclass
class Restore:
    logical_id: str
    stack: str  # the source table's stack
    source_table: str  # the table restored; with a backup, the table it was taken of
    target_table: str
    backup_arn: str | None = None  # None: point in time
    restore_point: str = ""  # the instant, or when the backup was taken
    settings: TableSettings | None = None

    @property
    def source(self) -> str:
        if self.backup_arn is None:
            return f"{self.source_table} as it was at {self.restore_point} (point-in-time recovery)"
        kind = "AWS Backup recovery point" if is_recovery_point(self.backup_arn) else "DynamoDB backup"
        return f"{kind} {self.backup_arn} of {self.source_table}, taken {self.restore_point}"


def is_recovery_point(arn: str) -> bool:
    """An AWS Backup recovery point (restored by a restore job), not a DynamoDB backup."""
    return ":recovery-point:" in arn


def stack_tables(dynamodb: Any, stack: str) -> dict[str, str]:
    """Table name by logical id: the stack's tables (tagged storefront:stack=<stack>), restored ones excluded."""
    found: dict[str, str] = {}
    logical_ids = list(template_settings(stack))
    for page in dynamodb.get_paginator("list_tables").paginate():
        for name in page["TableNames"]:
            arn = dynamodb.describe_table(TableName=name)["Table"]["TableArn"]
            tags = {t["Key"]: t["Value"] for t in dynamodb.list_tags_of_resource(ResourceArn=arn).get("Tags", [])}
            if tags.get(STACK_TAG) == stack and RESTORED_FROM_TAG not in tags:
                found[parse_table_name(name, logical_ids)[1]] = name
    if not found:
        raise RestoreError(f"no table is tagged {STACK_TAG}={stack} in this account and region")
    return found


def plan_point_in_time(dynamodb: Any, tables: list[str], when: datetime | None, suffix: str) -> list[Restore]:
    """Every table to one instant: `when`, or (None) the latest instant ALL of them can be restored to (each
    table's latest restorable time differs by seconds; one instant keeps orders and stock consistent)."""
    windows = {}
    for name in tables:
        pitr = dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        recovery = pitr.get("PointInTimeRecoveryDescription", {})
        if recovery.get("PointInTimeRecoveryStatus") != "ENABLED":
            raise RestoreError(f"{name} has no point-in-time recovery to restore from")
        windows[name] = (recovery["EarliestRestorableDateTime"], recovery["LatestRestorableDateTime"])
    instant = when if when is not None else min(latest for _, latest in windows.values())
    restores = []
    for name, (earliest, latest) in windows.items():
        point = instant
        if when is None:
            # Only where a table's window is narrower than the tables' spread (moto's is the single instant "now")
            # does the common instant fall outside it; AWS keeps 35 days.
            point = min(max(instant, earliest), latest)
        if not earliest <= point <= latest:
            raise RestoreError(f"{name} can be restored to {_iso(earliest)} .. {_iso(latest)}, not {_iso(point)}")
        stack, logical_id = parse_table_name(name, _template_tables())
        restores.append(Restore(logical_id, stack, name, f"{name}-{suffix}", restore_point=_iso(point)))
    return restores


def plan_backups(dynamodb: Any, backup: Any, arns: list[str], suffix: str, vault: str | None) -> list[Restore]:
    restores = []
    for arn in arns:
        if is_recovery_point(arn):
            if vault is None:
                raise RestoreError(f"{arn} is an AWS Backup recovery point: give --vault (or --stack)")
            point = backup.describe_recovery_point(BackupVaultName=vault, RecoveryPointArn=arn)
            source, taken = point["ResourceArn"].split(":table/", 1)[1], point["CreationDate"]
        else:
            details = dynamodb.describe_backup(BackupArn=arn)["BackupDescription"]
            source = details["SourceTableDetails"]["TableName"]
            taken = details["BackupDetails"]["BackupCreationDateTime"]
        stack, logical_id = parse_table_name(source, _template_tables())
        restores.append(
            Restore(logical_id, stack, source, f"{source}-{suffix}", backup_arn=arn, restore_point=_iso(taken))
        )
    duplicates = [lid for lid, n in Counter(r.logical_id for r in restores).items() if n > 1]
    if duplicates:
        raise RestoreError(f"more than one backup of {', '.join(duplicates)}: give one per table")
    return restores


def _template_tables() -> list[str]:
    return list(Template.load(TEMPLATE_PATH).of_type("AWS::DynamoDB::Table"))


# ---------------------------------------------------------------- restoring


def start_restore(dynamodb: Any, backup: Any, restore: Restore, role_arn: str | None) -> None:
    assert restore.settings is not None
    # Restores keep the source's encryption and capacity unless told: these say what the template declares.
    overrides = {
        "BillingModeOverride": restore.settings.billing_mode,
        "SSESpecificationOverride": {"Enabled": True, "SSEType": "KMS"},
    }
    if restore.backup_arn is None:
        dynamodb.restore_table_to_point_in_time(
            SourceTableName=restore.source_table,
            TargetTableName=restore.target_table,
            RestoreDateTime=datetime.fromisoformat(restore.restore_point),
            **overrides,
        )
    elif is_recovery_point(restore.backup_arn):
        if role_arn is None:
            raise RestoreError(
                "an AWS Backup restore job needs a role: give --stack (its BackupRoleArn output) or --role-arn"
            )
        restore_recovery_point(backup, restore.backup_arn, restore.target_table, role_arn)
    else:
        dynamodb.restore_table_from_backup(
            TargetTableName=restore.target_table, BackupArn=restore.backup_arn, **overrides
        )


def restore_recovery_point(
    backup: Any, recovery_point_arn: str, target_table: str, role_arn: str, poll_seconds: float = ACTIVE_POLL_SECONDS
) -> str:
    """An AWS Backup restore job of a DynamoDB recovery point into a new table; waits for it; the table's ARN."""
    job = backup.start_restore_job(
        RecoveryPointArn=recovery_point_arn,
        IamRoleArn=role_arn,
        ResourceType="DynamoDB",
        Metadata={"targetTableName": target_table, "encryptionType": "Default"},
    )
    for _ in range(ACTIVE_POLL_ATTEMPTS):
        state = backup.describe_restore_job(RestoreJobId=job["RestoreJobId"])
        if state["Status"] == "COMPLETED":
            return str(state["CreatedResourceArn"])
        if state["Status"] in {"ABORTED", "FAILED"}:
            raise RestoreError(f"restore job {job['RestoreJobId']} {state['Status']}: {state.get('StatusMessage')}")
        time.sleep(poll_seconds)
    raise RestoreError(f"restore job {job['RestoreJobId']} still running; run again with the same --suffix later")


def wait_until_active(dynamodb: Any, table: str) -> None:
    dynamodb.get_waiter("table_exists").wait(
        TableName=table, WaiterConfig={"Delay": ACTIVE_POLL_SECONDS, "MaxAttempts": ACTIVE_POLL_ATTEMPTS}
    )
    for _ in range(ACTIVE_POLL_ATTEMPTS):  # exists is not enough: updates need ACTIVE
        if dynamodb.describe_table(TableName=table)["Table"]["TableStatus"] == "ACTIVE":
            return
        time.sleep(ACTIVE_POLL_SECONDS)
    raise RestoreError(f"{table} did not become ACTIVE")


def reapply_settings(dynamodb: Any, restore: Restore) -> list[str]:
    """Give the restored table what the template declares; what was applied, one phrase each. Settings already in
    place are left alone (DynamoDB refuses to enable TTL twice), so a second run finishes what a first began."""
    settings, table = restore.settings, restore.target_table
    assert settings is not None
    applied = []
    description = dynamodb.describe_table(TableName=table)["Table"]
    if description.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED") != settings.billing_mode:
        dynamodb.update_table(TableName=table, BillingMode=settings.billing_mode)
        wait_until_active(dynamodb, table)
        applied.append(f"billing mode {settings.billing_mode}")
    ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    if settings.ttl_attribute and ttl.get("TimeToLiveStatus") not in {"ENABLED", "ENABLING"}:
        dynamodb.update_time_to_live(
            TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": settings.ttl_attribute}
        )
        applied.append(f"TTL on {settings.ttl_attribute}")
    if settings.stream_view_type and not description.get("StreamSpecification", {}).get("StreamEnabled"):
        dynamodb.update_table(
            TableName=table, StreamSpecification={"StreamEnabled": True, "StreamViewType": settings.stream_view_type}
        )
        wait_until_active(dynamodb, table)
        applied.append(f"stream {settings.stream_view_type}")
    pitr = dynamodb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
    if (
        settings.point_in_time_recovery
        and pitr.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus") != "ENABLED"
    ):
        dynamodb.update_continuous_backups(
            TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
        applied.append("point-in-time recovery")
    if settings.deletion_protection and not description.get("DeletionProtectionEnabled"):
        dynamodb.update_table(TableName=table, DeletionProtectionEnabled=True)
        wait_until_active(dynamodb, table)
        applied.append("deletion protection")
    tags = {
        **restored_tags(settings.tags),
        RESTORED_FROM_TAG: restore.source_table,
        RESTORE_POINT_TAG: restore.restore_point,
    }
    dynamodb.tag_resource(
        ResourceArn=description["TableArn"], Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())]
    )
    applied.append(f"{len(tags)} tags")
    return applied


# ---------------------------------------------------------------- verifying


@dataclass
class Verification:
    counts: dict[str, int] = field(default_factory=dict)  # table -> items
    violations: list[str] = field(default_factory=list)
    in_flight: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)  # what was checked, one line each


def verify(dynamodb: Any, tables: dict[str, str]) -> Verification:
    """Count every item of the tables (by logical id), then check what their data must satisfy."""
    result = Verification()
    for table in tables.values():
        result.counts[table] = sum(
            page["Count"]
            for page in dynamodb.get_paginator("scan").paginate(TableName=table, Select="COUNT", ConsistentRead=True)
        )
    if INVENTORY in tables:
        violations = check_inventory(dynamodb, tables[INVENTORY])
        result.violations += violations
        result.checks.append(
            f"inventory invariant on {tables[INVENTORY]}: "
            f"{'holds' if not violations else f'{len(violations)} violation(s)'}"
        )
    if INVENTORY in tables and ORDERS in tables:
        report = check_orders_against_reservations(dynamodb, tables[ORDERS], tables[INVENTORY])
        result.violations += report.violations
        result.in_flight += report.in_flight
        result.checks.append(
            f"{report.orders} orders against {report.lines} reservation lines: "
            f"{len(report.violations)} violation(s), {len(report.in_flight)} in flight"
        )
    return result


def print_verification(result: Verification) -> None:
    for table, count in result.counts.items():
        print(f"  {table}: {count} items")
    for line in result.checks:
        print(f"  {line}")
    for line in result.violations:
        print(f"  VIOLATION {line}")
    for line in result.in_flight:
        print(f"  in flight {line}")


# ---------------------------------------------------------------- putting the data back


@dataclass
class CopyBack:
    copied: int = 0  # missing from the live table: written
    replaced: int = 0  # different in the live table: overwritten (--overwrite)
    kept: int = 0  # different in the live table: left as it is
    unchanged: int = 0


def copy_back(dynamodb: Any, restored: str, live: str, *, overwrite: bool) -> CopyBack:
    """Write the restored table's items into the live table: those it lacks, and with overwrite those that differ.
    Never deletes: items the live table gained since the restore point stay."""
    keys = [k["AttributeName"] for k in dynamodb.describe_table(TableName=live)["Table"]["KeySchema"]]
    result = CopyBack()
    for page in dynamodb.get_paginator("scan").paginate(TableName=restored, ConsistentRead=True):
        for item in page["Items"]:
            try:  # conditional: an item written meanwhile is never clobbered by accident
                dynamodb.put_item(
                    TableName=live,
                    Item=item,
                    ConditionExpression="attribute_not_exists(#k)",
                    ExpressionAttributeNames={"#k": keys[0]},
                )
                result.copied += 1
                continue
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
            current = dynamodb.get_item(TableName=live, Key={k: item[k] for k in keys}, ConsistentRead=True)["Item"]
            if current == item:
                result.unchanged += 1
            elif overwrite:
                dynamodb.put_item(TableName=live, Item=item)
                result.replaced += 1
            else:
                result.kept += 1
    return result


def pointing_steps(restores: list[Restore], live: dict[str, str], args: argparse.Namespace) -> list[str]:
    """What to run next, as commands that exist."""
    where = (f" --region {args.region}" if args.region else "") + (
        f" --endpoint-url {args.endpoint_url}" if args.endpoint_url else ""
    )
    source = f"--to {args.to}" if args.to else f"--backup-arn {args.backup_arn}"
    scope = f" --stack {args.stack}" if args.stack else f" --tables {args.tables}" if args.tables else ""
    steps = [
        f"Look at what came back: aws dynamodb scan --table-name {r.target_table} --max-items 20{where}"
        for r in restores
    ]
    if all(r.logical_id in live for r in restores):
        steps.append(
            f"Copy the missing items back into the live tables (add --overwrite to also replace items that "
            f"differ): python -m ops.restore {source}{scope} --suffix {args.suffix} --copy-back{where}"
        )
    else:
        steps.append(
            "Deploy the stack (sam deploy), then copy into its tables: the same command with "
            "--stack <stack> --copy-back"
        )
    steps.append(
        "When done, drop each restored table: aws dynamodb update-table --table-name <restored table> "
        f"--no-deletion-protection-enabled{where} && aws dynamodb delete-table --table-name "
        f"<restored table>{where}"
    )
    return steps


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.restore", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--to",
        metavar="TIME",
        help="restore to this instant (ISO 8601 with a time zone, or 'latest', each table's latest restorable instant)",
    )
    source.add_argument("--backup-arn", metavar="ARN[,ARN...]", help="restore these backups, one per table")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--stack", help="the stack whose tables are restored (--to) or copied back into")
    scope.add_argument("--tables", metavar="NAME[,NAME...]", help="these tables instead of a stack's (--to)")
    parser.add_argument("--suffix", help="restored tables are named <source>-<suffix> (default: restored-<time>)")
    parser.add_argument("--vault", help="the backup vault of --backup-arn recovery points (default: the stack's)")
    parser.add_argument("--role-arn", help="the role AWS Backup restore jobs run as (default: the stack's BackupRole)")
    parser.add_argument("--copy-back", action="store_true", help="then copy the restored items into the live tables")
    parser.add_argument("--overwrite", action="store_true", help="with --copy-back: also replace items that differ")
    parser.add_argument("--dry-run", action="store_true", help="explain the restore; change nothing")
    parser.add_argument("--region")
    parser.add_argument("--endpoint-url", help="another AWS endpoint, e.g. the local cloud's")
    args = parser.parse_args(argv)
    if args.to and not (args.stack or args.tables):
        parser.error("--to needs --stack or --tables")
    if args.overwrite and not args.copy_back:
        parser.error("--overwrite only goes with --copy-back")
    args.suffix = args.suffix or "restored-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", args.suffix):
        parser.error("--suffix: letters, digits, '_', '.' and '-' only, at most 40")

    session = boto3.Session(region_name=args.region)
    config = Config(retries={"mode": "standard"})

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=args.endpoint_url, config=config)

    try:
        return run(args, client("dynamodb"), client("backup"), client("cloudformation"))
    except RestoreError as error:
        print(f"restore: {error}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace, dynamodb: Any, backup: Any, cloudformation: Any) -> int:
    live = stack_tables(dynamodb, args.stack) if args.stack else {}
    if args.to:
        when = None if args.to == "latest" else parse_time(args.to)
        names = list(live.values()) if args.stack else [t.strip() for t in args.tables.split(",") if t.strip()]
        restores = plan_point_in_time(dynamodb, names, when, args.suffix)
    else:
        arns = [a.strip() for a in args.backup_arn.split(",") if a.strip()]
        vault = args.vault or (
            _stack_output(cloudformation, args.stack, "BackupVaultName")
            if args.stack and any(map(is_recovery_point, arns))
            else None
        )
        restores = plan_backups(dynamodb, backup, arns, args.suffix, vault)
    for restore in restores:  # restored tables take the settings of the stack they will serve
        restore.settings = template_settings(args.stack or restore.stack)[restore.logical_id]
    if not args.stack:  # without a stack, each table goes back where it came from
        existing = set(_all_tables(dynamodb))
        live = {r.logical_id: r.source_table for r in restores if r.source_table in existing}
    if args.copy_back:
        missing = [r.logical_id for r in restores if r.logical_id not in live]
        if missing:
            raise RestoreError(
                f"no live table for {', '.join(missing)} to copy back into: give the --stack to copy into"
            )

    print(("Would restore" if args.dry_run else "Restoring") + f" {len(restores)} table(s):")
    for restore in restores:
        assert restore.settings is not None
        print(
            f"- {restore.logical_id}: {restore.source}\n    into {restore.target_table}"
            f"\n    then re-apply {restore.settings.summary()}, "  # ends with the template's tags: two more
            f"{RESTORED_FROM_TAG}={restore.source_table}, {RESTORE_POINT_TAG}={restore.restore_point}"
        )
    restored = {r.logical_id: r.target_table for r in restores}
    print(
        "Checks: every item counted"
        + ("; the inventory invariant" if INVENTORY in restored else "")
        + ("; orders against reservation lines" if {INVENTORY, ORDERS} <= set(restored) else "")
    )
    if args.copy_back:
        print(
            "Copy back: "
            + ", ".join(f"{r.target_table} -> {live[r.logical_id]}" for r in restores)
            + (" (items missing or different)" if args.overwrite else " (items missing only)")
            + ", then the same checks on the live tables"
        )
    if args.dry_run:
        print("Dry run: nothing restored, nothing changed.")
        return 0

    role = args.role_arn or (
        _stack_output(cloudformation, args.stack, "BackupRoleArn")
        if args.stack and any(is_recovery_point(r.backup_arn or "") for r in restores)
        else None
    )
    existing = set(_all_tables(dynamodb))
    for restore in restores:
        if restore.target_table in existing:
            print(f"{restore.target_table} exists already: kept (a run with the same --suffix goes on from it)")
            continue
        start_restore(dynamodb, backup, restore, role)
    for restore in restores:
        wait_until_active(dynamodb, restore.target_table)
        print(f"{restore.target_table}: restored; re-applied " + ", ".join(reapply_settings(dynamodb, restore)))

    print("Verifying the restored tables:")
    result = verify(dynamodb, restored)
    print_verification(result)
    failed = bool(result.violations)
    if args.copy_back:
        for restore in restores:
            outcome = copy_back(dynamodb, restore.target_table, live[restore.logical_id], overwrite=args.overwrite)
            print(
                f"{live[restore.logical_id]}: {outcome.copied} items copied back, {outcome.replaced} replaced, "
                f"{outcome.kept} differing kept, {outcome.unchanged} unchanged"
            )
        print("Verifying the live tables:")
        after = verify(dynamodb, {lid: live[lid] for lid in restored})
        print_verification(after)
        failed = failed or bool(after.violations)
    else:
        print("Next:")
        for number, step in enumerate(pointing_steps(restores, live, args), start=1):
            print(f"  {number}. {step}")
    return 1 if failed else 0


def parse_time(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise RestoreError(f"--to {text!r} is not an ISO 8601 time") from error
    if when.tzinfo is None:
        raise RestoreError(f"--to {text!r} has no time zone: add Z for UTC, or an offset")
    return when.astimezone(UTC)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds")


def _all_tables(dynamodb: Any) -> list[str]:
    return [name for page in dynamodb.get_paginator("list_tables").paginate() for name in page["TableNames"]]


def _stack_output(cloudformation: Any, stack: str, key: str) -> str:
    try:
        outputs = cloudformation.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    except ClientError as error:
        raise RestoreError(f"cannot read stack {stack}'s outputs: {error}") from error
    for output in outputs:
        if output["OutputKey"] == key:
            return str(output["OutputValue"])
    raise RestoreError(f"stack {stack} has no output {key}")


if __name__ == "__main__":
    sys.exit(main())
