"""``polymodal bench``: re-measure the methods' claims on embedded data and write a report."""

from __future__ import annotations

import argparse
import shlex
import sys
from datetime import datetime
from pathlib import Path
from typing import Any


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the selected claim checks, print their table and write the report.

    Returns:
        1 when a check crashed (a claim that does not hold is not a failure), else 0.
    """
    from polymodal.bench.claims import Context, execute
    from polymodal.bench.registry import all_checks, select
    from polymodal.bench.report import console_table, write_report

    checks = select(args.only)
    skipped = [
        (c.name, c.skip_reason) for c in all_checks().values() if not args.only and not c.default
    ]
    for name, reason in skipped:
        print(f"== {name}: not in the default run ({reason})")
    out = Path(args.out or Path("runs") / f"bench-{datetime.now():%Y%m%d-%H%M%S}")
    records = []
    for check in checks:
        print(f"== {check.name}: {check.claim}", flush=True)
        context = Context(out_dir=out / check.name, quick=args.quick, progress=not args.no_progress)
        records.append(execute(check, context))
        write_report(records, out, "polymodal " + shlex.join(sys.argv[1:]), skipped)
    print(console_table(records))
    print(f"report: {out / 'report.md'}")
    return 1 if any(r.error for r in records) else 0


def add_parser(commands: Any) -> None:
    """Register ``bench`` on the subparsers."""
    bench = commands.add_parser(
        "bench",
        help="re-measure the methods' claims on embedded data and write a report",
        description=(
            "Run the claims suite: each check trains or applies a method and its baselines "
            "on embedded data with fixed seeds, and reports whether the paper's claim holds. "
            "Writes report.md, results.json and PNG plots. Trained models are cached."
        ),
        epilog="example: polymodal bench --quick --only fusion,contribution --out runs/bench",
    )
    bench.add_argument("--only", metavar="NAME[,NAME...]", help="run only these checks")
    bench.add_argument("--quick", action="store_true", help="smoke size: the suite in minutes")
    bench.add_argument("--out", metavar="DIR", help="report folder (default runs/bench-<time>)")
    bench.add_argument("--no-progress", action="store_true", help="hide progress bars")
    bench.set_defaults(func=cmd_bench)
