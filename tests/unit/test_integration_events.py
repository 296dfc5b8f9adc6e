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
ORDER = dict(SAMPLE["dynamodb"]["NewImage"].items())  # a paid order, as the table stores it


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


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ("awaiting_payment", "paid", "order.paid"),
        ("pending", "rejected", "order.rejected"),
        ("awaiting_payment", "payment_failed", "order.payment_failed"),
        ("awaiting_payment", "expired", "order.expired"),
        ("fulfilling", "shipped", "order.shipped"),
        ("shipped", "delivered", "order.delivered"),
        ("pending", "awaiting_payment", None),  # internal steps
        ("paid", "fulfilling", None),
        ("shipped", "shipped", None),  # tracking news, payment details: no transition
    ],
)
def test_a_status_change_is_one_event(before: str, after: str, expected: str | None) -> None:
    history = ["pending", before] if before != "pending" else ["pending"]
    events = events_for(order_record(with_status(before, *history), with_status(after, *history, after)))
    assert [e.type for e in events] == ([expected] if expected else [])
    if expected:
        detail = events[0].detail
        assert detail["schema_version"] == 2 and detail["type"] == expected
        assert detail["occurred_at"] == f"2026-11-26T10:0{len(history)}:00+00:00"
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
    idempotency = {
        "Keys": to_item({"pk": "IDEMPOTENCY#checkout#k", "sk": "IDEMPOTENCY"}),
        "NewImage": to_item({"pk": "IDEMPOTENCY#checkout#k", "sk": "IDEMPOTENCY", "status": "done"}),
    }
    assert events_for({"eventID": "e", "dynamodb": idempotency}) == []


def level(available: int, threshold: int = 5) -> dict[str, Any]:
    return to_item(
        {
            "pk": "SKU#MUG",
            "sk": "LEVEL",
            "sku": "MUG",
            "on_hand": 10,
            "reserved": 10 - available,
            "available": available,
            "low_stock_threshold": threshold,
        }
    )


def stock_record(old: int | None, new: int) -> dict[str, Any]:
    change = {
        "Keys": to_item({"pk": "SKU#MUG", "sk": "LEVEL"}),
        "NewImage": level(new),
        "ApproximateCreationDateTime": 1795600000,
    }
    if old is not None:
        change["OldImage"] = level(old)
    return {"eventID": "rec-1", "dynamodb": change}


@pytest.mark.parametrize(
    ("old", "new", "published"),
    [
        (6, 5, True),  # crosses: at the threshold is low
        (8, 2, True),
        (None, 3, True),  # a new SKU that starts low
        (5, 4, False),  # already low: once per crossing
        (9, 6, False),
        (2, 7, False),  # restocked
    ],
)
def test_stock_low_once_per_crossing(old: int | None, new: int, published: bool) -> None:
    events = events_for(stock_record(old, new))
    assert [e.type for e in events] == (["stock.low"] if published else [])
    if published:
        assert events[0].detail["available"] == new and events[0].detail["event_id"] == "rec-1"
        assert events[0].detail["occurred_at"] == "2026-11-25T09:46:40+00:00"  # the record's creation time


def _with_money(
    payment: dict[str, Any] | None = None, refunds: list[dict[str, Any]] | None = None, refunded: int = 0
) -> dict[str, Any]:
    image = with_status("awaiting_payment", "pending", "awaiting_payment")
    if payment is not None:
        image["payment"] = to_item({"p": {"provider": "fake", "payment_id": "pi_1", **payment}})["p"]
    image["refunds"] = to_item({"r": refunds or []})["r"]
    image["refunded_amount"] = {"N": str(refunded)}
    return image


def _refund(status: str) -> dict[str, Any]:
    return {
        "id": "rf_1",
        "amount": {"amount": 500, "currency": "EUR"},
        "status": status,
        "reason": "damaged",
        "lines": [],
        "restock": False,
        "created_at": "2026-11-26T10:00:00+00:00",
        "provider_refund_id": "re_1",
    }


def test_a_decline_the_shopper_may_retry_is_an_event_of_ids_and_figures() -> None:
    before = _with_money({"status": "pending", "attempts": 0})
    after = _with_money({"status": "declined", "attempts": 1, "last_error": {"code": "card_declined", "message": "No"}})
    [event] = events_for(order_record(before, after))
    assert (
        event.type == "order.payment_declined"
        and event.detail["event_id"] == f"order.payment_declined:{ORDER['id']['S']}:1"
    )
    assert event.detail["payment"] == {
        "payment_id": "pi_1",
        "status": "declined",
        "attempts": 1,
        "last_error": {"code": "card_declined", "message": "No"},
    }
    assert "email" not in json.dumps(event.detail) and "shipping_address" not in event.detail["order"]
    final = _with_money({"status": "failed", "attempts": 3})  # the last one: order.payment_failed follows instead
    assert events_for(order_record(after, final)) == []
    assert events_for(order_record(after, after)) == []  # nothing new


def test_each_refund_that_succeeds_is_one_event() -> None:
    pending = _with_money({"status": "succeeded", "attempts": 0}, [_refund("pending")], refunded=500)
    succeeded = _with_money({"status": "succeeded", "attempts": 0}, [_refund("succeeded")], refunded=500)
    [event] = events_for(order_record(pending, succeeded))
    assert event.type == "order.refunded" and event.detail["event_id"] == "order.refunded:rf_1"
    assert event.detail["refund"] == {
        k: v for k, v in _refund("succeeded").items() if k not in ("created_at", "provider_refund_id")
    }
    assert event.detail["order"]["refunded"] == {"amount": 500, "currency": "EUR"}
    assert events_for(order_record(succeeded, succeeded)) == []  # the next write of the order: not again
    failed = _with_money({"status": "succeeded", "attempts": 0}, [_refund("failed")])
    assert events_for(order_record(pending, failed)) == []
