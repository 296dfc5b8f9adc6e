"""Import time of every handler in template.yaml, beside its dependencies: a proxy for Lambda's cold start.

Each figure is the median of --runs fresh Python processes (a warm process would time the module cache).
Inside each child, time.perf_counter() brackets only the import; the parent also times the whole process
(interpreter start and import; the child skips interpreter teardown). Targets run round-robin, so that drift
on the machine hits them alike.

    PYTHONPATH=layers/storefront:. .venv/bin/python -m benchmarks.import_time [--runs 15] [--deployed-like]
        [--importtime CatalogFunction ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field

from local_cloud.template import ACCOUNT_ID, ROOT, Template

# (label, untimed setup, timed statement)
BASELINES = [
    ("interpreter only (`pass`)", "", "pass"),
    ("`import boto3`", "", "import boto3"),
    ("`import boto3` + `boto3.client('dynamodb')`", "", "import boto3; boto3.client('dynamodb')"),
    ("`import pydantic`", "", "import pydantic"),
    ("`import fastapi`", "", "import fastapi"),
    ("`import mangum`", "", "import mangum"),
    ("`from aws_lambda_powertools import Logger`", "", "from aws_lambda_powertools import Logger"),
    # What the notifications function alone adds (storefront/notifications/content.py): templates and CLDR formats.
    ("`import jinja2`", "", "import jinja2"),
    (
        "Babel: import, then one amount and one date range in de_DE (loads the locale's data)",
        "",
        "import datetime, decimal; from babel.numbers import format_currency; from babel.dates import format_interval; "
        "format_currency(decimal.Decimal('191.90'), 'EUR', locale='de_DE'); "
        "format_interval(datetime.date(2026, 12, 1), datetime.date(2026, 12, 3), 'yMMMEd', locale='de_DE')",
    ),
    # The handlers leave Tracer out (storefront/observability.py); this row is the reason: what it would add
    # to a process that already has what an HTTP handler imports.
    (
        "`Tracer()`, after boto3, fastapi and Logger are imported (not used)",
        "import boto3, fastapi; from aws_lambda_powertools import Logger",
        "from aws_lambda_powertools import Tracer; Tracer()",
    ),
]

# In this venv, not in a deployed function: aws-sam-cli (a dev dependency) requires boto3[crt] and pyOpenSSL,
# and s3transfer and urllib3 import them when present. Neither boto3's nor the layer's requirements bring them.
NOT_DEPLOYED = ["awscrt", "OpenSSL"]

# The child: extra sys.path entries, modules made unimportable, untimed setup, a marker for -X importtime,
# then the timed statement.
CHILD = """\
import os, sys, time
sys.path[:0] = {paths!r}
sys.modules.update(dict.fromkeys({blocked!r}))  # None in sys.modules: `import x` raises ImportError
{setup}
sys.stderr.write("--- timed import starts\\n"); sys.stderr.flush()
started, cpu_started = time.perf_counter(), time.process_time()
{statement}
print((time.perf_counter() - started) * 1000, (time.process_time() - cpu_started) * 1000, flush=True)
os._exit(0)  # skip interpreter teardown: a cold start ends when the handler is ready, and it saves time here
"""


@dataclass
class Target:
    label: str
    statement: str  # timed
    paths: list[str] = field(default_factory=list)  # prepended to sys.path
    environment: dict[str, str] = field(default_factory=dict)
    blocked: list[str] = field(default_factory=list)  # made unimportable
    function: str = ""  # logical id, for handlers
    setup: str = ""  # untimed, before the statement
    import_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)  # the import's CPU time: what other tenants of the machine
    # cannot inflate (wall time waits for them); on Lambda's own vCPU the two are the same
    process_ms: list[float] = field(default_factory=list)
    error: str = ""

    def command(self, *flags: str) -> list[str]:
        code = CHILD.format(paths=self.paths, blocked=self.blocked, setup=self.setup, statement=self.statement)
        return [sys.executable, *flags, "-c", code]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            env.pop(name, None)
        env.update(
            {
                # boto3.client() at import needs a region; dummy credentials guarantee no real account is touched
                # (nothing calls AWS at import anyway).
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "benchmark",
                "AWS_SECRET_ACCESS_KEY": "benchmark",
                # Lambda's /var/task and /opt are read-only and sam build ships the project's own code as .py only,
                # so it compiles at every cold start: never write bytecode here either (site-packages keep pip's .pyc).
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        env.update(self.environment)
        return env

    def run_once(self) -> None:
        started = time.perf_counter()
        done = subprocess.run(self.command(), env=self.env(), capture_output=True, text=True, check=False)
        elapsed = (time.perf_counter() - started) * 1000
        if done.returncode != 0:  # e.g. a function another change is still writing: report it, time the rest
            self.error = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return
        wall, cpu = done.stdout.strip().splitlines()[-1].split()
        self.import_ms.append(float(wall))
        self.cpu_ms.append(float(cpu))
        self.process_ms.append(elapsed)


def handler_targets(template: Template, deployed_like: bool) -> list[Target]:
    """One target per AWS::Serverless::Function, importing its handler module with the template's environment."""
    # Placeholder physical ids, so that !Ref and !GetAtt in Environment resolve without a cloud.
    for logical_id in template.resources:
        name = f"{template.stack_name}-{logical_id}"
        arn = f"arn:aws:placeholder:{template.region}:{ACCOUNT_ID}:{name}"
        template.physical[logical_id] = defaultdict(lambda arn=arn: arn, Ref=name)
    targets = []
    for logical_id in template.of_type("AWS::Serverless::Function"):
        props = template.function_properties(logical_id)
        variables = template.resolve(props.get("Environment", {})).get("Variables", {})
        code_dir = (ROOT / props["CodeUri"]).resolve()
        layer_dirs = [
            str((ROOT / template.resources[layer["Ref"]]["Properties"]["ContentUri"]).resolve())
            for layer in props.get("Layers", [])
            if isinstance(layer, dict) and layer.get("Ref") in template.resources
        ]
        module, attribute = props["Handler"].rsplit(".", 1)
        label = f"**{logical_id}** (`{props['CodeUri']}{module}.py`)"
        variants = [("", [])] + ([(" without awscrt, pyOpenSSL", NOT_DEPLOYED)] if deployed_like else [])
        for suffix, blocked in variants:
            targets.append(
                Target(
                    label + suffix,
                    f"from {module} import {attribute}",
                    [str(code_dir), *layer_dirs],
                    {k: str(v) for k, v in variables.items()},
                    blocked,
                    function=logical_id,
                )
            )
    return targets


