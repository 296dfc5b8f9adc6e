"""ops.backfill_admin_indexes on the local cloud: an order, its cart claim, an adjustment, a sale and a return written
as they were before the admin API (without index keys) are missing from the admin's lists; after the backfill they
are there, the inventory invariant holds again, and running it again changes nothing."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from storefront.dynamodb import from_item, to_item
from storefront.inventory.invariant import check_inventory
from storefront.inventory.models import history_entry

from local_cloud.cloud import LocalCloud
from local_cloud.demo_data import DEMO_ORDER_ID
from ops.backfill_admin_indexes import main
from tests.admin_api import bearer
from tests.tool_output import tool_stdout

SOLD_AT = datetime(2025, 6, 1, 8, 30, tzinfo=UTC)
RETURNED_AT = "2025-06-03T10:00:00+00:00"


@pytest.fixture
def legacy(cloud: LocalCloud) -> Iterator[dict[str, str]]:
    """Items in the shape a stack deployed before the admin API wrote them; the SKU's are removed afterwards, so
    that a failure here (before the backfill mends them) does not fail every later test's inventory check."""
    dynamodb = cloud.client("dynamodb")
    orders, inventory = cloud.physical_id("OrdersTable"), cloud.physical_id("InventoryTable")
    template = from_item(
        dynamodb.get_item(TableName=orders, Key=to_item({"pk": f"ORDER#{DEMO_ORDER_ID}", "sk": "ORDER"}))["Item"]
    )
    order_id, cart_id = secrets.token_urlsafe(24), uuid.uuid4().hex
    email = f"Legacy.{uuid.uuid4().hex[:8]}@Example.com"
    old = {k: v for k, v in template.items() if k not in ("listing_pk", "listing_sk", "email_key")}
    dynamodb.put_item(
        TableName=orders,
        Item=to_item(
            {
                **old,
                "pk": f"ORDER#{order_id}",
                "id": order_id,
                "cart_id": cart_id,
                "email": email,
                "created_at": "2025-06-01T08:00:00Z",
            }
        ),
    )
    dynamodb.put_item(TableName=orders, Item=to_item({"pk": f"CART#{cart_id}", "sk": "ORDER", "order_id": order_id}))
    sku = f"LEGACY-{uuid.uuid4().hex[:8].upper()}"
    sale = secrets.token_urlsafe(24)
    for item in (
        {
            "pk": f"SKU#{sku}",
            "sk": "LEVEL",
            "sku": sku,
            "on_hand": 8,
            "reserved": 0,
            "available": 8,
            "low_stock_threshold": 5,
        },
        {
            "pk": f"SKU#{sku}",
            "sk": "ADJUST#2025-05-01T09:00:00+00:00#9f1c",
            "sku": sku,
            "delta": 10,
            "reason": "opening stock",
            "at": "2025-05-01T09:00:00+00:00",
        },
        {
            "pk": f"SKU#{sku}",
            "sk": f"ORDER#{sale}",
            "order_id": sale,
            "sku": sku,
            "quantity": 3,
            "state": "committed",
            "history": [history_entry(m, 3, SOLD_AT.isoformat()).model_dump() for m in ("reserve", "commit")],
            "returned": 1,
        },
        # One unit of the sale came back (a refund with restock, written before the ledger index existed).
        {
            "pk": f"SKU#{sku}",
            "sk": "RETURN#rf_legacy",
            "return_id": "rf_legacy",
            "order_id": sale,
            "sku": sku,
            "quantity": 1,
            "reason": "returned",
            "at": RETURNED_AT,
        },
    ):
        dynamodb.put_item(TableName=inventory, Item=to_item(item))
    yield {"order": order_id, "email": email, "sku": sku, "sale": sale}
    written = dynamodb.query(
        TableName=inventory,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues=to_item({":pk": f"SKU#{sku}"}),
        ProjectionExpression="pk, sk",
    )["Items"]
    for item_key in written:
        dynamodb.delete_item(TableName=inventory, Key=item_key)


def test_old_items_join_the_admins_lists_and_a_second_run_changes_nothing(
    cloud: LocalCloud, api: httpx.Client, legacy: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    admin = bearer(api, "admin")
    window = {"created_from": "2025-06-01", "created_to": "2025-06-01"}
    inventory_table = cloud.physical_id("InventoryTable")
    assert api.get("/admin/orders", params={"email": legacy["email"]}, headers=admin).json()["items"] == []
    assert api.get(f"/admin/inventory/{legacy['sku']}", headers=admin).json()["ledger"]["items"] == []
    assert check_inventory(cloud.client("dynamodb"), inventory_table, [legacy["sku"]])  # the ledger index lacks them

    arguments = ["--stack", cloud.template.stack_name, "--endpoint-url", cloud.endpoint_url]
    assert main([*arguments, "--dry-run"]) == 0
    assert tool_stdout(capsys).startswith("would add index keys to: ")
    assert api.get("/admin/orders", params={"email": legacy["email"]}, headers=admin).json()["items"] == []
    assert main(arguments) == 0

    def listed(**params: Any) -> list[str]:
        return [o["id"] for o in api.get("/admin/orders", params={**params, **window}, headers=admin).json()["items"]]

    assert listed(email=legacy["email"].lower()) == [legacy["order"]]
    assert legacy["order"] in listed() and legacy["order"] in listed(status="pending")
    ledger = api.get(f"/admin/inventory/{legacy['sku']}", headers=admin).json()["ledger"]["items"]
    assert [(e["delta"], e["reason"], e.get("order_id"), e["at"]) for e in ledger] == [
        (1, "returned", legacy["sale"], "2025-06-03T10:00:00Z"),
        (-3, "sold", legacy["sale"], "2025-06-01T08:30:00Z"),
        (10, "opening stock", None, "2025-05-01T09:00:00Z"),
    ]
    assert check_inventory(cloud.client("dynamodb"), inventory_table, [legacy["sku"]]) == []

    dynamodb = cloud.client("dynamodb")
    before = [
        dynamodb.get_item(
            TableName=cloud.physical_id("OrdersTable"), Key=to_item({"pk": f"ORDER#{legacy['order']}", "sk": "ORDER"})
        )["Item"]
    ]
    assert main(arguments) == 0
    after = [
        dynamodb.get_item(
            TableName=cloud.physical_id("OrdersTable"), Key=to_item({"pk": f"ORDER#{legacy['order']}", "sk": "ORDER"})
        )["Item"]
    ]
    assert after == before
