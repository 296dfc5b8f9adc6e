"""Give the items written before the admin API the keys of its indexes, so old orders and stock movements show in
the admin's lists (docs/architecture.md, "Upgrading a stack deployed before the admin API").

    python -m ops.backfill_admin_indexes --stack <stack name> [--region R] [--endpoint-url URL] [--dry-run]

Orders table: each order gets `email_key` (ByEmail; not for an erased order, whose email is in the reserved .invalid
domain) and its `listing_pk`/`listing_sk` (ByListing: the orders of its status); each cart claim the listing keys of
its order (ByListing: all orders). Inventory table: each adjustment, each committed reservation line and each
return (refunds with restock, cancellations after payment) gets its `ledger_at` (ByLedger: the SKU's ledger), at
the movement's own time. The values are the ones the functions write
(the same functions compute them). Only missing attributes are added, each by a conditional update, so the command
may be stopped and run again; it reads with Scan, which is fine for a one-off migration and nowhere else. Stock
levels are not touched (the stock function stays their only writer). Exit code 0 when nothing was left to do or all
of it was done.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from storefront.dynamodb import from_item, to_item
from storefront.inventory.repository import ledger_at
from storefront.orders.models import OrderStatus, email_key
from storefront.orders.repository import listing_shard, listing_sk, status_partition

from ops.restore import RestoreError, stack_tables


def backfill_orders(dynamodb: Any, table: str, dry_run: bool) -> Counter[str]:
    done: Counter[str] = Counter()
    created: dict[str, str] = {}  # order id -> its listing_sk, for the cart claims
    claims: list[dict[str, Any]] = []
    for item in _scan(dynamodb, table):
        if item["pk"].startswith("ORDER#") and item["sk"] == "ORDER":
            order_id = item["id"]
            key = listing_sk(datetime.fromisoformat(item["created_at"]), order_id)
            created[order_id] = key
            if "listing_sk" not in item:
                _set(
                    dynamodb,
                    table,
                    item,
                    {"listing_pk": status_partition(OrderStatus(item["status"]), order_id), "listing_sk": key},
                    dry_run,
                )
                done["orders listed"] += 1
            if "email_key" not in item and not str(item.get("email", "")).lower().endswith(".invalid"):
                _set(dynamodb, table, item, {"email_key": email_key(item["email"])}, dry_run)
                done["orders found by email"] += 1
        elif item["pk"].startswith("CART#") and item["sk"] == "ORDER" and "listing_sk" not in item:
            claims.append(item)
    for claim in claims:
        order_id = claim["order_id"]
        if order_id in created:
            _set(
                dynamodb,
                table,
                claim,
                {"listing_pk": f"ALL#{listing_shard(order_id)}", "listing_sk": created[order_id]},
                dry_run,
            )
            done["orders in the list of all"] += 1
    return done


def backfill_ledger(dynamodb: Any, table: str, dry_run: bool) -> Counter[str]:
    done: Counter[str] = Counter()
    for item in _scan(dynamodb, table):
        if "ledger_at" in item:
            continue
        if item["sk"].startswith("ADJUST#"):
            at = datetime.fromisoformat(item["at"])
            done["adjustments"] += 1
        elif item["sk"].startswith("ORDER#") and item.get("state") == "committed":
            at = datetime.fromisoformat(next(e["at"] for e in item["history"] if e["movement"] == "commit"))
            done["sales"] += 1
        elif item["sk"].startswith("RETURN#"):
            at = datetime.fromisoformat(item["at"])
            done["returns"] += 1
        else:
            continue
        _set(dynamodb, table, item, {"ledger_at": ledger_at(at, item["sk"])}, dry_run)
    return done


def _scan(dynamodb: Any, table: str) -> Iterator[dict[str, Any]]:
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        yield from (from_item(item) for item in page["Items"])


def _set(dynamodb: Any, table: str, item: dict[str, Any], values: dict[str, str], dry_run: bool) -> None:
    """Add the attributes to the item, if it still lacks them (someone else, or an earlier run, may have been first)."""
    if dry_run:
        return
    names = {f"#a{i}": name for i, name in enumerate(values)}
    try:
        dynamodb.update_item(
            TableName=table,
            Key=to_item({"pk": item["pk"], "sk": item["sk"]}),
            UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(values))),
            ConditionExpression="attribute_exists(pk) AND "
            + " AND ".join(f"attribute_not_exists(#a{i})" for i in range(len(values))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item({f":v{i}": value for i, value in enumerate(values.values())}),
        )
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.backfill_admin_indexes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True, help="the stack whose orders and inventory tables are backfilled")
    parser.add_argument("--region")
    parser.add_argument("--endpoint-url", help="another AWS endpoint, e.g. the local cloud's")
    parser.add_argument("--dry-run", action="store_true", help="count what would be written; write nothing")
    args = parser.parse_args(argv)
    dynamodb = boto3.Session(region_name=args.region).client("dynamodb", endpoint_url=args.endpoint_url)
    try:
        tables = stack_tables(dynamodb, args.stack)
        done = backfill_orders(dynamodb, tables["OrdersTable"], args.dry_run)
        done += backfill_ledger(dynamodb, tables["InventoryTable"], args.dry_run)
    except (RestoreError, ClientError, BotoCoreError) as error:
        print(f"backfill failed: {error}", file=sys.stderr)
        return 2
    verb = "would add" if args.dry_run else "added"
    print(f"{verb} index keys to: " + (", ".join(f"{n} {what}" for what, n in sorted(done.items())) or "nothing"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