def importtime_breakdown(target: Target, runs: int) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """`python -X importtime` on the target: (top modules by cumulative ms, self ms summed per top-level package),
    medians over `runs` processes, counting only imports after the child's marker (not interpreter start-up)."""
    cumulative: dict[str, list[float]] = defaultdict(list)
    per_package: dict[str, list[float]] = defaultdict(list)
    for _ in range(runs):
        done = subprocess.run(
            target.command("-X", "importtime"), env=target.env(), capture_output=True, text=True, check=True
        )
        lines = done.stderr.split("--- timed import starts\n", 1)[1].splitlines()
        package_self: dict[str, float] = defaultdict(float)
        for line in lines:
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            self_us, cumulative_us, name = line[len("import time:") :].split("|")
            depth = (len(name) - len(name.lstrip()) - 1) // 2
            cumulative["· " * depth + name.strip()].append(int(cumulative_us) / 1000)
            package = name.strip().split(".")[0]
            package = "(standard library)" if package in sys.stdlib_module_names else package
            package_self[package] += int(self_us) / 1000
        for package, ms in package_self.items():
            per_package[package].append(ms)
    return _by_median(cumulative), _by_median(per_package)


# The yardsticks each handler is divided by, from the same run: boto3 alone, and boto3 with the one client every
# handler makes at import (a function that calls no AWS service needs no boto3 at all).
YARDSTICKS = {
    "`import boto3`": "× `import boto3`",
    "`import boto3` + `boto3.client('dynamodb')`": "× `import boto3` + a client",
}


def print_ratios(targets: list[Target], handlers: list[Target], max_ratio: float) -> bool:
    """Each handler's median import CPU time over each yardstick's (same run); True when none is over max_ratio. CPU
    time, because on a shared machine the wall time of a fresh process is mostly how long it waited for a core."""
    medians = {t.label: statistics.median(t.cpu_ms) for t in targets if t.cpu_ms}
    yardsticks = {label: medians[label] for label in YARDSTICKS if label in medians}
    timed = [h for h in handlers if h.import_ms and not h.blocked]
    if not yardsticks or not timed:
        return True
    print(
        f"\nHandlers over the same run's yardsticks (medians of the import's CPU time; at most {max_ratio:g}x is "
        "the bar):\n"
    )
    print("| handler | " + " | ".join(YARDSTICKS[label] for label in yardsticks) + " |")
    print("|---|" + "---:|" * len(yardsticks))
    worst = dict.fromkeys(yardsticks, (0.0, ""))
    for handler in timed:
        ratios = {label: medians[handler.label] / ms for label, ms in yardsticks.items()}
        worst = {label: max(worst[label], (ratios[label], handler.function)) for label in yardsticks}
        print(f"| {handler.function} | " + " | ".join(f"{r:.2f}" for r in ratios.values()) + " |")
    for label, (ratio, function) in worst.items():
        print(
            f"Worst {YARDSTICKS[label]}: {function} at {ratio:.2f}x "
            f"({'within' if ratio <= max_ratio else 'OVER'} the {max_ratio:g}x bar)"
        )
    return all(ratio <= max_ratio for ratio, _ in worst.values())


