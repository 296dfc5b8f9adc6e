"""ops.restore's pieces that need no local cloud: table names, times, the template's settings, the command line, and
the AWS Backup restore job (moto has no AWS Backup recovery points, so that call sequence is checked against
botocore's Stubber, with the responses AWS Backup's API reference gives)."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from local_cloud.template import Template
from ops.restore import (
    Restore,
    RestoreError,
    main,
    parse_table_name,
    parse_time,
    plan_backups,
    restore_recovery_point,
    template_settings,
)

LOGICAL_IDS = ["CatalogTable", "InventoryTable", "CartTable", "OrdersTable"]
RECOVERY_POINT = "arn:aws:backup:eu-central-1:111122223333:recovery-point:8f4b2d6e-1c3a-4e5f-9a7b-0c1d2e3f4a5b"
ROLE = "arn:aws:iam::111122223333:role/storefront-prod-BackupRole-ABC"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("storefront-prod-OrdersTable-1XK2J3ABCDEF", ("storefront-prod", "OrdersTable")),  # CloudFormation's names
        ("storefront-local-CatalogTable", ("storefront-local", "CatalogTable")),  # the local cloud's
        ("shop-CartTable-Z9", ("shop", "CartTable")),
    ],
)
def test_a_table_name_gives_its_stack_and_logical_id(name: str, expected: tuple[str, str]) -> None:
    assert parse_table_name(name, LOGICAL_IDS) == expected


@pytest.mark.parametrize("name", ["orders", "storefront-OrdersTableV2", "storefront-prod-OrdersTable-ABC-restored-1"])
def test_a_table_the_template_does_not_name_is_refused(name: str) -> None:
    with pytest.raises(RestoreError, match="is not named"):
        parse_table_name(name, LOGICAL_IDS)


def test_the_settings_are_what_the_template_declares_for_each_table() -> None:
    settings = template_settings("shop")
    assert set(settings) == set(Template.load().of_type("AWS::DynamoDB::Table"))  # every table, new ones included
    orders = settings["OrdersTable"]
    assert (orders.billing_mode, orders.ttl_attribute, orders.stream_view_type) == (
        "PAY_PER_REQUEST",
        "expires_at_epoch",
        "NEW_AND_OLD_IMAGES",
    )
    assert orders.point_in_time_recovery and orders.deletion_protection
    assert orders.tags == {"storefront:stack": "shop"}
    catalog = settings["CatalogTable"]
    assert (catalog.ttl_attribute, catalog.stream_view_type) == (None, None)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--to", "2026-01-01T00:00:00Z"], "--to needs --stack or --tables"),
        (["--to", "latest", "--stack", "s", "--overwrite"], "--overwrite only goes with --copy-back"),
        (["--to", "latest", "--stack", "s", "--suffix", "a b"], "--suffix"),
        (["--stack", "s"], "one of the arguments --to --backup-arn is required"),
    ],
)
def test_the_command_line_refuses_what_cannot_work(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(arguments)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_a_time_needs_its_time_zone() -> None:
    with pytest.raises(RestoreError, match="has no time zone"):
        parse_time("2026-11-30T14:05:00")
    assert parse_time("2026-11-30T14:05:00+01:00") == datetime(2026, 11, 30, 13, 5, tzinfo=UTC)


# ---------------------------------------------------------------- AWS Backup recovery points


def _backup_client() -> tuple[object, Stubber]:
    client = boto3.client("backup", region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def test_a_recovery_point_is_planned_from_its_source_table() -> None:
    backup, stub = _backup_client()
    stub.add_response(
        "describe_recovery_point",
        {
            "RecoveryPointArn": RECOVERY_POINT,
            "BackupVaultName": "storefront-prod-backups",
            "ResourceArn": "arn:aws:dynamodb:eu-central-1:111122223333:table/storefront-prod-OrdersTable-1XK2J3ABCDEF",
            "ResourceType": "DynamoDB",
            "CreationDate": datetime(2026, 11, 30, 3, 0, tzinfo=UTC),
        },
        {"BackupVaultName": "storefront-prod-backups", "RecoveryPointArn": RECOVERY_POINT},
    )
    with stub:
        (restore,) = plan_backups(None, backup, [RECOVERY_POINT], "r1", "storefront-prod-backups")
    assert (restore.logical_id, restore.stack, restore.target_table, restore.restore_point) == (
        "OrdersTable",
        "storefront-prod",
        "storefront-prod-OrdersTable-1XK2J3ABCDEF-r1",
        "2026-11-30T03:00:00+00:00",
    )
    assert restore.source.startswith("AWS Backup recovery point " + RECOVERY_POINT)
    stub.assert_no_pending_responses()


def test_a_recovery_point_without_a_vault_is_refused() -> None:
    backup, _ = _backup_client()
    with pytest.raises(RestoreError, match="give --vault"):
        plan_backups(None, backup, [RECOVERY_POINT], "r1", None)


def test_a_recovery_point_is_restored_by_an_aws_backup_restore_job_as_the_backup_role() -> None:
    backup, stub = _backup_client()
    stub.add_response(
        "start_restore_job",
        {"RestoreJobId": "job-1"},
        {
            "RecoveryPointArn": RECOVERY_POINT,
            "IamRoleArn": ROLE,
            "ResourceType": "DynamoDB",
            "Metadata": {"targetTableName": "orders-r1", "encryptionType": "Default"},
        },
    )
    stub.add_response("describe_restore_job", {"RestoreJobId": "job-1", "Status": "RUNNING"}, {"RestoreJobId": "job-1"})
    created = "arn:aws:dynamodb:eu-central-1:111122223333:table/orders-r1"
    stub.add_response(
        "describe_restore_job",
        {"RestoreJobId": "job-1", "Status": "COMPLETED", "CreatedResourceArn": created},
        {"RestoreJobId": "job-1"},
    )
    with stub:
        assert restore_recovery_point(backup, RECOVERY_POINT, "orders-r1", ROLE, poll_seconds=0) == created
    stub.assert_no_pending_responses()


def test_a_failed_restore_job_stops_the_restore() -> None:
    backup, stub = _backup_client()
    stub.add_response("start_restore_job", {"RestoreJobId": "job-2"})
    stub.add_response(
        "describe_restore_job",
        {"RestoreJobId": "job-2", "Status": "FAILED", "StatusMessage": "Access denied to KMS key"},
    )
    with stub, pytest.raises(RestoreError, match="restore job job-2 FAILED: Access denied to KMS key"):
        restore_recovery_point(backup, RECOVERY_POINT, "orders-r1", ROLE, poll_seconds=0)


def test_a_restore_names_its_source() -> None:
    point_in_time = Restore(
        "OrdersTable", "shop", "shop-OrdersTable", "shop-OrdersTable-r", None, "2026-11-30T03:00:00+00:00"
    )
    assert point_in_time.source == "shop-OrdersTable as it was at 2026-11-30T03:00:00+00:00 (point-in-time recovery)"
