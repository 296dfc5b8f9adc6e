"""python -m ops.import_catalog and python -m ops.export_catalog against the local cloud, over HTTP through the admin
API: a 500-row file with bad rows lands its good rows and reports each bad one with its row and reason; a rerun
changes nothing and says so (and does not put back stock sold since); export and import round-trip."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from local_cloud.cloud import LocalCloud
from local_cloud.demo_data import PRODUCTS as DEMO_PRODUCTS
from ops import export_catalog, import_catalog
from ops.catalog_file import CSV_COLUMNS
from ops.catalog_file import write_csv as write_csv_export
from tests.admin_api import bearer
from tests.tool_output import tool_stdout

PRODUCTS = 200  # with 1-4 variants each: 500 rows
DEMO = {product_id for product_id, *_ in DEMO_PRODUCTS}


def token(api: httpx.Client) -> str:
    return bearer(api, "admin")["Authorization"].removeprefix("Bearer ")


def five_hundred_rows(prefix: str) -> tuple[list[dict[str, Any]], dict[int, tuple[str, str | None]]]:
    """(rows, {row number: (problem code, field)}): 200 products of 1-4 variants (500 rows, product columns on each
    product's first row only, as spreadsheets have them) and, among them, one bad row each of the kinds a merchant's
    spreadsheet has. Every tenth row is a product of one variant: those are the ones spoiled."""
    category = f"{prefix}-cat"
    rows: list[dict[str, Any]] = []
    for number in range(PRODUCTS):
        product_id = f"{prefix}-p{number:03d}"
        for size in "SMLX"[: 1 + number % 4]:
            first = size == "S"
            rows.append(
                {
                    "product_id": product_id,
                    "name": f"Product {number}" if first else "",
                    "description": "Imported by a test." if first else "",
                    "category": category if first else "",
                    "status": "active" if first else "",
                    "sku": f"{product_id.upper()}-{size}",
                    "variant_title": f"Size {size}",
                    "price": f"{10 + number % 50}.{number % 100:02d}",
                    "currency": "EUR",
                    "stock": str(number % 7),
                }
            )
    rows[0]["category_name"] = "Imported by a test"
    rows[1]["status"], rows[1]["images"] = "archived", f"https://images.example.com/{prefix}/1.jpg"
    bad: dict[int, tuple[str, str | None]] = {}

    def spoil(index: int, code: str, field: str | None, **cells: Any) -> None:
        assert index % 10 == 0 and rows[index]["name"], "a product of one row"
        rows[index].update(cells)
        bad[index + 2] = (code, field)  # the header is row 1

    spoil(10, "unknown_category", "category", category=f"{prefix}-nowhere")
    spoil(20, "duplicate_sku", "sku", sku=rows[2]["sku"])  # a SKU an earlier row of the file has
    spoil(30, "sku_taken", "sku", sku="LINEN-SHIRT-M")  # a SKU of the stack's demo shirt
    spoil(40, "invalid_price", "price", price="12,50")
    spoil(50, "invalid_price", "price", price="9.999")
    spoil(60, "validation_error", "variants.0.price", price="-5.00")
    spoil(70, "validation_error", "status", status="published")
    spoil(80, "invalid_stock", "stock", stock="-3")
    spoil(90, "unsupported_currency", "variants.0.price.currency", currency="USD")  # not one the shop sells
    spoil(100, "validation_error", "images.0", images="ftp://images.example.com/x.jpg")
    spoil(110, "validation_error", "variants.0.sku", sku="lower-case")
    spoil(120, "product_id_required", "product_id", product_id="", name="日本茶")
    # A later row of product p002 (rows 5-7) that names it differently: the whole product is refused.
    rows.append({**rows[3], "name": "Another name", "sku": rows[3]["sku"] + "X"})
    bad[len(rows) + 1] = ("conflicting_product_fields", "name")
    return rows, bad


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def run_import(
    gateway: Any, file: Path, api_token: str, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str]:
    code = import_catalog.main([str(file), "--api", gateway.url, "--token", api_token, *extra])
    return code, tool_stdout(capsys)


def last_audit_entry(api: httpx.Client, admin: dict[str, str]) -> str | None:
    """The newest entry's id; None while the worker's stack has none (this module may be the first to run)."""
    newest = api.get("/admin/audit", params={"limit": 1}, headers=admin).json()["items"]
    return newest[0]["id"] if newest else None


@pytest.fixture
def prefix(cloud: LocalCloud) -> Iterator[str]:
    """The prefix of the test's product ids, SKUs and category, whose items leave the catalog afterwards: the worker's
    stack is shared, and the modules after this one page through the whole public catalog (test_catalog_api walks it
    one product a page), which 200 imported products would make 400 pages longer."""
    prefix = f"imp{uuid.uuid4().hex[:8]}"
    yield prefix
    dynamodb, table = cloud.client("dynamodb"), cloud.physical_id("CatalogTable")
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ProjectionExpression="pk, sk"):
        for item in page["Items"]:
            pk, sk = item["pk"]["S"], item["sk"]["S"]
            if pk.startswith((f"PRODUCT#{prefix}", f"VARIANT#{prefix.upper()}")) or (
                pk == "CATEGORY" and sk.startswith(prefix)
            ):
                dynamodb.delete_item(TableName=table, Key=item)


@pytest.mark.slow("bulk")
def test_export_and_import_round_trip(
    api: httpx.Client, gateway: Any, prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api_token = token(api)
    source = {
        "categories": [{"id": f"{prefix}-cat", "name": "Round trip"}],
        "products": [
            {
                "id": f"{prefix}-a",
                "name": "Café au lait bowl",
                "description": "Ceramic, 500 ml.\nDishwasher safe.",
                "category": f"{prefix}-cat",
                "status": "active",
                "images": ["https://images.example.com/a.jpg"],
                "variants": [
                    {
                        "sku": f"{prefix.upper()}-A-1",
                        "title": "Blue",
                        "price": {"amount": 2450, "currency": "EUR"},
                        "stock": 7,
                    },
                    {
                        "sku": f"{prefix.upper()}-A-2",
                        "title": "Grey",
                        "price": {"amount": 0, "currency": "EUR"},
                        "stock": 0,
                    },
                ],
            },
            {
                "id": f"{prefix}-b",
                "name": "Old bowl",
                "description": "",
                "category": f"{prefix}-cat",
                "status": "archived",
                "images": [],
                "variants": [
                    {
                        "sku": f"{prefix.upper()}-B-1",
                        "title": "One size",
                        "price": {"amount": 1000, "currency": "EUR"},
                        "stock": 3,
                    }
                ],
            },
        ],
    }
    file = tmp_path / "source.json"
    file.write_text(json.dumps(source))
    code, report = run_import(gateway, file, api_token, capsys)
    assert code == 0, report

    assert export_catalog.main(["--api", gateway.url, "--token", api_token]) == 0
    exported = json.loads(tool_stdout(capsys))
    mine = [p for p in exported["products"] if p["id"].startswith(prefix)]
    assert sorted(mine, key=lambda p: p["id"]) == source["products"]
    assert source["categories"][0] in exported["categories"]

    # The export imports back as no change, as JSON and as CSV: these products and the demo catalog's (the rest of
    # the export is other tests' products, left out to keep this test short).
    exported["products"] = [p for p in exported["products"] if p["id"].startswith(prefix) or p["id"] in DEMO]
    assert len(exported["products"]) == len(DEMO) + 2
    (tmp_path / "export.json").write_text(json.dumps(exported))
    code, report = run_import(gateway, tmp_path / "export.json", api_token, capsys)
    assert (code, report.splitlines()[-1]) == (0, "Nothing changed: the stack already had everything in the file."), (
        report
    )
    exported_csv = io.StringIO()
    write_csv_export(exported, exported_csv)
    (tmp_path / "export.csv").write_text(exported_csv.getvalue())
    code, report = run_import(gateway, tmp_path / "export.csv", api_token, capsys)
    assert (code, report.splitlines()[-1]) == (0, "Nothing changed: the stack already had everything in the file."), (
        report
    )
    assert export_catalog.main(["--api", gateway.url, "--token", api_token, "--format", "csv"]) == 0
    assert sum(r["product_id"].startswith(prefix) for r in csv.DictReader(io.StringIO(tool_stdout(capsys)))) == 3


@pytest.mark.slow("bulk")
def test_a_500_row_file_lands_its_good_rows_reports_the_bad_ones_and_a_rerun_changes_nothing(
    api: httpx.Client, gateway: Any, prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows, bad = five_hundred_rows(prefix)
    file = write_csv(tmp_path / "catalog.csv", rows)
    assert len(rows) == 500 + 1 and len(bad) == 13
    api_token = token(api)
    admin = {"Authorization": f"Bearer {api_token}"}

    code, report = run_import(gateway, file, api_token, capsys, "--concurrency", "4")
    assert code == 1, report
    for number, (problem, field) in bad.items():
        line = next((line for line in report.splitlines() if line.strip().startswith(f"row {number}:")), None)
        assert line is not None, f"row {number} ({problem}) is not reported:\n{report}"
        assert problem in line and f"[{field}]" in line, line
    conflicting = rows[3]["product_id"]

    # The good rows landed: products with their status, prices, images and stock; the archived one is not for sale.
    good = {r["product_id"] for i, r in enumerate(rows) if i + 2 not in bad and r["product_id"] != conflicting}
    listed = []
    cursor = None
    while True:
        page = api.get(
            "/admin/products", params={"limit": 100, **({"cursor": cursor} if cursor else {})}, headers=admin
        ).json()
        listed += [p for p in page["items"] if p["id"].startswith(prefix)]
        if not (cursor := page["next_cursor"]):
            break
    assert {p["id"] for p in listed} == good
    by_id = {p["id"]: p for p in listed}
    first = by_id[f"{prefix}-p000"]
    assert (first["status"], first["variants"][0]["price"]) == ("active", {"amount": 1000, "currency": "EUR"})
    archived = by_id[rows[1]["product_id"]]
    assert archived["status"] == "archived" and archived["images"] == [rows[1]["images"]]
    assert api.get(f"/products/{archived['id']}").status_code == 404
    assert api.get(f"/products/{first['id']}").json()["variants"][0]["available"] == 0  # stock "0": row 2
    sample = rows[6]  # p003: four variants, 3 units each
    level = api.get(f"/admin/inventory/{sample['sku']}", headers=admin).json()
    assert (level["on_hand"], level["ledger"]["items"][0]["reason"]) == (3, "received")
    assert api.get("/categories").json()["items"].count({"id": f"{prefix}-cat", "name": "Imported by a test"}) == 1
    # Bad rows wrote nothing: no product (so the SKUs they named belong to nobody new).
    for number in bad:
        if product_id := rows[number - 2]["product_id"]:
            assert api.get(f"/admin/products/{product_id}", headers=admin).status_code == 404, number

    # A rerun of the same file writes nothing (no audit entry) and says so; the same rows are refused again.
    before = last_audit_entry(api, admin)
    code, again = run_import(gateway, file, api_token, capsys)
    assert code == 1
    assert "Nothing changed: the stack already had everything in the file that was not refused." in again, again
    assert sorted(line for line in again.splitlines() if line.startswith("  row")) == sorted(
        line for line in report.splitlines() if line.startswith("  row")
    )
    assert last_audit_entry(api, admin) == before

    # Units sold (taken away) after the import are not put back by another run of the file: each row's level is set
    # once, by its Idempotency-Key.
    taken = api.post(
        f"/admin/inventory/{sample['sku']}/adjustments",
        headers={**admin, "Idempotency-Key": prefix},
        json={"delta": -1, "reason": "damaged"},
    )
    assert taken.status_code == 201, taken.text
    sample_rows = [r for r in rows if r["product_id"] == sample["product_id"]]
    code, third = run_import(gateway, write_csv(tmp_path / "sample.csv", sample_rows), api_token, capsys)
    assert f"{sample['sku']} has 2 on hand, not the file's 3: an earlier import set 3" in third, third
    assert api.get(f"/admin/inventory/{sample['sku']}", headers=admin).json()["on_hand"] == 2


def test_an_operator_signs_in_with_a_password_through_the_local_pool(
    api: httpx.Client, gateway: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--user and --password: Cognito's USER_PASSWORD_AUTH with the pool the local stack names (GET /dev/auth/config),
    unsigned; a dry run reads the stack and writes nothing."""
    email, password = f"importer-{uuid.uuid4().hex[:8]}@example.com", "Import-Passw0rd!x"
    gateway.user_pool.create_user(email, password, ["admin"])
    file = Path(__file__).resolve().parents[2] / "docs/examples/catalog.csv"
    before = last_audit_entry(api, bearer(api, "admin"))
    code = import_catalog.main([str(file), "--api", gateway.url, "--user", email, "--password", password, "--dry-run"])
    report = tool_stdout(capsys)
    assert code == 0, report
    assert report.startswith(f"Checked {file} against {gateway.url}: 5 rows (dry run: nothing was written)"), report
    assert last_audit_entry(api, bearer(api, "admin")) == before

    staff_email = f"staff-{uuid.uuid4().hex[:8]}@example.com"
    gateway.user_pool.create_user(staff_email, password, ["staff"])
    code = import_catalog.main([str(file), "--api", gateway.url, "--user", staff_email, "--password", password])
    report = tool_stdout(capsys)
    assert code == 1 and "403 forbidden" in report, report  # staff may not change the catalog

    code = import_catalog.main([str(file), "--api", gateway.url, "--user", email, "--password", "Wrong-passw0rd!"])
    assert code == 2 and "sign-in refused" in capsys.readouterr().err


def test_a_token_the_api_refuses_and_a_file_that_is_not_a_catalog_stop_at_once(
    gateway: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "catalog.csv"
    file.write_text("product_id,name,price\nx,X,1\n")
    assert import_catalog.main([str(file), "--api", gateway.url, "--token", "not-a-token"]) == 2
    assert "the CSV header lacks category, sku, currency" in capsys.readouterr().err
    assert (
        import_catalog.main(
            [
                str(Path(__file__).resolve().parents[2] / "docs/examples/catalog.json"),
                "--api",
                gateway.url,
                "--token",
                "not-a-token",
            ]
        )
        == 2
    )
    assert "the API refused the token (401)" in capsys.readouterr().err
