"""The ``polymodal`` command.

Heavy imports (torch, Lightning) happen inside the sub-commands so that
``polymodal --help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from datetime import datetime
from pathlib import Path

DESCRIPTION = """\
polymodal: multimodal learning methods that run, on data that ships, with claims
that are re-measured.

examples:
  polymodal bench --quick                      smoke-size claims suite (minutes)
  polymodal bench --only fusion --out runs/b   one claim check, report in runs/b
  polymodal data build av_digits               build the embedded AV-Digits set
  polymodal fit configs/fusion_av_digits.yaml trainer.max_epochs=3
  polymodal eval runs/fusion                   test metrics of a finished run
"""


def cmd_data_build(args: argparse.Namespace) -> int:
    from polymodal.data.registry import build_dataset
    from polymodal.train.config import apply_overrides

    options = apply_overrides({}, args.option)
    for split in args.splits.split(","):
        dataset = build_dataset(args.name, split, **options)
        print(f"{args.name} {split}: {len(dataset)} samples")  # type: ignore[arg-type]
    if args.name == "av_digits":
        from polymodal.data.synth.av_digits import build_av_digits

        print(f"cached in {build_av_digits(**options)}")
    return 0


def cmd_data_list(args: argparse.Namespace) -> int:
    from polymodal.data.registry import dataset_names

    print("\n".join(dataset_names()))
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    from polymodal.train.config import load_config
    from polymodal.train.recipe import fit

    config = load_config(args.config, args.overrides)
    result = fit(config, resume=args.resume)
    print(json.dumps({"out_dir": str(result.out_dir), **result.metrics}, indent=2))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from polymodal.train.recipe import evaluate

    metrics = evaluate(args.run, split=args.split)
    print(json.dumps(metrics, indent=2))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
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


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="polymodal", description=DESCRIPTION, formatter_class=formatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="build or list embedded data sets")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    build = data_commands.add_parser(
        "build",
        help="build a data set into the cache ($POLYMODAL_HOME, default ~/.cache/polymodal)",
        description="Build (or verify the cached copy of) a data set and print its split sizes.",
    )
    build.add_argument("name", help="data set name, e.g. av_digits (see `polymodal data list`)")
    build.add_argument(
        "--option",
        "-o",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="builder option, e.g. -o audio_snr_db=-6 -o train=2000 (repeatable)",
    )
    build.add_argument("--splits", default="train,val,test", help="comma-separated splits")
    build.set_defaults(func=cmd_data_build)
    listing = data_commands.add_parser("list", help="list registered data sets")
    listing.set_defaults(func=cmd_data_list)

    fit = commands.add_parser(
        "fit",
        help="train a model from a YAML config",
        description=(
            "Train the model a YAML config describes (sections: data, model, optim, trainer). "
            "Checkpoints go to out_dir/checkpoints (weights as safetensors); "
            "metrics to out_dir/metrics.csv and metrics.json."
        ),
        formatter_class=formatter,
        epilog="example: polymodal fit configs/fusion_av_digits.yaml trainer.max_epochs=3 seed=1",
    )
    fit.add_argument("config", help="YAML experiment file, e.g. configs/fusion_av_digits.yaml")
    fit.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="dotted overrides parsed as YAML, e.g. trainer.max_epochs=3 model.fusion=late",
    )
    fit.add_argument(
        "--resume",
        action="store_true",
        help="continue from out_dir/checkpoints/last.ckpt (exactly as if never interrupted)",
    )
    fit.set_defaults(func=cmd_fit)

    evaluate = commands.add_parser(
        "eval",
        help="evaluate a finished run",
        description="Accuracy and macro-F1 of a run folder's model.safetensors on its data.",
    )
    evaluate.add_argument(
        "run",
        metavar="CHECKPOINT",
        help="run folder written by `polymodal fit`, or one of its checkpoints/*.ckpt folders",
    )
    evaluate.add_argument("--split", choices=("test", "val"), default="test")
    evaluate.set_defaults(func=cmd_eval)

    bench = commands.add_parser(
        "bench",
        help="re-measure the methods' claims on embedded data and write a report",
        description=(
            "Run the claims suite: each check trains or applies a method and its baselines "
            "on embedded data with fixed seeds, and reports whether the paper's claim holds. "
            "Writes report.md, results.json and PNG plots. Trained models are cached."
        ),
    )
    bench.add_argument("--only", metavar="NAME[,NAME...]", help="run only these checks")
    bench.add_argument("--quick", action="store_true", help="smoke size: the suite in minutes")
    bench.add_argument("--out", metavar="DIR", help="report folder (default runs/bench-<time>)")
    bench.add_argument("--no-progress", action="store_true", help="hide progress bars")
    bench.set_defaults(func=cmd_bench)

    from polymodal.analysis.contribution.cli import add_contribution_parser
    from polymodal.analysis.text_bias.cli import add_text_bias_parser
    from polymodal.methods.abpem.cli import add_adapt_parser
    from polymodal.train.kfold import add_cv_parser

    add_cv_parser(commands)
    add_adapt_parser(commands)
    analyze = commands.add_parser("analyze", help="model-agnostic analyses of a trained model")
    analyses = analyze.add_subparsers(dest="analyze_command", required=True, metavar="ANALYSIS")
    add_contribution_parser(analyses)
    add_text_bias_parser(analyses)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse stops filling `overrides` at the first option: accept key=value after
    # options too (`fit CONFIG --resume trainer.max_epochs=3`).
    if extra and hasattr(args, "overrides") and all("=" in e and e[0] != "-" for e in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    from polymodal.errors import ConfigError, DataError

    try:
        return int(args.func(args))
    except (ConfigError, DataError) as error:
        print(f"polymodal: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
