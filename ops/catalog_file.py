"""The catalog file that python -m ops.import_catalog reads and python -m ops.export_catalog writes: CSV (one row per
variant) or JSON (the admin API's product shape, with each variant's stock). docs/catalog-import.md has both formats
and docs/examples/ a small file of each.

Reading a file checks only what cannot be sent to the API as it is (a price that is not a number, a stock that is not
a count, a SKU twice in the file...); everything else, unknown categories and statuses included, is the admin API's
to refuse, with its own problem codes. Every product remembers where in the file it came from, so a refusal names
its rows.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO

from storefront.catalog.admin import name_slug
from storefront.money import CURRENCY_EXPONENTS

CSV_COLUMNS = [
    "product_id",
    "name",
    "description",
    "category",
    "category_name",
    "status",
    "images",
    "sku",
    "variant_title",
    "price",
    "currency",
    "stock",
]
PRODUCT_COLUMNS = ["name", "description", "category", "status", "images"]  # the same on every row of a product
IMAGE_SEPARATOR = "|"  # not a character a URL may contain unencoded (RFC 3986)
DEFAULT_STATUS = "active"
MAX_STOCK = 1_000_000  # the admin API's largest adjustment


@dataclass(frozen=True)
class Refusal:
    """Why the rows at `where` were not imported: a problem of the file itself (status None), or the API's."""

    where: str  # "row 12", "rows 12-14", "products[3].variants[1]"
    code: str
    message: str
    field: str | None = None
    status: int | None = None  # the API's HTTP status; None: refused before anything was sent

    def line(self) -> str:
        by = f"{self.status} {self.code}" if self.status else f"{self.code} (not sent)"
        return f"{self.where}: {by}{f' [{self.field}]' if self.field else ''} {self.message}"


@dataclass
class VariantEntry:
    sku: str
    title: str
    price: Any  # Money as JSON, {"amount", "currency"}, or whatever the file had (the API judges it)
    stock: int | None  # the units on hand the file asks for; None: the file says nothing about stock
    where: str

    def body(self) -> dict[str, Any]:
        return {"sku": self.sku, "title": self.title, "price": self.price}


@dataclass
class ProductEntry:
    """One product of the file: its admin API fields, variants, and where it came from."""

    id: str
    fields: dict[str, Any]  # name, description, category, status, images (and, from JSON, anything else given)
    variants: list[VariantEntry]
    where: str  # the product's rows (CSV) or its position (JSON)
    rows: int  # how many rows of the file it stands for (refused together)
    refusals: list[Refusal] = field(default_factory=list)  # problems found in the file: nothing is sent

    @property
    def status(self) -> Any:
        return self.fields.get("status")

    def body(self, status: Any = None) -> dict[str, Any]:
        """The admin API's product body (PUT; POST adds the id)."""
        fields = {**self.fields, "status": self.status if status is None else status}
        return {**fields, "variants": [variant.body() for variant in self.variants]}

    def where_of(self, error: dict[str, Any]) -> str:
        """The row a problem's error names: a variant's (by `variants.N...` or its SKU), else the product's."""
        found = re.match(r"^variants\.(\d+)\b", str(error.get("field") or ""))
        if found and int(found.group(1)) < len(self.variants):
            return self.variants[int(found.group(1))].where
        return next((v.where for v in self.variants if v.sku == error.get("sku")), self.where)


@dataclass
class CatalogFile:
    categories: dict[str, str]  # id -> name, for categories the file names
    products: list[ProductEntry]
    rows: int
    refusals: list[Refusal] = field(default_factory=list)  # rows refused before they made a product


class FileError(Exception):
    """The file cannot be read as a catalog at all (not a row-level problem)."""


def read_catalog(path: Path) -> CatalogFile:
    """A catalog file, by its suffix: .csv or .json."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's byte order mark is not part of the header
    except (OSError, UnicodeDecodeError) as error:
        raise FileError(f"cannot read {path}: {error}") from None
    if path.suffix.lower() == ".csv":
        return parse_csv(text)
    if path.suffix.lower() == ".json":
        return parse_json(text)
    raise FileError(f"{path}: a catalog file is .csv or .json")


# ---------------------------------------------------------------- values


def minor_units(price: str, currency: str) -> int:
    """ "49.90" EUR -> 4990, "1200" JPY -> 1200; ValueError for anything else (more decimals than the currency has)."""
    exponent = CURRENCY_EXPONENTS[currency]
    if not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", price):
        raise ValueError(f"{price!r} is not a price like 49.90")
    try:
        amount = Decimal(price).scaleb(exponent)
    except InvalidOperation:
        raise ValueError(f"{price!r} is not a price like 49.90") from None
    if amount != amount.to_integral_value():
        raise ValueError(f"{price!r} has more decimals than {currency} has ({exponent})")
    return int(amount)


def major_units(amount: int, currency: str) -> str:
    """4990 EUR -> "49.90" (the inverse of minor_units)."""
    exponent = CURRENCY_EXPONENTS[currency]
    return str(Decimal(amount).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent)))


def stock_count(value: Any) -> int | None:
    """The units on hand a file asks for: None for blank, else a whole number 0..MAX_STOCK (ValueError otherwise)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not (
        isinstance(value, int) or (isinstance(value, str) and re.fullmatch("[0-9]+", value))
    ):
        raise ValueError(f"{value!r} is not a number of units (0 or more)")
    count = int(value)
    if not 0 <= count <= MAX_STOCK:
        raise ValueError(f"{count} is outside 0..{MAX_STOCK:,}")
    return count


