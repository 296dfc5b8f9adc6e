"""How fast python -m ops.import_catalog loads a catalog through the admin API of the local stack: 1,000 products
(1-3 variants each, 2,000 rows, every row with a stock level) imported into an empty catalog, then the same file
again (nothing to change), at several concurrencies.

The local cloud runs here, with its gateway, as `make dev` runs it; the import runs as the command a merchant types,
in its own process (`python -m ops.import_catalog FILE --api URL --token T --concurrency N`), timed from start to
exit. Each concurrency imports products of its own, so every first run creates everything.

    PYTHONPATH=layers/storefront:. .venv/bin/python -m benchmarks.catalog_import [--products 1000] [--concurrency 1 4 8]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ops.catalog_file import CSV_COLUMNS

ROOT = Path(__file__).resolve().parent.parent


def catalog_rows(prefix: str, products: int, category: str) -> list[dict[str, str]]:
    """`products` products of 1-3 variants (2 on average), the product's columns on its first row."""
    rows = []
    for number in range(products):
        product_id = f"{prefix}-{number:05d}"
        for size in "SML"[: 1 + number % 3]:
            first = size == "S"
            rows.append(
                {
                    "product_id": product_id,
                    "name": f"Product {number}" if first else "",
                    "description": "A product of the import benchmark." if first else "",
                    "category": category if first else "",
                    "category_name": "Benchmark" if first else "",
                    "status": "active" if first else "",
                    "images": "",
                    "sku": f"{product_id.upper()}-{size}",
                    "variant_title": size,
                    "price": f"{5 + number % 90}.{number % 100:02d}",
                    "currency": "EUR",
                    "stock": str(1 + number % 20),
                }
            )
    return rows


def run_import(file: Path, api: str, token: str, concurrency: int) -> tuple[float, str]:
    """(seconds from start to exit, the report) of one run of the command."""
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ops.import_catalog",
            str(file),
            "--api",
            api,
            "--token",
            token,
            "--concurrency",
            str(concurrency),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'layers' / 'storefront'}{os.pathsep}{ROOT}"},
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"the import failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return seconds, done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    args = parser.parse_args(argv)

    from local_cloud.__main__ import _start_cloud
    from local_cloud.gateway import Gateway

    print(
        f"Catalog import through the admin API of the local stack (Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f})\n",
        flush=True,
    )
    with contextlib.ExitStack() as stack:
        cloud = _start_cloud(with_demo_data=False)
        stack.callback(cloud.stop)
        gateway = Gateway(cloud, port=0).start()
        stack.callback(gateway.stop)
        assert gateway.user_pool is not None
        token = gateway.user_pool.mint_token(["admin"])["access_token"]  # an hour: longer than the benchmark
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        print("| concurrency | run | products | rows | seconds | rows/s | products/s |")
        print("|---:|---|---:|---:|---:|---:|---:|")
        for concurrency in args.concurrency:
            rows = catalog_rows(f"bench{concurrency}", args.products, f"bench-{concurrency}")
            file = folder / f"catalog-{concurrency}.csv"
            with file.open("w", newline="") as out:
                writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
                writer.writeheader()
                writer.writerows(rows)
            for run, expected in (("first (creates all)", "created"), ("again (no change)", "Nothing changed")):
                seconds, report = run_import(file, gateway.url, token, concurrency)
                if expected not in report:
                    raise RuntimeError(f"unexpected report:\n{report}")
                print(
                    f"| {concurrency} | {run} | {args.products} | {len(rows)} | {seconds:.1f} | "
                    f"{len(rows) / seconds:.0f} | {args.products / seconds:.1f} |",
                    flush=True,
                )
        print(f"\nLoad average after the runs: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
