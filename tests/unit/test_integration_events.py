"""Which DynamoDB stream records become which integration events (storefront/integration_events.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from storefront.dynamodb import to_item
from storefront.integration_events import EVENT_TYPES, events_for

EVENTS = Path(__file__).resolve().parents[2] / "events" / "integration_events"
SAMPLE = json.loads((EVENTS / "order-paid.json").read_text())["Records"][0]
ORDER = {k: v for k, v in SAMPLE["dynamodb"]["NewImage"].items()}  # a paid order, as the table stores it


def order_record(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    change: dict[str, Any] = {"Keys": {"pk": ORDER["pk"], "sk": ORDER["sk"]}, "SequenceNumber": "1"}
    if old is not None:
        change["OldImage"] = old
    if new is not None:
        change["NewImage"] = new
    return {"eventID": "e1", "eventName": "MODIFY", "dynamodb": change}


def with_status(status: str, *history: str) -> dict[str, Any]:
    entries = [{"status": s, "at": f"2026-11-26T10:0{i}:00+00:00"} for i, s in enumerate(history)]
    return {**ORDER, "status": {"S": status}, "history": to_item({"h": entries})["h"]}


def test_an_inserted_order_is_placed() -> None:
    [event] = events_for(order_record(None, with_status("pending", "pending")))
    assert event.type == "order.placed"
    assert event.detail["event_id"] == f"order.placed:{ORDER['id']['S']}"
    assert event.detail["occurred_at"] == ORDER["created_at"]["S"].replace("Z", "+00:00")


@pytest.mark.parametrize(("before", "after", "expected"), [
    ("awaiting_payment", "paid", "order.paid"),
    ("pending", "rejected", "order.rejected"),
    ("awaiting_payment", "payment_failed", "order.payment_failed"),
    ("awaiting_payment", "expired", "order.expired"),
    ("fulfilling", "shipped", "order.shipped"),
    ("shipped", "delivered", "order.delivered"),
    ("pending", "awaiting_payment", None),  # internal steps
    ("paid", "fulfilling", None),
    ("shipped", "shipped", None),  # tracking news, payment details: no transition
])
def test_a_status_change_is_one_event(before: str, after: str, expected: str | None) -> None:
    history = ["pending", before] if before != "pending" else ["pending"]
    events = events_for(order_record(with_status(before, *history), with_status(after, *history, after)))
    assert [e.type for e in events] == ([expected] if expected else [])
    if expected:
        detail = events[0].detail
        assert detail["schema_version"] == 2 and detail["type"] == expected
        assert detail["occurred_at"] == "2026-11-26T10:0%d:00+00:00" % len(history)
        assert "history" not in detail["order"] and "client_secret" not in (detail["order"]["payment"] or {})
        assert expected in EVENT_TYPES


def test_order_events_carry_no_personal_data() -> None:
    """Ids and figures only: the shopper's email, name and address stay in the order (docs/events.md)."""
    order = {k: v["S"] for k, v in ORDER.items() if "S" in v}
    shopper = [order["email"], *(v["S"] for v in ORDER["shipping_address"]["M"].values() if "S" in v)]
    assert len(shopper) >= 5, shopper  # email, name, line1, city, postal code (the sample order has them all)
    for before, after in [(None, "pending"), ("awaiting_payment", "paid"), ("fulfilling", "shipped")]:
        history = ["pending"] + ([before] if before not in (None, "pending") else [])
        old = None if before is None else with_status(before, *history)
        [event] = events_for(order_record(old, with_status(after, *history, after)))
        published = json.dumps(event.detail)
        leaked = [value for value in shopper if value.lower() in published.lower() and len(value) > 2]
        assert leaked == [], f"{event.type} carries {leaked}"
        assert {"email", "shipping_address"}.isdisjoint(event.detail["order"])
        assert event.detail["order"]["id"] == order["id"] and event.detail["order"]["totals"]["total"]["amount"] > 0


def test_deletions_and_other_items_mean_nothing() -> None:
    assert events_for(order_record(with_status("paid", "paid"), None)) == []
    idempotency = {"Keys": to_item({"pk": "IDEMPOTENCY#checkout#k", "sk": "IDEMPOTENCY"}),
                   "NewImage": to_item({"pk": "IDEMPOTENCY#checkout#k", "sk": "IDEMPOTENCY", "status": "done"})}
    assert events_for({"eventID": "e", "dynamodb": idempotency}) == []


def level(available: int, threshold: int = 5) -> dict[str, Any]:
    return to_item({"pk": "SKU#MUG", "sk": "LEVEL", "sku": "MUG", "on_hand": 10, "reserved": 10 - available,
                    "available": available, "low_stock_threshold": threshold})


def stock_record(old: int | None, new: int) -> dict[str, Any]:
    change = {"Keys": to_item({"pk": "SKU#MUG", "sk": "LEVEL"}), "NewImage": level(new),
              "ApproximateCreationDateTime": 1795600000}
    if old is not None:
        change["OldImage"] = level(old)
    return {"eventID": "rec-1", "dynamodb": change}


@pytest.mark.parametrize(("old", "new", "published"), [
    (6, 5, True),  # crosses: at the threshold is low
    (8, 2, True),
    (None, 3, True),  # a new SKU that starts low
    (5, 4, False),  # already low: once per crossing
    (9, 6, False),
    (2, 7, False),  # restocked
])
def test_stock_low_once_per_crossing(old: int | None, new: int, published: bool) -> None:
    events = events_for(stock_record(old, new))
    assert [e.type for e in events] == (["stock.low"] if published else [])
    if published:
        assert events[0].detail["available"] == new and events[0].detail["event_id"] == "rec-1"
        assert events[0].detail["occurred_at"] == "2026-11-25T09:46:40+00:00"  # the record's creation time
