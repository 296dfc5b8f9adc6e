"""The data `make dev` serves is data the shop could have made: the restore tool's verification (ops.restore, the
inventory invariant and orders against their reservations) finds nothing wrong in it, so a developer who tries the
restore runbook on the local stack sees a clean report, and every demo order holds the stock its status implies."""

from __future__ import annotations

import uuid

from local_cloud.cloud import LocalCloud
from local_cloud.demo_data import seed
from ops.restore import verify


def test_the_demo_data_passes_the_restore_tools_verification() -> None:
    cloud = LocalCloud(stack_name=f"demo-{uuid.uuid4().hex[:6]}")
    cloud.start()
    try:
        seed(cloud)
        tables = {
            logical_id: cloud.physical_id(logical_id)
            for logical_id in ("CatalogTable", "InventoryTable", "OrdersTable", "CartTable")
        }
        result = verify(cloud.client("dynamodb"), tables)
    finally:
        cloud.stop()
    assert (result.violations, result.in_flight) == ([], [])
    assert len(result.checks) == 2 and result.counts[tables["OrdersTable"]] > 0
