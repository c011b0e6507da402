"""``polymodal bench``: re-measure the methods' claims on embedded data and write a report."""

from __future__ import annotations

import argparse
import os
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
    from polymodal.errors import ConfigError
    from polymodal.train.config import resolve_device

    if args.list:
        from polymodal.bench.listing import check_list

        print(check_list(all_checks().values()))
        return 0
    device = resolve_device(args.device)
    data_dir = Path(args.data).expanduser() if args.data else None
    if data_dir is not None and not data_dir.is_dir():
        raise ConfigError(f"--data {data_dir}: no such folder (it should hold fsdd/ and mnist-*/)")
    every = args.quick or args.all
    checks, skipped = select(args.only, every=every, data=data_dir is not None)
    for name, reason in skipped:
        print(f"== {name}: not run ({reason})")
    out = Path(args.out or Path("runs") / f"bench-{datetime.now():%Y%m%d-%H%M%S}")
    records = []
    for check in checks:
        print(f"== {check.name}: {check.claim}", flush=True)
        context = Context(
            out_dir=out / check.name,
            quick=args.quick,
            progress=not args.no_progress,
            device=device,
            data_dir=data_dir,
        )
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
    which = bench.add_mutually_exclusive_group()
    which.add_argument("--only", metavar="NAME[,NAME...]", help="run only these checks")
    which.add_argument(
        "--all",
        action="store_true",
        help="run every check, default or not, at full size (hours: see --list)",
    )
    which.add_argument(
        "--list",
        action="store_true",
        help="list every check: default or not, real data or not, measured seconds on CPU "
        "and GPU; runs nothing",
    )
    bench.add_argument(
        "--quick",
        action="store_true",
        help="smoke size: every check (default or not) in minutes; checks that it runs, "
        "not the claims",
    )
    bench.add_argument(
        "--data",
        metavar="DIR",
        default=os.environ.get("POLYMODAL_DATA"),
        help="folder with real data (fsdd/recordings, mnist-t10k/ IDX files) for the real-data "
        "checks, which are skipped without it (default: $POLYMODAL_DATA)",
    )
    bench.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where the checks that honour it train (default auto: CUDA when torch sees a "
        "GPU); the others run on the CPU and their records say so",
    )
    bench.add_argument("--out", metavar="DIR", help="report folder (default runs/bench-<time>)")
    bench.add_argument("--no-progress", action="store_true", help="hide progress bars")
    bench.set_defaults(func=cmd_bench)
