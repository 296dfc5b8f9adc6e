"""The catalog file of ops.import_catalog and ops.export_catalog (ops/catalog_file.py): what a CSV or JSON file says,
what it refuses before anything is sent, and which row an API problem belongs to."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from ops.catalog_file import (
    CSV_COLUMNS,
    FileError,
    major_units,
    minor_units,
    parse_csv,
    parse_json,
    read_catalog,
    stock_count,
    write_csv,
)
from ops.import_catalog import ImportReport, _matches, stock_key

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
HEADER = ",".join(CSV_COLUMNS)


@pytest.mark.parametrize(
    ("price", "currency", "amount"),
    [
        ("49.90", "EUR", 4990),
        ("49.9", "EUR", 4990),
        ("49", "EUR", 4900),
        ("0", "EUR", 0),
        ("-5.00", "EUR", -500),
        ("1200", "JPY", 1200),
        ("1.234", "KWD", 1234),
        ("007.10", "EUR", 710),
    ],
)
def test_prices_in_major_units_become_minor_units_and_back(price: str, currency: str, amount: int) -> None:
    assert minor_units(price, currency) == amount
    assert minor_units(major_units(amount, currency), currency) == amount


@pytest.mark.parametrize(
    ("price", "currency"),
    [
        ("49.999", "EUR"),
        ("12.5", "JPY"),
        ("12,50", "EUR"),
        ("1e3", "EUR"),
        ("", "EUR"),
        ("€12", "EUR"),
        ("12.", "EUR"),
        (".5", "EUR"),
        ("NaN", "EUR"),
        ("１２", "EUR"),
    ],
)
def test_a_price_that_is_not_exactly_an_amount_of_the_currency_is_refused(price: str, currency: str) -> None:
    with pytest.raises(ValueError, match=r"has more decimals than|is not a price like"):
        minor_units(price, currency)


@pytest.mark.parametrize(
    ("value", "count"), [("", None), (None, None), ("0", 0), ("12", 12), (7, 7), ("1000000", 1_000_000)]
)
def test_stock_is_a_count_or_nothing(value: object, count: int | None) -> None:
    assert stock_count(value) == count


@pytest.mark.parametrize("value", ["-3", "2.5", "x", "1000001", -1, 2.0, True, "٣"])
def test_a_stock_that_is_not_a_count_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match=r"is not a number of units|is outside 0\.\.1,000,000"):
        stock_count(value)


def test_the_example_files_say_the_same_catalog() -> None:
    from_csv, from_json = read_catalog(EXAMPLES / "catalog.csv"), read_catalog(EXAMPLES / "catalog.json")
    assert [(p.id, p.body(), [v.stock for v in p.variants]) for p in from_csv.products] == [
        (p.id, p.body(), [v.stock for v in p.variants]) for p in from_json.products
    ]
    assert from_csv.categories == from_json.categories == {"knitwear": "Knitwear", "outerwear": "Outerwear"}
    assert from_csv.rows == from_json.rows == 5 and not from_csv.refusals and not from_json.refusals
    assert all(not product.refusals for product in from_csv.products)
    mug = from_csv.products[1]
    assert (mug.id, mug.where, mug.fields["category"]) == ("enamel-mug", "row 5", "home")  # the id made of its name


def test_a_products_rows_share_its_columns_and_may_leave_them_blank() -> None:
    catalog = parse_csv(f"""{HEADER}