def _span(rows: list[int]) -> str:
    return (
        f"row {rows[0]}"
        if len(rows) == 1
        else f"rows {rows[0]}-{rows[-1]}"
        if rows == list(range(rows[0], rows[-1] + 1))
        else "rows " + ", ".join(map(str, rows))
    )


def _id_of(given: str, name: str) -> str:
    """The product's id: the one given, else the one the admin API would make of its name (so a rerun finds it)."""
    return given or name_slug(name)


# ---------------------------------------------------------------- CSV


def parse_csv(text: str) -> CatalogFile:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in ("name", "category", "sku", "price", "currency") if name not in header]
    if missing:
        raise FileError(f"the CSV header lacks {', '.join(missing)}; the columns are {', '.join(CSV_COLUMNS)}")
    unknown = [name for name in header if name not in CSV_COLUMNS]
    if unknown:
        raise FileError(f"unknown CSV columns {', '.join(unknown)}; the columns are {', '.join(CSV_COLUMNS)}")
    reader.fieldnames = header
    categories: dict[str, str] = {}
    category_rows: dict[str, int] = {}
    grouped: dict[str, list[tuple[int, dict[str, str]]]] = {}
    refusals: list[Refusal] = []
    rows = 0
    for row in reader:
        rows += 1
        number = rows + 1  # as a spreadsheet numbers it: the header is row 1
        cells = {name: (value or "").strip() for name, value in row.items() if name is not None}
        if None in row:
            refusals.append(Refusal(f"row {number}", "too_many_cells", f"more cells than the {len(header)} columns"))
            continue
        product_id = _id_of(cells.get("product_id", ""), cells.get("name", ""))
        if not product_id:
            refusals.append(
                Refusal(
                    f"row {number}",
                    "product_id_required",
                    "give the product an id (product_id): its name has no letters or digits to make one of",
                    "product_id",
                )
            )
            continue
        grouped.setdefault(product_id, []).append((number, cells))
    products = []
    for product_id, product_rows in grouped.items():
        products.append(_csv_product(product_id, product_rows, categories, category_rows))
    return _check_skus(CatalogFile(categories, products, rows, refusals))


def _csv_product(
    product_id: str, rows: list[tuple[int, dict[str, str]]], categories: dict[str, str], category_rows: dict[str, int]
) -> ProductEntry:
    first_number, first = rows[0]
    defaults = {"status": DEFAULT_STATUS}
    numbers = [number for number, _ in rows]
    fields: dict[str, Any] = {
        "name": first.get("name", ""),
        "description": first.get("description", ""),
        "category": first.get("category", ""),
        "status": first.get("status") or defaults["status"],
        "images": [url.strip() for url in first.get("images", "").split(IMAGE_SEPARATOR) if url.strip()],
    }
    product = ProductEntry(product_id, fields, [], _span(numbers), len(rows))
    for number, cells in rows:
        where = f"row {number}"
        # A product's own columns may be left blank after its first row; filled in, they must agree with it.
        for column in PRODUCT_COLUMNS:
            if cells.get(column) and cells[column] != (first.get(column) or defaults.get(column, "")):
                product.refusals.append(
                    Refusal(
                        where,
                        "conflicting_product_fields",
                        f"{column} differs from row {first_number} of product {product_id}",
                        column,
                    )
                )
        if name := cells.get("category_name"):
            category = cells.get("category") or first.get("category", "")
            if categories.setdefault(category, name) != name:
                product.refusals.append(
                    Refusal(
                        where,
                        "conflicting_category_name",
                        f"category {category} is named {categories[category]!r} in row {category_rows[category]}",
                        "category_name",
                    )
                )
            category_rows.setdefault(category, number)
        currency = cells.get("currency", "").upper()
        price: Any = None
        if currency not in CURRENCY_EXPONENTS:
            product.refusals.append(
                Refusal(
                    where,
                    "unsupported_currency",
                    f"{cells.get('currency')!r} is not an ISO 4217 code this shop knows",
                    "currency",
                )
            )
        else:
            try:
                price = {"amount": minor_units(cells.get("price", ""), currency), "currency": currency}
            except ValueError as error:
                product.refusals.append(Refusal(where, "invalid_price", str(error), "price"))
        try:
            stock = stock_count(cells.get("stock"))
        except ValueError as error:
            product.refusals.append(Refusal(where, "invalid_stock", str(error), "stock"))
            stock = None
        product.variants.append(VariantEntry(cells.get("sku", ""), cells.get("variant_title", ""), price, stock, where))
    return product


