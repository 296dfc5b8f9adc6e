"""`python -m ops.erase_customer` on the local cloud: a shopper's ended orders lose their email and address and
keep every accounting figure; orders in progress keep theirs until they end (exit 1, a later run erases them);
other shoppers' orders are untouched; a dry run changes nothing; every run that acts leaves an audit record that
does not hold the email."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from storefront.cart.models import StoredCart, StoredLine, StoredShipping
from storefront.cart.repository import CartRepository
from storefront.catalog.models import StoredProduct, StoredVariant
from storefront.catalog.repository import CatalogRepository
from storefront.dynamodb import from_item, key
from storefront.inventory.repository import InventoryRepository
from storefront.limits.repository import HOLDS_SK
from storefront.limits.service import client_key
from storefront.money import Money
from storefront.privacy.repository import ErasureRepository

from local_cloud.cloud import LocalCloud
from ops.erase_customer import main
from tests.tool_output import tool_stdout
from tests.waiting import wait_until

ADDRESS = {
    "name": "Erin Erasure",
    "line1": "Löschweg 7",
    "line2": "Hinterhaus",
    "city": "Potsdam",
    "postal_code": "14467",
    "country": "DE",
}
PERSONAL = ["Erin Erasure", "Löschweg 7", "Hinterhaus", "Potsdam", "14467"]


def _order(api: httpx.Client, order_id: str) -> dict[str, Any]:
    return api.get(f"/orders/{order_id}").json()


def _wait(api: httpx.Client, order_id: str, *statuses: str) -> dict[str, Any]:
    return wait_until(lambda: (o := _order(api, order_id))["status"] in statuses and o, f"{order_id} in {statuses}")


def _place_order(cloud: LocalCloud, api: httpx.Client, email: str) -> dict[str, Any]:
    dynamodb = cloud.client("dynamodb")
    product_id = f"erase-{uuid.uuid4().hex[:10]}"
    sku = product_id.upper() + "-ONE"
    CatalogRepository(dynamodb, cloud.physical_id("CatalogTable")).put_product(
        StoredProduct(
            id=product_id,
            name="Erase test",
            description="",
            category="test",
            images=[],
            variants=[StoredVariant(sku=sku, title="One", price=Money(amount=2500, currency="EUR"))],
        )
    )
    InventoryRepository(dynamodb, cloud.physical_id("InventoryTable")).put_level(sku, 5)
    now, cart_id = datetime.now(UTC), uuid.uuid4().hex
    CartRepository(dynamodb, cloud.physical_id("CartTable")).create(
        StoredCart(
            id=cart_id,
            currency="EUR",
            version=1,
            created_at=now,
            updated_at=now,
            expires_at=now + timedelta(hours=1),
            lines=[StoredLine(sku=sku, quantity=2, seen_price=Money(amount=2500, currency="EUR"))],
            shipping=StoredShipping(country="DE", method="standard"),
        )
    )
    response = api.post(
        "/checkout",
        headers={"Idempotency-Key": uuid.uuid4().hex},
        json={"cart_id": cart_id, "email": email, "shipping_address": ADDRESS},
    )
    assert response.status_code == 202, response.text
    return _wait(api, response.json()["id"], "awaiting_payment")


def _stored(cloud: LocalCloud, order_id: str) -> dict[str, Any]:
    item = cloud.client("dynamodb").get_item(
        TableName=cloud.physical_id("OrdersTable"), Key=key(pk=f"ORDER#{order_id}", sk="ORDER"), ConsistentRead=True
    )["Item"]
    return from_item(item)


def _run(cloud: LocalCloud, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(
        [
            *args,
            "--table",
            cloud.physical_id("OrdersTable"),
            "--endpoint-url",
            cloud.endpoint_url,
            "--region",
            cloud.region,
        ]
    )
    return code, tool_stdout(capsys)


@pytest.mark.slow("waits")
def test_erasure_keeps_the_figures_waits_for_orders_in_progress_and_leaves_an_audit(
    cloud: LocalCloud, api: httpx.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    email = f"Erin.{uuid.uuid4().hex[:8]}@Example.com"
    declined = _place_order(cloud, api, email)
    shipping = _place_order(cloud, api, f"  {email.lower()} ")  # the same shopper, typed differently
    other = _place_order(cloud, api, f"someone-{uuid.uuid4().hex[:8]}@example.com")
    for _ in range(int(cloud.template.parameter("MaxPaymentAttempts"))):  # the last decline ends the order
        api.post(f"/dev/payments/{declined['payment']['payment_id']}/fail")
    api.post(f"/dev/payments/{shipping['payment']['payment_id']}/succeed")
    declined = _wait(api, declined["id"], "payment_failed")
    shipping = _wait(api, shipping["id"], "fulfilling")
    before = _stored(cloud, declined["id"])

    # A dry run says what would happen and changes nothing.
    code, out = _run(cloud, capsys, email, "--dry-run", "--actor", "privacy@shop.example")
    assert code == 1 and f"would erase 1 order(s): {declined['id']}" in out and shipping["id"] in out
    assert _stored(cloud, declined["id"]) == before

    code, out = _run(cloud, capsys, email.upper(), "--actor", "privacy@shop.example")
    assert code == 1, out  # one order is still being shipped: its address stays until it has ended
    assert f"erased 1 order(s): {declined['id']}" in out and "still in progress" in out
    erased = _order(api, declined["id"])  # the API still serves it
    assert erased["email"] == "erased@erased.invalid"
    assert erased["shipping_address"] == {
        "name": "erased",
        "line1": "erased",
        "line2": None,
        "city": "erased",
        "postal_code": "erased",
        "country": "DE",
    }
    for kept in ("id", "status", "lines", "totals", "shipping", "payment", "history", "created_at", "cart_id"):
        assert erased[kept] == declined[kept], kept  # the figures the books need
    stored = _stored(cloud, declined["id"])
    assert "email_key" not in stored and "client_hold" not in stored and stored["erased_at"]
    assert not any(value in json.dumps(stored, ensure_ascii=False, default=sorted) for value in PERSONAL)  # sets too
    assert _order(api, shipping["id"])["shipping_address"] == ADDRESS  # the parcel still needs it
    assert _order(api, other["id"])["shipping_address"] == ADDRESS

    audit_id = out.split("audit record ERASURE#", 1)[1].split()[0]
    audit = ErasureRepository(cloud.client("dynamodb"), cloud.physical_id("OrdersTable")).audit(audit_id)
    assert audit is not None and audit["actor"] == "privacy@shop.example" and audit["erased"] == [declined["id"]]
    assert audit["kept_in_progress"] == [shipping["id"]]
    assert email.lower() not in json.dumps(audit).lower() and len(audit["subject"]) == 64
    limit_item = cloud.client("dynamodb").get_item(
        TableName=cloud.physical_id("OrdersTable"), Key=key(pk=client_key("email", email.lower()), sk=HOLDS_SK)
    )
    assert "Item" not in limit_item  # the email's place in the checkout limits is gone too

    # The parcel is delivered: a second run erases that order as well, and has nothing left to wait for.
    tracking = shipping["fulfilment"]["tracking_number"]
    for _ in range(3):  # in transit, out for delivery, delivered
        assert api.post(f"/dev/shipments/{tracking}/advance").status_code == 200
    _wait(api, shipping["id"], "delivered")
    code, out = _run(cloud, capsys, email)
    assert code == 0 and f"erased 1 order(s): {shipping['id']}" in out
    assert _order(api, shipping["id"])["email"] == "erased@erased.invalid"
    code, out = _run(cloud, capsys, email)  # nothing left: no orders, no audit record
    assert code == 0 and "erased 0 order(s)" in out and "audit record" not in out


def test_the_command_refuses_what_is_not_an_email(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["not-an-email", "--table", "t"])
    assert exited.value.code == 2 and "is not an email address" in capsys.readouterr().err