tee,Tee,"Soft, ""heavy"" cotton.
Two lines.",tops,Tops,,a.jpg|b.jpg,TEE-S,Small,20.00,EUR,3
tee,,,,,,,TEE-M,Medium,21.00,eur,
tee,Tee,,tops,,active,,TEE-L,Large,22.00,EUR,0
""")
    [tee] = catalog.products
    assert tee.where == "rows 2-4" and tee.rows == 3 and tee.refusals == []
    assert tee.body() == {
        "name": "Tee",
        "description": 'Soft, "heavy" cotton.\nTwo lines.',
        "category": "tops",
        "status": "active",
        "images": ["a.jpg", "b.jpg"],
        "variants": [
            {"sku": "TEE-S", "title": "Small", "price": {"amount": 2000, "currency": "EUR"}},
            {"sku": "TEE-M", "title": "Medium", "price": {"amount": 2100, "currency": "EUR"}},
            {"sku": "TEE-L", "title": "Large", "price": {"amount": 2200, "currency": "EUR"}},
        ],
    }
    assert [v.stock for v in tee.variants] == [3, None, 0]
    assert [v.where for v in tee.variants] == ["row 2", "row 3", "row 4"]
    assert catalog.categories == {"tops": "Tops"}


def test_what_the_file_itself_gets_wrong_is_refused_with_its_row() -> None:
    catalog = parse_csv(f"""{HEADER}
