"""``polymodal data build NAME`` and ``polymodal data list``: the embedded data sets."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_build(args: argparse.Namespace) -> int:
    """Build (or verify the cached copy of) a data set and print its split sizes."""
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


def cmd_list(args: argparse.Namespace) -> int:
    """Print the registered data set names, one a line."""
    from polymodal.data.registry import dataset_names

    print("\n".join(dataset_names()))
    return 0


def add_parser(commands: Any) -> None:
    """Register ``data`` (with its actions ``build`` and ``list``) on the subparsers."""
    data = commands.add_parser(
        "data",
        help="build or list embedded data sets",
        description="Build the embedded data sets into the cache, or list the registered ones.",
        epilog="example: polymodal data build av_digits -o audio_snr_db=-6",
    )
    actions = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    build = actions.add_parser(
        "build",
        help="build a data set into the cache ($POLYMODAL_HOME, default ~/.cache/polymodal)",
        description="Build (or verify the cached copy of) a data set and print its split sizes.",
        epilog="example: polymodal data build av_digits -o train=2000 --splits train,test",
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
    build.set_defaults(func=cmd_build)
    listing = actions.add_parser(
        "list",
        help="list registered data sets",
        description="Print the name of every registered data set.",
        epilog="example: polymodal data list",
    )
    listing.set_defaults(func=cmd_list)
