"""Write a stack's catalog as a file python -m ops.import_catalog reads back: every category, every product
(drafts and archived ones included) with its variants and prices, and each variant's units on hand.

    python -m ops.export_catalog --api URL (--token T | --user EMAIL [--password P]) [--format json|csv] > catalog.json
        [--concurrency N] [--client-id ID --region R | --stack NAME]

Through the admin API only (GET /categories, GET /admin/products, GET /admin/inventory/{sku}); sign-in as for the
import (ops/admin_api.py). Importing the file into the same stack changes nothing; into a fresh stack, it makes the
same catalog (stock as units on hand; the ledger, thresholds and reservations stay behind). Exit code 0, or 2 when
the tool could not sign in or read the catalog.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "storefront"))  # the storefront package, as the tests and Lambda see it

from ops.admin_api import AdminApi, ApiProblem, SignInError, add_sign_in_arguments, token_source  # noqa: E402
from ops.catalog_file import write_csv  # noqa: E402

PAGE_SIZE = 100  # the admin API's largest page


def export_catalog(api: AdminApi, concurrency: int = 4) -> dict[str, Any]:
    """The catalog as the JSON catalog file has it (docs/catalog-import.md)."""
    categories = [{"id": c["id"], "name": c["name"]} for c in api.call("GET", "/categories").json()["items"]]
    products: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = api.call(
            "GET", "/admin/products", params={"limit": PAGE_SIZE, **({"cursor": cursor} if cursor else {})}
        ).json()
        products += [
            {
                "id": p["id"],
                "name": p["name"],
                "description": p["description"],
                "category": p["category"],
                "status": p["status"],
                "images": p["images"],
                "variants": [{"sku": v["sku"], "title": v["title"], "price": v["price"]} for v in p["variants"]],
            }
            for p in page["items"]
        ]
        cursor = page["next_cursor"]
        if not cursor:
            break
    variants = [variant for product in products for variant in product["variants"]]

    def on_hand(sku: str) -> int:
        return int(api.call("GET", f"/admin/inventory/{quote(sku, safe='')}", params={"limit": 1}).json()["on_hand"])

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="export") as pool:
        for variant, units in zip(variants, pool.map(on_hand, [v["sku"] for v in variants]), strict=True):
            variant["stock"] = units
    return {"categories": categories, "products": products}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.export_catalog", description=__doc__.split("\n\n")[0])
    add_sign_in_arguments(parser)
    parser.add_argument("--format", choices=("json", "csv"), default="json", help="the file's format (default json)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=4,
        choices=range(1, 17),
        metavar="N",
        help="stock levels read at once (1-16, default 4)",
    )
    args = parser.parse_args(argv)
    try:
        with AdminApi(args.api, token_source(args), connections=args.concurrency) as api:
            catalog = export_catalog(api, args.concurrency)
    except (SignInError, ApiProblem) as error:
        print(f"export_catalog: {error}", file=sys.stderr)
        return 2
    if args.format == "csv":
        write_csv(catalog, sys.stdout)
    else:
        json.dump(catalog, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    n_variants = sum(len(p["variants"]) for p in catalog["products"])
    print(
        f"export_catalog: {len(catalog['categories'])} categories, {len(catalog['products'])} products, "
        f"{n_variants} variants",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