a,A,,c,,,,A-1,One,1.00,EUR,1
b,B,,c,,,,A-1,One,1.00,EUR,1
d,D,,c,Cats,,,D-1,One,1.001,EUR,x
d,Other,,c,Dogs,,,D-2,Two,1.00,XYZ,-1
,日本茶,,c,,,,J-1,One,1.00,EUR,1
e,E,,c,,,,E-1,One,1.00,EUR,1,extra
""")
    [a, b, d] = catalog.products
    assert a.refusals == []
    assert [(r.where, r.code, r.field) for r in b.refusals] == [("row 3", "duplicate_sku", "sku")]
    assert "A-1 is product a's (row 2)" in b.refusals[0].message
    assert [(r.where, r.code, r.field) for r in d.refusals] == [
        ("row 4", "invalid_price", "price"),
        ("row 4", "invalid_stock", "stock"),
        ("row 5", "conflicting_product_fields", "name"),
        ("row 5", "conflicting_category_name", "category_name"),
        ("row 5", "unsupported_currency", "currency"),
        ("row 5", "invalid_stock", "stock"),
    ]
    assert [(r.where, r.code) for r in catalog.refusals] == [
        ("row 6", "product_id_required"),
        ("row 7", "too_many_cells"),
    ]
    assert catalog.rows == 6
    assert d.refusals[0].line() == "row 4: invalid_price (not sent) [price] '1.001' has more decimals than EUR has (2)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,price\nx,1\n", "the CSV header lacks category, sku, currency"),
        (f"{HEADER},colour\n", "unknown CSV columns colour"),
    ],
)
def test_a_csv_header_that_is_not_a_catalog_is_no_catalog(text: str, message: str) -> None:
    with pytest.raises(FileError, match=message):
        parse_csv(text)


def test_a_json_catalog_passes_its_fields_to_the_api_and_refuses_what_it_cannot_send() -> None:
    catalog = parse_json(
        json.dumps(
            {
                "categories": [{"id": "c", "name": "C"}],
                "products": [
                    {
                        "name": "Plain",
                        "category": "c",
                        "variants": [{"sku": "P-1", "title": "One", "price": {"amount": 1, "currency": "EUR"}}],
                    },
                    {"id": "plain", "name": "Again", "category": "c", "variants": []},
                    {
                        "id": "odd",
                        "name": "Odd",
                        "category": "c",
                        "colour": "red",
                        "variants": [{"sku": "O-1", "title": "One", "price": "free", "stock": -1, "size": "L"}],
                    },
                    "not a product",
                ],
            }
        )
    )
    plain, odd = catalog.products
    assert plain.body() == {
        "name": "Plain",
        "category": "c",
        "description": "",
        "images": [],
        "status": "active",
        "variants": [{"sku": "P-1", "title": "One", "price": {"amount": 1, "currency": "EUR"}}],
    }
    assert odd.body()["colour"] == "red" and odd.body()["variants"][0]["price"] == "free"  # the API refuses those
    assert [(r.where, r.code, r.field) for r in odd.refusals] == [
        ("products[2].variants[0]", "invalid_stock", "stock"),
        ("products[2].variants[0]", "unknown_field", "size"),
    ]
    assert [(r.where, r.code) for r in catalog.refusals] == [
        ("products[1]", "duplicate_product"),
        ("products[3]", "invalid_entry"),
    ]
    assert catalog.categories == {"c": "C"} and catalog.rows == 4


@pytest.mark.parametrize("text", ["[]", '{"items": []}', "{", '{"products": [], "categories": [{"id": 1}]}'])
def test_json_that_is_not_a_catalog_is_no_catalog(text: str) -> None:
    with pytest.raises(FileError):
        parse_json(text)


def test_a_problem_belongs_to_the_row_of_the_variant_it_names() -> None:
    catalog = parse_csv(f"{HEADER}\np,P,,c,,,,P-1,One,1.00,EUR,\np,,,,,,,P-2,Two,1.00,EUR,\n")
    [product] = catalog.products
    assert product.where_of({"field": "variants.1.price.currency"}) == "row 3"
    assert product.where_of({"sku": "P-1", "code": "sku_taken"}) == "row 2"
    assert product.where_of({"field": "category"}) == "rows 2-3"
    assert product.where_of({"field": "variants.7.sku"}) == "rows 2-3"  # no such variant: the product's rows


def test_an_export_written_as_csv_reads_back_as_the_same_catalog() -> None:
    exported = {
        "categories": [{"id": "c", "name": "Cups"}],
        "products": [
            {
                "id": "cup",
                "name": "Cup",
                "description": "Line one,\nline two",
                "category": "c",
                "status": "archived",
                "images": ["https://x.example/1.jpg", "https://x.example/2.jpg"],
                "variants": [
                    {"sku": "CUP-1", "title": "Blue", "price": {"amount": 1999, "currency": "EUR"}, "stock": 4},
                    {"sku": "CUP-2", "title": "Red", "price": {"amount": 5, "currency": "JPY"}, "stock": 0},
                ],
            }
        ],
    }
    out = io.StringIO()
    write_csv(exported, out)
    [cup] = parse_csv(out.getvalue()).products
    product = exported["products"][0]
    assert {"id": cup.id, **cup.body()} == {
        **product,
        "variants": [{k: v for k, v in variant.items() if k != "stock"} for variant in product["variants"]],
    }
    assert [v.stock for v in cup.variants] == [4, 0]


def test_a_product_matches_the_stack_only_when_every_field_it_can_write_is_the_same() -> None:
    current = {
        "id": "p",
        "name": "P",
        "description": "",
        "category": "c",
        "status": "active",
        "images": [],
        "version": 3,
        "updated_at": None,
        "variants": [
            {"sku": "P-1", "title": "One", "price": {"amount": 1, "currency": "EUR"}, "available": 2, "in_stock": True}
        ],
    }
    wanted = {
        "name": "P",
        "description": "",
        "category": "c",
        "status": "active",
        "images": [],
        "variants": [{"sku": "P-1", "title": "One", "price": {"amount": 1, "currency": "EUR"}}],
    }
    assert _matches(current, wanted)
    assert not _matches(current, {**wanted, "status": "draft"})
    assert not _matches(current, {**wanted, "colour": "red"})  # sent, so the API refuses it
    assert not _matches(current, {**wanted, "variants": [{**wanted["variants"][0], "title": "Uno"}]})


def test_a_rows_stock_key_is_made_of_its_sku_and_level_only() -> None:
    assert stock_key("A-1", 5) == stock_key("A-1", 5) != stock_key("A-1", 6) != stock_key("A-2", 5)
    assert len(stock_key("A-1", 5)) <= 255


def test_the_report_says_when_nothing_changed() -> None:
    report = ImportReport(rows=3, dry_run=False)
    report.products["unchanged"] = 2
    assert report.text().splitlines()[-1] == "Nothing changed: the stack already had everything in the file."
    report.products["created"] = 1
    assert "Nothing changed" not in report.text()
    assert ImportReport(rows=3, dry_run=True).text().startswith("3 rows (dry run: nothing was written)")
