"""``polymodal fit CONFIG`` and ``polymodal eval RUN_DIR``: train a model, re-test a run.

``fit`` picks the recipe from the config: the small-VLM recipe
(:mod:`polymodal.train.vlm`) when ``data.name`` is ``shapes_vqa``, else the
supervised classification recipe (:mod:`polymodal.train.recipe`). ``eval`` picks it
from the run folder: a VLM run holds ``llava_config.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from polymodal.cli.common import add_config_arguments

VLM_DATA = "shapes_vqa"
"""The data set whose configs the VLM recipe trains on."""


def is_vlm_config(path: str, overrides: list[str]) -> bool:
    """Whether a config (after its overrides) names the VLM recipe's data set.

    Args:
        path: the YAML file.
        overrides: dotted ``section.key=value`` overrides.

    Returns:
        True when ``data.name`` is ``shapes_vqa``.
    """
    from polymodal.train.config import apply_overrides, read_config_file

    data = apply_overrides(read_config_file(path), overrides).get("data")
    return isinstance(data, dict) and data.get("name") == VLM_DATA


def cmd_fit(args: argparse.Namespace) -> int:
    """Train with the recipe the config names and print the run folder and test metrics."""
    if is_vlm_config(args.config, args.overrides):
        from polymodal.errors import ConfigError
        from polymodal.train.vlm import fit_vlm, load_vlm_config

        if args.resume:
            raise ConfigError("the VLM recipe cannot --resume; start the run again without it")
        vlm = fit_vlm(load_vlm_config(args.config, args.overrides))
        out_dir, metrics = vlm.run_dir, vlm.metrics
    else:
        from polymodal.train.config import load_config
        from polymodal.train.recipe import fit

        result = fit(load_config(args.config, args.overrides), resume=args.resume)
        out_dir, metrics = result.out_dir, result.metrics
    print(json.dumps({"out_dir": str(out_dir), **metrics}, indent=2))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Re-test a finished run (classification or VLM) and print its metrics."""
    if (Path(args.run) / "llava_config.json").is_file():
        from polymodal.train.vlm import evaluate_vlm

        metrics = evaluate_vlm(args.run, split=args.split)
    else:
        from polymodal.train.recipe import evaluate

        metrics = evaluate(args.run, split=args.split)
    print(json.dumps(metrics, indent=2))
    return 0


def add_parser(commands: Any) -> None:
    """Register ``fit`` and ``eval`` on the subparsers."""
    fit = commands.add_parser(
        "fit",
        help="train a model from a YAML config (classifier, or the small VLM on Shapes-VQA)",
        description=(
            "Train the model a YAML config describes (sections: data, model, optim, trainer). "
            "A config whose data.name is shapes_vqa trains the small LLaVA-style VLM "
            "(configs/shapes_vlm.yaml); any other trains a multimodal classifier. "
            "Checkpoints go to out_dir/checkpoints (weights as safetensors); "
            "metrics to out_dir/metrics.json."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  polymodal fit configs/fusion_av_digits.yaml trainer.max_epochs=3 seed=1\n"
            "  polymodal fit configs/shapes_vlm.yaml attention=mma out_dir=runs/vlm_mma"
        ),
    )
    add_config_arguments(fit, "configs/fusion_av_digits.yaml")
    fit.add_argument(
        "--resume",
        action="store_true",
        help="continue from out_dir/checkpoints/last.ckpt (exactly as if never interrupted; "
        "classification runs)",
    )
    fit.set_defaults(func=cmd_fit)

    evaluate = commands.add_parser(
        "eval",
        help="evaluate a finished run",
        description=(
            "Test metrics of a run folder's model.safetensors on its own data: accuracy and "
            "macro-F1 for a classification run, exact-match answer accuracy (overall and per "
            "question type) for a VLM run."
        ),
        epilog="example: polymodal eval runs/fusion_av_digits --split val",
    )
    evaluate.add_argument(
        "run",
        metavar="CHECKPOINT",
        help="run folder written by `polymodal fit`, or one of its checkpoints/*.ckpt folders",
    )
    evaluate.add_argument("--split", choices=("test", "val"), default="test")
    evaluate.set_defaults(func=cmd_eval)
