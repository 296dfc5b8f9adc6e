"""An existing stack upgrades in the steps docs/architecture.md ("Upgrading") gives: CloudFormation creates at most
one global secondary index per table in one update, so each step may add at most one to each table a stack deployed
before already had. Each step is also what a stack deployed from an earlier version has, so it starts there."""

from __future__ import annotations

from local_cloud.template import Template

# The indexes of the tables a stack deployed before any of the steps had (577e323, before limits and privacy).
BEFORE = {
    "CatalogTable": {"ByListing"},
    "InventoryTable": set(),
    "CartTable": set(),
    "OrdersTable": set(),
    "NotificationsTable": set(),
}
STEPS = ["1", "2", "complete"]
# The indexes each step has: a stack deployed with limits and privacy (ByEmail) has step 1's, one deployed with the
# reconciler too (ByReconcileDue, ByHeldSince) step 2's; complete adds the admin API's (ByListing, ByLedger).
ADDED_BY_STEP = {
    "1": {"OrdersTable": {"ByEmail"}},
    "2": {"OrdersTable": {"ByReconcileDue"}, "InventoryTable": {"ByHeldSince"}},
    "complete": {"OrdersTable": {"ByListing"}, "InventoryTable": {"ByLedger"}},
}


def _indexes(step: str) -> dict[str, set[str]]:
    template = Template.load(parameter_overrides={"IndexUpgradeStep": step})
    return {
        logical_id: {
            index["IndexName"] for index in template.resolve(table["Properties"].get("GlobalSecondaryIndexes", []))
        }
        for logical_id, table in template.of_type("AWS::DynamoDB::Table").items()
        if logical_id in BEFORE
    }


def test_each_step_adds_at_most_one_index_to_each_existing_table() -> None:
    previous = BEFORE
    for step in STEPS:
        current = _indexes(step)
        for table, indexes in current.items():
            assert previous[table] <= indexes, f"step {step} drops an index of {table}"
            assert len(indexes - previous[table]) <= 1, f"step {step} adds {indexes - previous[table]} to {table}"
            assert indexes - previous[table] == ADDED_BY_STEP[step].get(table, set()), (step, table)
        previous = current


def test_the_default_is_the_complete_stack() -> None:
    template = Template.load()
    assert template.parameter("IndexUpgradeStep") == "complete"
    assert _indexes("complete")["OrdersTable"] == {"ByEmail", "ByReconcileDue", "ByListing"}
    assert _indexes("complete")["InventoryTable"] == {"ByHeldSince", "ByLedger"}
