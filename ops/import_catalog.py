"""Load a catalog file into a stack through its admin API: categories, products with variants and prices, status,
image URLs and stock levels.

    python -m ops.import_catalog FILE.csv|FILE.json --api URL (--token T | --user EMAIL [--password P]) [--dry-run]
        [--concurrency N] [--client-id ID --region R | --stack NAME]

The file format (CSV, one row per variant, or JSON) is in docs/catalog-import.md, with an example of each in
docs/examples/. Sign-in: ops/admin_api.py (locally, --user admin@example.com with the password `make dev` prints).

Everything goes through the admin API, as an operator's clicks would: the API's rules, its audit log and the stock
function (the only writer of stock) apply. It is idempotent: a second run of the same file changes nothing and says
so.
  - Categories are created (POST) or renamed (PUT) when the file names them with a name that differs.
  - A product missing from the stack is created (an archived one is created as a draft and then archived); one that
    differs from the file is replaced (PUT) with If-Match: the version it was compared with, so a change an operator
    makes meanwhile is read again (412) before it is written over. One that matches is not written.
  - Stock: a variant's `stock` is the units on hand the file asks for. The tool reads the level and adjusts by the
    difference (reason `received` for a SKU with none on hand, else `correction`), with an Idempotency-Key made from
    the SKU and that level. So each row's level is applied once: retried after a lost answer, the adjustment is made
    once; and a later run of the same file does not put back what was sold since: it says the level was set by an
    earlier import. To set a level again, change it in the file, or adjust it on the admin page.
Rows the file or the API refuses are reported with their row numbers, the API's status and problem code, and the
field it names; their products are not written (a refused stock level leaves its product imported).

--dry-run reads the stack and says what would change; nothing is written, and only the file's own problems show
(the API's refusals show on a real run). Exit code 0 when every row was imported (or already was), 1 when some were
refused, 2 when the file could not be read or the tool could not sign in.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "storefront"))  # the storefront package, as the tests and Lambda see it

from ops.admin_api import AdminApi, ApiProblem, SignInError, add_sign_in_arguments, token_source  # noqa: E402
from ops.catalog_file import CatalogFile, FileError, ProductEntry, Refusal, VariantEntry, read_catalog  # noqa: E402

ADJUSTMENT_NOTE = "catalog import"
# What a dry run counts, instead of what it would have done.
PLANNED = {"category": ("to create", "to rename"), "product": ("to create", "to update"), "stock": ("to set",)}
COMPARED = ("name", "description", "category", "status", "images")


def stock_key(sku: str, on_hand: int) -> str:
    """The Idempotency-Key of the adjustment that sets `sku` to `on_hand` units: the same for every run of a file
    that asks for that level, so it is made once (the stock function keeps every key it has used)."""
    return "catalog-import-" + hashlib.sha256(f"{sku}\n{on_hand}".encode()).hexdigest()[:40]


@dataclass
class ProductResult:
    """What became of one product of the file (made in a worker thread, counted in the main one)."""

    entry: ProductEntry
    action: str = ""  # created, updated, unchanged; "to create", "to update" (dry run); "" when refused
    stock: Counter[str] = field(default_factory=Counter)  # set, "to set", unchanged, "set earlier"
    refusals: list[Refusal] = field(default_factory=list)
    refused_rows: int = 0
    notes: list[str] = field(default_factory=list)

    def refuse(self, where: str, problem: ApiProblem, *, rows: int, what: str = "") -> None:
        first, *_ = problem.errors or [{}]
        self.refusals.append(
            Refusal(
                where,
                problem.code,
                f"{what}{problem.detail}" + (f" ({first['message']})" if first.get("message") else ""),
                first.get("field") or ("sku" if first.get("sku") else None),
                problem.status,
            )
        )
        self.refused_rows += rows


@dataclass
class ImportReport:
    rows: int
    dry_run: bool
    categories: Counter[str] = field(default_factory=Counter)
    products: Counter[str] = field(default_factory=Counter)
    stock: Counter[str] = field(default_factory=Counter)
    refusals: list[Refusal] = field(default_factory=list)
    refused_rows: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return (
            self.categories["created"]
            + self.categories["renamed"]
            + self.products["created"]
            + self.products["updated"]
            + self.stock["set"]
        )

    def add(self, result: ProductResult) -> None:
        if result.action:
            self.products[result.action] += 1
        self.stock.update(result.stock)
        self.refusals += result.refusals
        self.refused_rows += result.refused_rows
        self.notes += result.notes

    def text(self) -> str:
        def counts(counter: Counter[str], *names: str) -> str:
            return ", ".join(f"{counter[name]} {name}" for name in names if counter[name]) or "none"

        lines = [
            f"{self.rows} rows{' (dry run: nothing was written)' if self.dry_run else ''}",
            f"  categories  {counts(self.categories, 'created', 'renamed', *PLANNED['category'], 'unchanged')}",
            f"  products    {counts(self.products, 'created', 'updated', *PLANNED['product'], 'unchanged')}",
            f"  stock       {counts(self.stock, 'set', *PLANNED['stock'], 'unchanged', 'set earlier')}",
        ]
        lines += [f"  note: {note}" for note in self.notes]
        if self.refusals:
            lines.append(f"Refused: {self.refused_rows} rows ({len(self.refusals)} reasons)")
            lines += [f"  {refusal.line()}" for refusal in self.refusals]
        if not self.dry_run and not self.changed:
            lines.append(
                "Nothing changed: the stack already had everything in the file"
                + (" that was not refused." if self.refusals else ".")
            )
        return "\n".join(lines)


class Importer:
    def __init__(self, api: AdminApi, dry_run: bool = False) -> None:
        self._api = api
        self._dry_run = dry_run

    def run(self, catalog: CatalogFile, concurrency: int = 4, progress: Any = None) -> ImportReport:
        """Import `catalog`; `progress` (a tqdm bar, or None) advances by rows."""
        report = ImportReport(
            rows=catalog.rows,
            dry_run=self._dry_run,
            refusals=list(catalog.refusals),
            refused_rows=len(catalog.refusals),
        )
        if progress is not None:
            progress.update(len(catalog.refusals))
        self._categories(catalog.categories, report)
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="import") as pool:
            # In the file's order, so the report lists refusals as the file has them.
            for result in pool.map(self._product, catalog.products):
                report.add(result)
                if progress is not None:
                    progress.update(result.entry.rows)
        return report

    # ---------------------------------------------------------------- categories

    def _categories(self, wanted: dict[str, str], report: ImportReport) -> None:
        existing = {c["id"]: c["name"] for c in self._api.call("GET", "/categories").json()["items"]}
        for category_id, name in wanted.items():
            try:
                if existing.get(category_id) == name:
                    report.categories["unchanged"] += 1
                elif self._dry_run:
                    report.categories["to rename" if category_id in existing else "to create"] += 1
                elif category_id in existing:
                    self._api.call("PUT", f"/admin/categories/{quote(category_id, safe='')}", json={"name": name})
                    report.categories["renamed"] += 1
                else:
                    self._api.call("POST", "/admin/categories", json={"id": category_id, "name": name})
                    report.categories["created"] += 1
            except ApiProblem as problem:  # its products will be refused as unknown_category
                first, *_ = problem.errors or [{}]
                report.refusals.append(
                    Refusal(f"category {category_id}", problem.code, problem.detail, first.get("field"), problem.status)
                )

    # ---------------------------------------------------------------- products

    def _product(self, entry: ProductEntry) -> ProductResult:
        result = ProductResult(entry)
        if entry.refusals:
            result.refusals += entry.refusals
            result.refused_rows += entry.rows
            return result
        try:
            current = self._read(entry.id)
            result.action = self._create(entry) if current is None else self._update(entry, current)
        except ApiProblem as problem:
            where = entry.where_of((problem.errors or [{}])[0])
            result.refuse(
                where if where == entry.where else f"{where} ({entry.where} not imported)", problem, rows=entry.rows
            )
            return result
        for variant in entry.variants:
            if variant.stock is not None:
                self._stock(variant, result, new=result.action == "to create")
        return result

    def _read(self, product_id: str) -> dict[str, Any] | None:
        try:
            return self._api.call("GET", f"/admin/products/{quote(product_id, safe='')}").json()
        except ApiProblem as problem:
            if problem.status == 404 and problem.code == "not_found":
                return None
            raise

    def _create(self, entry: ProductEntry) -> str:
        if self._dry_run:
            return "to create"
        archived = entry.status == "archived"  # POST makes drafts and active products only
        try:
            created = self._api.call(
                "POST", "/admin/products", json={"id": entry.id, **entry.body("draft" if archived else None)}
            ).json()
        except ApiProblem as problem:
            if problem.code != "product_exists":
                raise
            # Made meanwhile: by this tool's own earlier attempt whose answer was lost, or by someone else.
            current = self._read(entry.id)
            if current is None:
                raise
            return self._update(entry, current)
        if archived:
            self._api.call(
                "DELETE", f"/admin/products/{quote(entry.id, safe='')}", headers={"If-Match": f'"{created["version"]}"'}
            )
        return "created"

    def _update(self, entry: ProductEntry, current: dict[str, Any]) -> str:
        for attempt in range(2):
            if _matches(current, entry.body()):
                return "unchanged"
            if self._dry_run:
                return "to update"
            try:
                written = self._api.call(
                    "PUT",
                    f"/admin/products/{quote(entry.id, safe='')}",
                    json=entry.body(),
                    headers={"If-Match": f'"{current["version"]}"'},
                ).json()
            except ApiProblem as problem:
                if problem.code != "version_conflict" or attempt:
                    raise
                current = self._read(entry.id) or current  # changed meanwhile: compare with what it is now
                continue
            # The API trims text as it stores it: a PUT that changed nothing keeps the version.
            return "updated" if written["version"] != current["version"] else "unchanged"
        raise AssertionError("unreachable: the second attempt returns or raises")

    # ---------------------------------------------------------------- stock

    def _stock(self, variant: VariantEntry, result: ProductResult, new: bool) -> None:
        path = f"/admin/inventory/{quote(variant.sku, safe='')}"
        try:
            on_hand = 0 if new else self._api.call("GET", path, params={"limit": 1}).json()["on_hand"]
            delta = variant.stock - on_hand  # type: ignore[operator]
            if delta == 0:
                result.stock["unchanged"] += 1
                return
            if self._dry_run:
                result.stock["to set"] += 1
                return
            body = {"delta": delta, "reason": "received" if on_hand == 0 else "correction", "note": ADJUSTMENT_NOTE}
            level = self._api.call(
                "POST",
                f"{path}/adjustments",
                json=body,
                headers={"Idempotency-Key": stock_key(variant.sku, variant.stock)},
            ).json()
        except ApiProblem as problem:
            if problem.code == "idempotency_key_reused":
                level = {"on_hand": on_hand}
            else:
                result.refuse(variant.where, problem, rows=1, what=f"stock of {variant.sku} not set: ")
                return
        if level["on_hand"] == on_hand:  # the key was used before: this level was set by an earlier import
            result.stock["set earlier"] += 1
            result.notes.append(
                f"{variant.where}: {variant.sku} has {on_hand} on hand, not the file's "
                f"{variant.stock}: an earlier import set {variant.stock} (sales and adjustments "
                f"since are kept); change the level in the file or on the admin page to set it again"
            )
            return
        result.stock["set"] += 1


def _matches(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether the stack's product already is what the file says (a product body, as PUT takes it)."""
    have = {name: current.get(name) for name in COMPARED}
    have["variants"] = [{"sku": v["sku"], "title": v["title"], "price": v["price"]} for v in current["variants"]]
    return have == wanted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.import_catalog", description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="the catalog: FILE.csv or FILE.json (docs/catalog-import.md)")
    add_sign_in_arguments(parser)
    parser.add_argument("--dry-run", action="store_true", help="say what would change; write nothing")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=4,
        choices=range(1, 17),
        metavar="N",
        help="products imported at once (1-16, default 4)",
    )
    args = parser.parse_args(argv)
    try:
        catalog = read_catalog(args.file)
    except FileError as error:
        print(f"import_catalog: {error}", file=sys.stderr)
        return 2
    from tqdm import tqdm

    try:
        with (
            AdminApi(args.api, token_source(args), connections=args.concurrency) as api,
            tqdm(total=catalog.rows, unit="row", desc=args.file.name, disable=None) as bar,
        ):
            report = Importer(api, dry_run=args.dry_run).run(catalog, args.concurrency, bar)
    except SignInError as error:
        print(f"import_catalog: {error}", file=sys.stderr)
        return 2
    except ApiProblem as problem:  # the categories could not even be read
        print(f"import_catalog: {args.api}: {problem}", file=sys.stderr)
        return 2
    print(f"{'Checked' if args.dry_run else 'Imported'} {args.file} against {args.api}: {report.text()}")
    return 1 if report.refusals else 0


if __name__ == "__main__":
    sys.exit(main())
