"""``polymodal cv CONFIG``: patient-level stratified k-fold cross-validation of a config.

The folds, training and metrics are :func:`polymodal.train.kfold.cross_validate`.
"""

from __future__ import annotations

import argparse
from typing import Any

from polymodal.cli.common import add_config_arguments


def cmd_cv(args: argparse.Namespace) -> int:
    """Run the CV and print the per-fold and summary metrics."""
    from polymodal.train.config import load_config
    from polymodal.train.kfold import METRICS, cross_validate

    config = load_config(args.config, args.overrides)
    result = cross_validate(
        config,
        folds=args.folds,
        val_fraction=args.val_fraction,
        resume=args.resume,
        progress=config.trainer.progress_bar,
    )
    header = f"{'fold':<6}" + "".join(f"{m:>12}" for m in METRICS)
    print(header)
    for fold in result.folds:
        print(f"{fold.fold:<6}" + "".join(f"{fold.metrics[m]:>12.4f}" for m in METRICS))
    print(f"{'mean':<6}" + "".join(f"{result.mean[m]:>12.4f}" for m in METRICS))
    print(f"{'std':<6}" + "".join(f"{result.std[m]:>12.4f}" for m in METRICS))
    print(f"results: {result.out_dir / 'cv.json'}")
    return 0


def add_parser(commands: Any) -> None:
    """Register ``cv`` on the subparsers."""
    parser = commands.add_parser(
        "cv",
        help="patient-level stratified k-fold cross-validation of a YAML config",
        description=(
            "Pool the dataset's splits, split them into k stratified folds by patient "
            "(samples sharing an id stay together), train one model per fold (a validation "
            "part of the training folds selects the checkpoint) and report accuracy, "
            "macro-F1, MCC and PR-AUC per fold and as mean ± std. Writes out_dir/cv.json."
        ),
        epilog="example: polymodal cv configs/subtype_fusion.yaml model.fusion=concat --folds 5",
    )
    add_config_arguments(parser, "configs/subtype_fusion.yaml")
    parser.add_argument("--folds", type=int, default=5, help="number of folds k (default 5)")
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.15,
        help="share of each training pool used for checkpoint selection (default 0.15)",
    )
    parser.add_argument("--resume", action="store_true", help="reuse finished folds in out_dir")
    parser.set_defaults(func=cmd_cv)
