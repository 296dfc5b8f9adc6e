"""The restore drill, on the local cloud: orders and stock movements made through the API and the order workflow,
a backup of every table, damage (items deleted, items overwritten), `python -m ops.restore` from the backups, and
proof, item by item, that the restored tables hold the data as it was at the backup and that the inventory
invariant and the orders' reservations hold; then --copy-back puts the live tables right.

Measured here (docs/operations.md): moto's CreateBackup / RestoreTableFromBackup are true snapshots, while its
RestoreTableToPointInTime ignores the time and copies the table as it is now. So the drill restores backups, and the
point-in-time path is tested for its flow (the restore call, the re-applied settings, the checks) only: nothing
here claims that moto proves the point in time.
"""

from __future__ import annotations

import contextlib
import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from storefront.catalog.models import StoredProduct, StoredVariant
from storefront.catalog.repository import CatalogRepository
from storefront.inventory.invariant import check_inventory
from storefront.inventory.repository import InventoryRepository
from storefront.money import Money
from storefront.orders.reservations_check import check_orders_against_reservations

from local_cloud.cloud import LocalCloud
from local_cloud.gateway import Gateway
from ops.restore import RESTORE_POINT_TAG, RESTORED_FROM_TAG, STACK_TAG, main
from tests.tool_output import tool_stdout
from tests.waiting import wait_until

pytestmark = pytest.mark.slow("waits")

TABLES = ("CatalogTable", "InventoryTable", "OrdersTable", "CartTable")
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "Unter den Linden 1",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "DE",
}


