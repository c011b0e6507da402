"""``polymodal fit CONFIG`` and ``polymodal eval RUN_DIR``: train a model, re-test a run.

``fit`` picks the recipe from the config's task (:mod:`polymodal.train.tasks`):
the one recipe of every task (:mod:`polymodal.train.recipe`), or the task's own,
as for ``vqa``, the small VLM (:mod:`polymodal.train.vlm`; a config on Shapes-VQA
names it without a ``task:`` section). ``eval`` picks it from the run folder: a
VLM run holds ``llava_config.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from polymodal.cli.common import add_config_arguments

VLM_DATA = "shapes_vqa"
"""The data set whose configs name the VLM recipe (task kind ``vqa``) without saying so."""


def task_kind(path: str, overrides: list[str]) -> str:
    """The task a config (after its overrides) trains.

    Args:
        path: the YAML file (or a packaged config's name).
        overrides: dotted ``section.key=value`` overrides.

    Returns:
        ``task.kind`` when the config sets it; else ``vqa`` for a config on
        Shapes-VQA (the VLM recipe) and ``classification`` otherwise.
    """
    from polymodal.train.config import apply_overrides, read_config_file

    values = apply_overrides(read_config_file(path), overrides)
    task, data = values.get("task"), values.get("data")
    if isinstance(task, dict) and task.get("kind"):
        return str(task["kind"])
    if isinstance(data, dict) and data.get("name") == VLM_DATA:
        return "vqa"
    return "classification"


def cmd_fit(args: argparse.Namespace) -> int:
    """Train with the recipe of the config's task and print the run folder and test metrics."""
    from polymodal.train.tasks import task_spec

    spec = task_spec(task_kind(args.config, args.overrides))
    if spec.recipe:
        from polymodal.train.recipe import resolve_builder

        own_recipe = resolve_builder(spec.recipe)
        out_dir, metrics = own_recipe(args.config, args.overrides, resume=args.resume)
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
        help="train a model from a YAML config (any task kind, or the small VLM)",
        description=(
            "Train the model a YAML config describes (sections: task, data, model, optim, "
            "trainer). task.kind picks what it learns: classification (the default), "
            "masked_reconstruction, contrastive_retrieval, dense_prediction, "
            "sequence_generation, semi_supervised, or vqa (the small LLaVA-style VLM, "
            "configs/shapes_vlm.yaml; a config on shapes_vqa needs no task section). "
            "Checkpoints go to out_dir/checkpoints (weights as safetensors); "
            "metrics to out_dir/metrics.json. Packaged configs can be named without a path."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  polymodal fit configs/fusion_av_digits.yaml trainer.max_epochs=3 seed=1\n"
            "  polymodal fit shapes_mae out_dir=runs/mae          # masked pre-training\n"
            "  polymodal fit shapes_segmentation task.options.target=saliency\n"
            "  polymodal fit configs/shapes_vlm.yaml attention=mma out_dir=runs/vlm_mma"
        ),
    )
    add_config_arguments(fit, "configs/fusion_av_digits.yaml")
    fit.add_argument(
        "--resume",
        action="store_true",
        help="continue from out_dir/checkpoints/last.ckpt (exactly as if never interrupted)",
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