def write_csv(catalog: dict[str, Any], out: TextIO) -> None:
    """The export as CSV: one row per variant, with the product's columns on every row."""
    names = {category["id"]: category["name"] for category in catalog["categories"]}
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for product in catalog["products"]:
        for variant in product["variants"]:
            price = variant["price"]
            writer.writerow(
                {
                    "product_id": product["id"],
                    "name": product["name"],
                    "description": product["description"],
                    "category": product["category"],
                    "category_name": names.get(product["category"], ""),
                    "status": product["status"],
                    "images": IMAGE_SEPARATOR.join(product["images"]),
                    "sku": variant["sku"],
                    "variant_title": variant["title"],
                    "price": major_units(price["amount"], price["currency"]),
                    "currency": price["currency"],
                    "stock": "" if variant.get("stock") is None else variant["stock"],
                }
            )


# ---------------------------------------------------------------- JSON


def parse_json(text: str) -> CatalogFile:
    try:
        document = json.loads(text)
    except ValueError as error:
        raise FileError(f"not JSON: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("products"), list):
        raise FileError('a JSON catalog is {"categories": [...], "products": [...]} (docs/catalog-import.md)')
    categories: dict[str, str] = {}
    refusals: list[Refusal] = []
    for index, category in enumerate(document.get("categories") or []):
        if not (
            isinstance(category, dict) and isinstance(category.get("id"), str) and isinstance(category.get("name"), str)
        ):
            raise FileError(f'categories[{index}] is not {{"id": ..., "name": ...}}')
        categories[category["id"]] = category["name"]
    products: list[ProductEntry] = []
    seen: dict[str, str] = {}
    for index, entry in enumerate(document["products"]):
        where = f"products[{index}]"
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("variants"), list)
            or not all(isinstance(variant, dict) for variant in entry["variants"])
        ):
            refusals.append(Refusal(where, "invalid_entry", "a product is an object with a list of variant objects"))
            continue
        product_id = _id_of(str(entry.get("id") or ""), str(entry.get("name") or ""))
        if not product_id:
            refusals.append(
                Refusal(
                    where,
                    "product_id_required",
                    "give the product an id: its name has no letters or digits to make one of",
                    "id",
                )
            )
            continue
        if product_id in seen:
            refusals.append(
                Refusal(where, "duplicate_product", f"product {product_id} is also {seen[product_id]}", "id")
            )
            continue
        seen[product_id] = where
        fields = {
            "description": "",
            "images": [],
            "status": DEFAULT_STATUS,
            **{k: v for k, v in entry.items() if k not in ("id", "variants")},
        }
        product = ProductEntry(product_id, fields, [], where, len(entry["variants"]) or 1)
        for number, variant in enumerate(entry["variants"]):
            variant_where = f"{where}.variants[{number}]"
            try:
                stock = stock_count(variant.get("stock"))
            except ValueError as error:
                product.refusals.append(Refusal(variant_where, "invalid_stock", str(error), "stock"))
                stock = None
            unknown = sorted(set(variant) - {"sku", "title", "price", "stock"})
            if unknown:  # the API would refuse them too; said here, as they are not sent
                product.refusals.append(
                    Refusal(
                        variant_where,
                        "unknown_field",
                        f"a variant has sku, title, price and stock, not {', '.join(unknown)}",
                        unknown[0],
                    )
                )
            product.variants.append(
                VariantEntry(variant.get("sku"), variant.get("title"), variant.get("price"), stock, variant_where)
            )
        products.append(product)
    return _check_skus(CatalogFile(categories, products, sum(p.rows for p in products) + len(refusals), refusals))


# ---------------------------------------------------------------- checks across the file


def _check_skus(catalog: CatalogFile) -> CatalogFile:
    """A SKU belongs to one product: a later product naming a SKU the file gave already is refused (the API would
    give it to whichever product it heard of first; the file's order decides here, however many requests run)."""
    owners: dict[str, tuple[str, str]] = {}
    for product in catalog.products:
        for variant in product.variants:
            if not isinstance(variant.sku, str) or not variant.sku:
                continue  # the API says what is wrong with it
            owner = owners.setdefault(variant.sku, (product.id, variant.where))
            if owner[0] != product.id:
                product.refusals.append(
                    Refusal(
                        variant.where, "duplicate_sku", f"SKU {variant.sku} is product {owner[0]}'s ({owner[1]})", "sku"
                    )
                )
    return catalog
