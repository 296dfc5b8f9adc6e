"""The catalog management rules, without DynamoDB: status changes, versions, edits of archived products, the
variant items a write must change (what keeps SKUs to one product and takes variants off sale), ids from names,
and what the audit log keeps of a change."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from storefront.audit.models import Change, changes
from storefront.catalog.admin import planned_update, product_id_from
from storefront.catalog.models import ID_PATTERN, STATUS_CHANGES, NewProduct, ProductUpdate, StoredProduct
from storefront.catalog.repository import CatalogRepository
from storefront.errors import Conflict, VersionConflict

NOW = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)


def stored(status: str = "active", version: int = 3, **changes: Any) -> StoredProduct:
    return StoredProduct.model_validate(
        {
            "id": "linen-shirt",
            "name": "Linen shirt",
            "description": "Linen.",
            "category": "shirts",
            "images": [],
            "variants": [
                {"sku": "LS-S", "title": "Small", "price": {"amount": 5900, "currency": "EUR"}},
                {"sku": "LS-M", "title": "Medium", "price": {"amount": 5900, "currency": "EUR"}},
            ],
            "status": status,
            "version": version,
            **changes,
        }
    )


def update(status: str = "active", **changes: Any) -> ProductUpdate:
    product = stored(status)
    return ProductUpdate.model_validate(
        {
            **product.model_dump(include={"name", "description", "category", "images"}),
            "variants": [v.model_dump() for v in product.variants],
            "status": status,
            **changes,
        }
    )


@pytest.mark.parametrize(
    ("current", "wanted"), [(c, w) for c in ("draft", "active", "archived") for w in ("draft", "active", "archived")]
)
def test_status_changes(current: str, wanted: str) -> None:
    allowed = not (current == "archived" and wanted == "active")
    assert (wanted in STATUS_CHANGES[current]) is allowed
    request = update(wanted, name="Linen shirt, new")
    if current == "archived" and wanted == "archived":
        with pytest.raises(Conflict) as refused:
            planned_update(stored(current), request, None, NOW)
        assert refused.value.code == "product_archived"
    elif allowed:
        changed = planned_update(stored(current), request, None, NOW)
        assert changed is not None and (changed.status, changed.version, changed.updated_at) == (wanted, 4, NOW)
    else:
        with pytest.raises(Conflict) as refused:
            planned_update(stored(current), request, None, NOW)
        assert refused.value.code == "status_change_not_allowed"


def test_a_stale_version_is_a_conflict_and_the_current_one_is_not() -> None:
    with pytest.raises(VersionConflict):
        planned_update(stored(version=3), update(name="New"), 2, NOW)
    assert planned_update(stored(version=3), update(name="New"), 3, NOW) is not None


def test_a_put_that_changes_nothing_writes_nothing_even_when_archived() -> None:
    assert planned_update(stored(), update(), None, NOW) is None
    assert planned_update(stored("archived"), update("archived"), None, NOW) is None


def test_removed_variants_stay_claimed_but_are_no_longer_sold() -> None:
    before = stored()
    after = before.model_copy(update={"variants": before.variants[:1]})
    assert CatalogRepository.variant_changes(after, before) == {
        "LS-M": {
            "pk": "VARIANT#LS-M",
            "sk": "VARIANT",
            "sellable": False,
            "sku": "LS-M",
            "product_id": "linen-shirt",
            "product_name": "Linen shirt",
            "title": "Medium",
            "price": {"amount": 5900, "currency": "EUR"},
        }
    }


def test_a_status_change_rewrites_every_variant_and_an_unrelated_edit_none() -> None:
    before = stored()
    drafted = before.model_copy(update={"status": "draft"})
    assert {sku: item["sellable"] for sku, item in CatalogRepository.variant_changes(drafted, before).items()} == {
        "LS-S": False,
        "LS-M": False,
    }
    described = before.model_copy(update={"description": "Now in a new colour."})
    assert CatalogRepository.variant_changes(described, before) == {}
    renamed = before.model_copy(update={"name": "Linen shirt II"})
    assert set(CatalogRepository.variant_changes(renamed, before)) == {"LS-S", "LS-M"}  # product_name is on each


def test_a_new_product_claims_every_sku() -> None:
    assert set(CatalogRepository.variant_changes(stored(), None)) == {"LS-S", "LS-M"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Linen shirt", "linen-shirt"),
        ("  Grüne Mütze – Größe L ", "grune-mutze-groe-l"),
        ("日本", None),
        ("A" * 200, "a" * 56),
        ("--x--", "x"),
    ],
)
def test_ids_made_from_names(name: str, expected: str | None) -> None:
    made = product_id_from(name)
    assert re.fullmatch(ID_PATTERN, made)
    if expected is None:
        assert made.startswith("product-")
    else:
        assert made == expected


def test_a_product_names_each_sku_once_and_prices_are_not_negative() -> None:
    body = {
        "name": "x",
        "description": "",
        "category": "c",
        "status": "draft",
        "images": [],
        "variants": [{"sku": "A", "title": "A", "price": {"amount": 1, "currency": "EUR"}}] * 2,
    }
    with pytest.raises(ValidationError, match="each SKU once"):
        NewProduct.model_validate(body)
    body["variants"] = [{"sku": "A", "title": "A", "price": {"amount": -1, "currency": "EUR"}}]
    with pytest.raises(ValidationError, match="cannot be negative"):
        NewProduct.model_validate(body)
    body["variants"][0]["price"]["amount"] = 0  # free is allowed (a gift)
    assert NewProduct.model_validate(body).variants[0].price.amount == 0


def test_the_audit_keeps_the_fields_that_changed() -> None:
    assert changes({"a": 1, "b": [1]}, {"a": 1, "b": [1, 2], "c": "new"}) == {
        "b": Change(before=[1], after=[1, 2]),
        "c": Change(before=None, after="new"),
    }
    assert changes(None, {"a": 1}) == {"a": Change(before=None, after=1)}
    assert changes({"a": 1}, {"a": 1}) == {}