class Drill:
    """A local cloud of its own (the drill damages its tables), with a shop's worth of orders in it."""

    def __init__(self, cloud: LocalCloud, api: httpx.Client) -> None:
        self.cloud, self.api = cloud, api
        self.dynamodb = cloud.client("dynamodb")
        self.stack = cloud.template.stack_name
        self.skus: list[str] = []

    def table(self, logical_id: str) -> str:
        return self.cloud.physical_id(logical_id)

    def stock(self, units: int) -> str:
        product_id = f"drill-{uuid.uuid4().hex[:8]}"
        sku = product_id.upper() + "-ONE"
        CatalogRepository(self.dynamodb, self.table("CatalogTable")).put_product(
            StoredProduct(
                id=product_id,
                name="Drill",
                description="",
                category="drill",
                images=[],
                variants=[StoredVariant(sku=sku, title="One", price=Money(amount=1500, currency="EUR"))],
            )
        )
        InventoryRepository(self.dynamodb, self.table("InventoryTable")).put_level(sku, units)
        self.skus.append(sku)
        return sku

    def order(self, *lines: tuple[str, int]) -> dict[str, Any]:
        """A cart filled through the cart API, then checked out: the order workflow reserves its stock."""
        cart = self.api.post("/carts", json={"currency": "EUR"}).json()
        for sku, quantity in lines:
            assert (
                self.api.post(f"/carts/{cart['id']}/items", json={"sku": sku, "quantity": quantity}).status_code == 200
            )
        assert (
            self.api.put(f"/carts/{cart['id']}/shipping", json={"country": "DE", "method": "standard"}).status_code
            == 200
        )
        response = self.api.post(
            "/checkout",
            json={"cart_id": cart["id"], "email": "ada@example.com", "shipping_address": ADDRESS},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        assert response.status_code in (200, 201, 202), response.text
        return self.wait_for(response.json()["id"], "awaiting_payment")

    def wait_for(self, order_id: str, *statuses: str) -> dict[str, Any]:
        return wait_until(
            lambda: (o := self.api.get(f"/orders/{order_id}").json())["status"] in statuses and o,
            f"order {order_id} to be {' or '.join(statuses)}",
            timeout=60,
        )

    def settled(self, order_id: str) -> None:
        """The order's workflow execution has ended: it writes nothing more."""
        sfn = self.cloud.client("stepfunctions")
        arn = self.cloud.physical_id("OrderWorkflow").replace(":stateMachine:", ":execution:") + f":{order_id}"
        wait_until(
            lambda: sfn.describe_execution(executionArn=arn)["status"] != "RUNNING",
            f"the execution of {order_id} to end",
            timeout=60,
        )

    def items(self, table: str) -> list[str]:
        """Every item of the table, each as canonical JSON, sorted: two tables hold the same data iff equal."""
        pages = self.dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
        return sorted(json.dumps(item, sort_keys=True) for page in pages for item in page["Items"])

    def snapshot(self) -> dict[str, list[str]]:
        return {logical_id: self.items(self.table(logical_id)) for logical_id in TABLES}

    def restore(self, *arguments: str) -> int:
        return main([*arguments, "--stack", self.stack, "--endpoint-url", self.cloud.endpoint_url])


@pytest.fixture(scope="module")
def drill() -> Iterator[Drill]:
    with LocalCloud(stack_name=f"drill-{uuid.uuid4().hex[:6]}") as cloud:
        gateway = Gateway(cloud, port=0).start()
        try:
            with httpx.Client(base_url=gateway.url, timeout=30) as api:
                drill = Drill(cloud, api)
                mug, shirt, lamp = drill.stock(10), drill.stock(5), drill.stock(3)
                paid = drill.order((mug, 2), (shirt, 1))
                assert cloud.payments.succeed(paid["payment"]["payment_id"]) == 200
                drill.wait_for(paid["id"], "fulfilling")
                declined = drill.order((lamp, 1), (mug, 1))
                for _ in range(3):  # MaxPaymentAttempts: the last decline ends the order
                    assert cloud.payments.fail(declined["payment"]["payment_id"]) == 200
                drill.wait_for(declined["id"], "payment_failed")
                drill.order((shirt, 2), (lamp, 2))  # stays awaiting payment: its stock stays reserved
                for order_id in (paid["id"], declined["id"]):
                    drill.settled(order_id)
                yield drill
        finally:
            gateway.stop()


@pytest.fixture(scope="module")
def backed_up(drill: Drill) -> tuple[dict[str, list[str]], list[str]]:
    """The data as it was, and a backup of each table taken then (DynamoDB on-demand backups)."""
    before = drill.snapshot()
    arns = [
        drill.dynamodb.create_backup(TableName=drill.table(t), BackupName=f"drill-{t}")["BackupDetails"]["BackupArn"]
        for t in TABLES
    ]
    assert drill.snapshot() == before, "the shop moved while the backups were taken: the drill needs it still"
    return before, arns


def damage(drill: Drill) -> None:
    """Someone deletes products and a stock level, and overwrites an order and a reservation line."""
    catalog, inventory, orders = (drill.table(t) for t in ("CatalogTable", "InventoryTable", "OrdersTable"))
    products = [json.loads(i) for i in drill.items(catalog) if json.loads(i)["pk"]["S"].startswith("PRODUCT#")]
    for product in products[:2]:
        drill.dynamodb.delete_item(TableName=catalog, Key={"pk": product["pk"], "sk": product["sk"]})
    drill.dynamodb.delete_item(TableName=inventory, Key={"pk": {"S": f"SKU#{drill.skus[0]}"}, "sk": {"S": "LEVEL"}})
    line = next(json.loads(i) for i in drill.items(inventory) if json.loads(i)["sk"]["S"].startswith("ORDER#"))
    drill.dynamodb.put_item(TableName=inventory, Item={**line, "quantity": {"N": "99"}})
    order = next(json.loads(i) for i in drill.items(orders) if json.loads(i)["pk"]["S"].startswith("ORDER#"))
    drill.dynamodb.put_item(
        TableName=orders, Item={**order, "status": {"S": "delivered"}, "email": {"S": "x@evil.example"}}
    )


@pytest.fixture(scope="module")
def restored(drill: Drill, backed_up: tuple[dict[str, list[str]], list[str]]) -> tuple[int, str]:
    """The tables damaged, then `python -m ops.restore --backup-arn ...`: its exit code and what it printed."""
    before, arns = backed_up
    damage(drill)
    assert check_inventory(drill.dynamodb, drill.table("InventoryTable")) != [], "the damage should show"
    assert drill.snapshot() != before
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = drill.restore("--backup-arn", ",".join(arns), "--suffix", "drill")
    return code, printed.getvalue()


def test_the_restored_tables_equal_the_data_at_the_backup_and_their_invariants_hold(
    drill: Drill, backed_up: tuple[dict[str, list[str]], list[str]], restored: tuple[int, str]
) -> None:
    before, _ = backed_up
    code, output = restored
    assert code == 0, output
    tables = {t: f"{drill.table(t)}-drill" for t in TABLES}
    for logical_id, table in tables.items():
        assert drill.items(table) == before[logical_id], f"{table} differs from {logical_id} at the backup"
    assert check_inventory(drill.dynamodb, tables["InventoryTable"]) == []
    report = check_orders_against_reservations(drill.dynamodb, tables["OrdersTable"], tables["InventoryTable"])
    assert (report.orders, report.violations, report.in_flight) == (3, [], [])
    assert f"inventory invariant on {tables['InventoryTable']}: holds" in output
    assert "3 orders against 6 reservation lines: 0 violation(s), 0 in flight" in output
    assert "--copy-back" in output  # the next step it prints


def test_a_restored_table_gets_back_what_a_restore_drops(drill: Drill, restored: tuple[int, str]) -> None:
    for logical_id in TABLES:
        table = f"{drill.table(logical_id)}-drill"
        description = drill.dynamodb.describe_table(TableName=table)["Table"]
        declared = drill.cloud.template.resources[logical_id]["Properties"]
        assert description["DeletionProtectionEnabled"] is True, table
        assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST", table
        pitr = drill.dynamodb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
        assert pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED", table
        ttl = drill.dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        if "TimeToLiveSpecification" in declared:
            assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == (
                "ENABLED",
                declared["TimeToLiveSpecification"]["AttributeName"],
            ), table
        else:
            assert ttl["TimeToLiveStatus"] == "DISABLED", table
        stream = description.get("StreamSpecification", {})
        if "StreamSpecification" in declared:
            assert stream == {
                "StreamEnabled": True,
                "StreamViewType": declared["StreamSpecification"]["StreamViewType"],
            }, table
        else:
            assert not stream.get("StreamEnabled"), table
        tags = {
            t["Key"]: t["Value"]
            for t in drill.dynamodb.list_tags_of_resource(ResourceArn=description["TableArn"])["Tags"]
        }
        # Not the stack's backup tag: the backup plan must not copy a restored working copy.
        assert STACK_TAG not in tags and tags[RESTORED_FROM_TAG] == drill.table(logical_id), tags
        assert tags[RESTORE_POINT_TAG].endswith("+00:00"), tags


def test_copy_back_restores_what_was_deleted_and_with_overwrite_what_was_overwritten(
    drill: Drill,
    backed_up: tuple[dict[str, list[str]], list[str]],
    restored: tuple[int, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    before, arns = backed_up
    assert drill.restore("--backup-arn", ",".join(arns), "--suffix", "drill", "--copy-back") == 1  # still broken
    output = tool_stdout(capsys)
    after_missing_only = drill.snapshot()
    assert after_missing_only["CatalogTable"] == before["CatalogTable"]  # the deleted products are back
    assert after_missing_only["OrdersTable"] != before["OrdersTable"]  # the overwritten order is kept as it is
    assert f"{drill.table('OrdersTable')}: 0 items copied back, 0 replaced, 1 differing kept" in output
    assert "exists already: kept" in output  # the restored tables of the same --suffix are reused,
    assert f"{drill.table('OrdersTable')}-drill: restored; re-applied 2 tags" in output  # their settings kept

    assert drill.restore("--backup-arn", ",".join(arns), "--suffix", "drill", "--copy-back", "--overwrite") == 0
    assert drill.snapshot() == before
    assert check_inventory(drill.dynamodb, drill.table("InventoryTable")) == []


# ---------------------------------------------------------------- point in time: the flow, not the instant


def test_point_in_time_restores_every_table_of_the_stack_and_reapplies_its_settings(
    drill: Drill, capsys: pytest.CaptureFixture[str]
) -> None:
    assert drill.restore("--to", "latest", "--suffix", "pitr") == 0, tool_stdout(capsys)
    output = tool_stdout(capsys)
    for logical_id in TABLES:
        table = f"{drill.table(logical_id)}-pitr"
        description = drill.dynamodb.describe_table(TableName=table)["Table"]
        # RestoreTableToPointInTime made it (a backup restore would name its SourceBackupArn).
        assert description["RestoreSummary"]["SourceTableArn"].endswith(f"/{drill.table(logical_id)}")
        assert "SourceBackupArn" not in description["RestoreSummary"]
        assert description["DeletionProtectionEnabled"] is True
        assert f"{table}: restored; re-applied" in output
    assert "inventory invariant on" in output and "orders against" in output


def test_one_table_to_a_point_in_time_then_back_into_itself(drill: Drill, capsys: pytest.CaptureFixture[str]) -> None:
    """The runbook "someone deleted the products": the catalog alone, by name; moto restores it as it is now, so
    copying back finds every item unchanged."""
    catalog = drill.table("CatalogTable")
    items = len(drill.items(catalog))
    assert (
        main(
            [
                "--to",
                "latest",
                "--tables",
                catalog,
                "--suffix",
                "one",
                "--copy-back",
                "--endpoint-url",
                drill.cloud.endpoint_url,
            ]
        )
        == 0
    )
    output = tool_stdout(capsys)
    assert output.startswith("Restoring 1 table(s):")
    assert f"{catalog}: 0 items copied back, 0 replaced, 0 differing kept, {items} unchanged" in output


def test_a_time_outside_the_recovery_window_is_refused_before_anything_is_restored(
    drill: Drill, capsys: pytest.CaptureFixture[str]
) -> None:
    tables = set(drill.dynamodb.list_tables()["TableNames"])
    assert drill.restore("--to", "2020-01-01T00:00:00Z", "--suffix", "old") == 1
    assert "can be restored to" in capsys.readouterr().err
    assert set(drill.dynamodb.list_tables()["TableNames"]) == tables


# ---------------------------------------------------------------- --dry-run


def _account_state(drill: Drill) -> dict[str, Any]:
    """Every table of the local cloud: its items and the settings a restore would touch."""
    state = {}
    for table in drill.dynamodb.list_tables()["TableNames"]:
        description = drill.dynamodb.describe_table(TableName=table)["Table"]
        state[table] = {
            "items": drill.items(table),
            "description": {
                k: description.get(k)
                for k in ("StreamSpecification", "DeletionProtectionEnabled", "BillingModeSummary", "ItemCount")
            },
            "ttl": drill.dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"],
            "pitr": drill.dynamodb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"],
            "tags": drill.dynamodb.list_tags_of_resource(ResourceArn=description["TableArn"])["Tags"],
        }
    return state


@pytest.mark.parametrize("source", ["point in time", "backups"])
def test_dry_run_explains_the_restore_and_changes_nothing(
    drill: Drill, backed_up: tuple[dict[str, list[str]], list[str]], source: str, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["--to", "latest"] if source == "point in time" else ["--backup-arn", ",".join(backed_up[1])]
    state = _account_state(drill)
    assert drill.restore(*arguments, "--suffix", "dry", "--copy-back", "--dry-run") == 0
    output = tool_stdout(capsys)
    assert _account_state(drill) == state
    # Point in time: every table of the stack; from backups: the tables backed up.
    restored = drill.cloud.template.of_type("AWS::DynamoDB::Table") if source == "point in time" else TABLES
    assert output.startswith(f"Would restore {len(restored)} table(s):")
    for logical_id in TABLES:
        assert f"- {logical_id}: " in output and f"into {drill.table(logical_id)}-dry" in output
    assert (
        "then re-apply PAY_PER_REQUEST; TTL on expires_at_epoch; stream NEW_AND_OLD_IMAGES; point-in-time "
        "recovery; deletion protection" in output
    )  # the orders table's
    assert "Checks: every item counted; the inventory invariant; orders against reservation lines" in output
    assert "Dry run: nothing restored, nothing changed." in output


# ---------------------------------------------------------------- the backup resources the local cloud provisions


def test_the_local_cloud_creates_the_backup_vault_locked_as_the_parameter_says_and_the_plan() -> None:
    with LocalCloud(
        stack_name=f"vault-{uuid.uuid4().hex[:6]}",
        poll_queues=False,
        parameter_overrides={"BackupVaultLock": "compliance"},
    ) as cloud:
        backup = cloud.client("backup")
        vault = backup.describe_backup_vault(BackupVaultName=cloud.physical_id("BackupVault"))
        key = cloud.client("kms").describe_key(KeyId=vault["EncryptionKeyArn"])["KeyMetadata"]
        assert key["KeyManager"] == "CUSTOMER" and key["Arn"] == cloud.physical_id("BackupKey", "Arn")
        assert (vault["Locked"], vault["MinRetentionDays"], vault["MaxRetentionDays"]) == (True, 35, 365)
        plan = backup.get_backup_plan(BackupPlanId=cloud.physical_id("BackupPlan"))["BackupPlan"]
        assert {(rule["RuleName"], rule["Lifecycle"]["DeleteAfterDays"]) for rule in plan["Rules"]} == {
            ("daily-35-days", 35),
            ("monthly-1-year", 365),
        }
        assert {rule["TargetBackupVaultName"] for rule in plan["Rules"]} == {cloud.physical_id("BackupVault")}
