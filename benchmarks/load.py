"""Runs the Locust scenario (benchmarks/locustfile.py) headless against a storefront, and writes a report:
requests/s, p50/p95/p99 and errors per route, beside Locust's own CSV and HTML files.

    PYTHONPATH=layers/storefront:. .venv/bin/python -m benchmarks.load --host http://127.0.0.1:3107 \\
        --users 20 --spawn-rate 5 --run-time 60s [--pay auto|local|skip] [--output load-report]

The host is the API's base URL: `make dev` (PORT=3107 make dev) locally, or a deployed stack's ApiUrl output
(plus /<stage> if your URL has one). It exits 1 if any request failed.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
from pathlib import Path

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def summary(stats_csv: Path) -> tuple[str, int]:
    """A Markdown table of Locust's per-request statistics, and the number of failed requests."""
    with stats_csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    lines = [
        "| route | requests | failures | requests/s | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    failures = 0
    for row in sorted(rows, key=lambda r: (r["Name"] == "Aggregated", r["Name"])):
        name = "**all**" if row["Name"] == "Aggregated" else f"`{row['Name']}`"
        if row["Type"] == "EVENT":
            lines.append(
                f"| {name} (outcome, not a request) | {row['Request Count']} | | "
                f"{float(row['Requests/s']):.2f} | | | | |"
            )
            continue
        if row["Name"] != "Aggregated":
            failures += int(row["Failure Count"])
        lines.append(
            f"| {name} | {row['Request Count']} | {row['Failure Count']} | {float(row['Requests/s']):.2f} "
            f"| {row['50%']} | {row['95%']} | {row['99%']} | {float(row['Max Response Time']):.0f} |"
        )
    return "\n".join(lines), failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", required=True, help="the API's base URL")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--spawn-rate", type=float, default=5)
    parser.add_argument("--run-time", default="60s")
    parser.add_argument("--pay", choices=["auto", "local", "skip"], default="auto")
    parser.add_argument("--output", type=Path, default=Path("load-report"))
    args = parser.parse_args(argv)

    args.output.mkdir(parents=True, exist_ok=True)
    prefix = args.output / "locust"
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        args.host,
        "--users",
        str(args.users),
        "--spawn-rate",
        str(args.spawn_rate),
        "--run-time",
        args.run_time,
        "--pay",
        args.pay,
        "--csv",
        str(prefix),
        "--html",
        f"{prefix}.html",
        "--only-summary",
        "--stop-timeout",
        "10",
        "--exit-code-on-error",
        "0",
    ]
    print("$ " + " ".join(command), flush=True)
    finished = subprocess.run(command, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    stats = Path(f"{prefix}_stats.csv")
    if not stats.exists():
        print(f"locust wrote no statistics (exit {finished.returncode})", file=sys.stderr)
        return 2
    table, failures = summary(stats)
    report = (
        f"Load test: {args.users} users (spawn rate {args.spawn_rate}/s) for {args.run_time} against "
        f"{args.host}, paying: {args.pay}\n\n{table}\n"
    )
    (args.output / "summary.md").write_text(report)
    print("\n" + report)
    print(
        f"Locust's files: {prefix}_stats.csv, {prefix}_failures.csv, {prefix}.html; this summary: "
        f"{args.output / 'summary.md'}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