def _by_median(samples: dict[str, list[float]]) -> list[tuple[str, float]]:
    return sorted(((name, statistics.median(ms)) for name, ms in samples.items()), key=lambda item: -item[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="fresh processes per target (at least 10)")
    parser.add_argument("--functions", nargs="+", metavar="FUNCTION", help="time only these handlers (logical ids)")
    parser.add_argument(
        "--importtime",
        nargs="*",
        default=["CatalogFunction"],
        metavar="FUNCTION",
        help="functions to break down with -X importtime (logical ids; default CatalogFunction)",
    )
    parser.add_argument("--importtime-runs", type=int, default=3, help="-X importtime processes per function")
    parser.add_argument(
        "--max-ratio",
        type=float,
        default=2.0,
        help="the bar for each handler's import over the yardsticks of the same run (ratios printed)",
    )
    parser.add_argument(
        "--deployed-like",
        action="store_true",
        help="also time each handler without awscrt and pyOpenSSL, as in a deployed function",
    )
    args = parser.parse_args(argv)
    if args.runs < 10:
        parser.error("--runs must be at least 10: a median of fewer cold processes is too noisy")

    handlers = [
        t
        for t in handler_targets(Template.load(), args.deployed_like)
        if not args.functions or t.function in args.functions
    ]
    targets = [Target(label, statement, setup=setup) for label, setup, statement in BASELINES]
    targets.append(Target("`import boto3` without awscrt, pyOpenSSL", "import boto3", blocked=NOT_DEPLOYED))
    targets += handlers
    print(
        f"Import time, median of {args.runs} fresh processes each ({sys.executable}, "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f})\n",
        flush=True,
    )
    for _ in range(args.runs):
        for target in targets:
            if not target.error:
                target.run_once()

    print("| what | import, median ms | min–max ms | import CPU, median ms | whole process, median ms |")
    print("|---|---:|---:|---:|---:|")
    for target in targets:
        if target.error:
            print(f"| {target.label} | import failed: `{target.error}` | | |")
            continue
        process = f"{statistics.median(target.process_ms):.0f}" + (" (with setup)" if target.setup else "")
        print(
            f"| {target.label} | {statistics.median(target.import_ms):.0f} | "
            f"{min(target.import_ms):.0f}–{max(target.import_ms):.0f} | {statistics.median(target.cpu_ms):.0f} | "
            f"{process} |"
        )

    print(
        f"\nLoad average after the runs: {os.getloadavg()[0]:.2f} (other work on the machine inflates every row)",
        flush=True,
    )
    print_ratios(targets, handlers, args.max_ratio)

    for target in (t for t in handlers if t.function in args.importtime and not t.error):
        top, packages = importtime_breakdown(target, args.importtime_runs)
        total = sum(ms for _, ms in packages)
        print(
            f"\n`python -X importtime`, {target.label}: top 10 by cumulative time "
            f"(median of {args.importtime_runs} runs; -X importtime itself adds overhead)\n"
        )
        print("| module (· = one level of import nesting) | cumulative ms |")
        print("|---|---:|")
        for name, ms in top[:10]:
            print(f"| {name} | {ms:.0f} |")
        print(
            f"\nSelf time summed per top-level package (where the {total:.0f} ms go; "
            "a module's self time includes its module-level code)\n"
        )
        print("| package | self ms | share |")
        print("|---|---:|---:|")
        for name, ms in packages[:12]:
            print(f"| {name if name.startswith('(') else f'`{name}`'} | {ms:.0f} | {ms / total:.0%} |")
        rest = sum(ms for _, ms in packages[12:])
        print(f"| {len(packages) - 12} other packages | {rest:.0f} | {rest / total:.0%} |")
    return 1 if any(t.error for t in targets) else 0


if __name__ == "__main__":
    sys.exit(main())
