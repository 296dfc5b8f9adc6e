"""Erase a shopper's personal data from their orders, keeping the accounting figures.

    python -m ops.erase_customer EMAIL --stack <stack name> [--region R] [--dry-run] [--actor WHO]
    python -m ops.erase_customer EMAIL --table <orders table> [--endpoint-url URL] ...   # without CloudFormation

Finds the shopper's orders through the orders table's ByEmail index (the email trimmed and in lower case). Of each
order that has ended (delivered, rejected, payment failed, expired, cancelled) it overwrites the email and the
address's name, street, city and postal code, keeping the country, lines, totals, tax, payment and shipment ids,
statuses and dates (storefront/privacy/service.py says why: tax law). Orders still in progress keep their address
until they end: they are listed, and the command exits 1 so that it is run again later. Every run that finds
orders writes an audit record (who, when, which orders, a SHA-256 of the email; never the email).
--dry-run lists what would be erased and changes nothing. Exit code 0 when nothing personal is left to erase.

Not in the orders table, and so not erased here: the checkout's idempotency records (they hold the checkout's
response, and expire 24 hours after it), the payment provider's and the carrier's own records (ask them), and the
integration events of schema version 1, published before events stopped carrying personal data (their log group
and archive expire them). docs/observability.md, "Privacy", has the whole list.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from storefront.limits.repository import ClientHoldRepository
from storefront.orders.models import EMAIL_PATTERN
from storefront.orders.repository import OrderRepository
from storefront.privacy.repository import ErasureRepository
from storefront.privacy.service import ErasureReport, ErasureService

TABLE_LOGICAL_ID = "OrdersTable"


def erase(dynamodb: Any, table: str, email: str, *, actor: str, dry_run: bool) -> ErasureReport:
    service = ErasureService(
        OrderRepository(dynamodb, table),
        ErasureRepository(dynamodb, table),
        ClientHoldRepository(dynamodb, table),
        now=lambda: datetime.now(UTC),
    )
    return service.erase(email, actor=actor, dry_run=dry_run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.erase_customer",
        description=("Erase a shopper's personal data from their orders, keeping the accounting figures."),
    )
    parser.add_argument("email", help="the shopper's email address (any case)")
    parser.add_argument("--stack", help=f"the stack's name: finds its {TABLE_LOGICAL_ID}")
    parser.add_argument("--table", help="the orders table's name (instead of --stack)")
    parser.add_argument("--region")
    parser.add_argument("--endpoint-url", help="another AWS endpoint, e.g. the local cloud's")
    parser.add_argument("--actor", help="who asks, for the audit record (default: the AWS identity running this)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be erased; change nothing")
    args = parser.parse_args(argv)
    if not args.stack and not args.table:
        parser.error("give --stack or --table")
    if not re.fullmatch(EMAIL_PATTERN, args.email.strip()):
        parser.error(f"{args.email!r} is not an email address")

    session = boto3.Session(region_name=args.region)

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=args.endpoint_url)

    try:
        table = (
            args.table
            or client("cloudformation").describe_stack_resource(
                StackName=args.stack, LogicalResourceId=TABLE_LOGICAL_ID
            )["StackResourceDetail"]["PhysicalResourceId"]
        )
        actor = args.actor or client("sts").get_caller_identity()["Arn"]
        report = erase(client("dynamodb"), table, args.email, actor=actor, dry_run=args.dry_run)
    except (ClientError, BotoCoreError) as error:
        print(f"erasure failed: {error}", file=sys.stderr)
        return 2
    verb = "would erase" if args.dry_run else "erased"
    print(f"table {table}; shopper {report.subject[:16]}… (SHA-256 of the email)")
    print(f"{verb} {len(report.erased)} order(s): {', '.join(report.erased) or '-'}")
    if report.in_progress:
        print(
            f"kept {len(report.in_progress)} order(s) still in progress (their address is still needed): "
            f"{', '.join(report.in_progress)}; run again once they have ended"
        )
    if report.audit_id:
        print(f"audit record ERASURE#{report.audit_id}")
    elif args.dry_run:
        print("dry run: nothing changed, no audit record")
    return 1 if report.in_progress else 0


if __name__ == "__main__":
    sys.exit(main())
