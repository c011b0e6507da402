"""``polymodal adapt CHECKPOINT``: test-time adaptation of a trained fusion model on corrupted data.

The adapters and streams are :mod:`polymodal.methods.abpem.experiment`.

Writes into ``--out`` (default ``CHECKPOINT/adapt``):

    per_batch.csv    corruption, method, batch, size, correct, skipped, accuracy
    summary.json     the settings and each (corruption, method)'s stream accuracy
    adapt.png        running accuracy along the stream, a panel per corruption
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

from polymodal.cli.common import add_samples_argument, sample_count
from polymodal.errors import ConfigError

METHOD_NAMES = ("none", "tent", "read", "abpem")
"""The methods of :data:`polymodal.methods.abpem.methods.METHODS` (listed here so that
building the parser does not import torch)."""


def cmd_adapt(args: argparse.Namespace) -> int:
    """Adapt each method on each corrupted stream and write the files of the module doc."""
    import torch

    from polymodal.data.corrupt import Corruption
    from polymodal.methods.abpem.experiment import (
        corrupted_test_split,
        make_adapters,
        make_stream,
        run_stream,
    )
    from polymodal.methods.abpem.plots import stream_accuracy
    from polymodal.train.recipe import load_trained

    samples = sample_count(args.samples) or 0  # 0: all, as corrupted_test_split reads it
    torch.manual_seed(args.seed)
    config, model, _ = load_trained(args.checkpoint)
    if not (hasattr(model, "encode") and hasattr(model, "fuse")):
        raise ConfigError(
            f"{args.checkpoint}: test-time adaptation needs a model with encode() and fuse() "
            "(e.g. model.options.builder: "
            "polymodal.methods.abpem.model:build_av_fusion_transformer)"
        )
    specs: list[Corruption | None] = [Corruption.parse(text) for text in args.corrupt] or [None]
    options = {"lr": args.lr, "steps": args.steps}
    adapters = make_adapters(model, args.method, **options)
    out = Path(args.out or Path(args.checkpoint) / "adapt")
    out.mkdir(parents=True, exist_ok=True)
    rows: list[list[Any]] = []
    summary: list[dict[str, Any]] = []
    curves: dict[str, dict[str, list[float]]] = {}
    for spec in specs:
        label = str(spec) if spec else "clean"
        stream = make_stream(
            corrupted_test_split(config, spec, args.seed, samples), args.seed, args.batch_size
        )
        for method, adapter in adapters.items():
            result = run_stream(adapter, stream)
            for i, (c, n, s) in enumerate(
                zip(result.correct, result.sizes, result.skipped, strict=True)
            ):
                rows.append([label, method, i, n, c, s, round(c / n, 6)])
            summary.append(
                {
                    "corruption": label,
                    "method": method,
                    "accuracy": result.accuracy,
                    "samples": stream.size,
                    "batches": len(stream.labels),
                }
            )
            curves.setdefault(label, {})[method] = result.batch_accuracy
            print(f"{label:<28}{method:<8}{result.accuracy:>10.4f}", flush=True)
    with (out / "per_batch.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["corruption", "method", "batch", "size", "correct", "skipped", "accuracy"])
        writer.writerows(rows)
    settings = {
        "checkpoint": str(args.checkpoint),
        "seed": args.seed,
        "batch_size": args.batch_size,
        **options,
    }
    (out / "summary.json").write_text(json.dumps({**settings, "results": summary}, indent=2))
    stream_accuracy(
        curves, out / "adapt.png", f"test-time adaptation: {Path(args.checkpoint).name}"
    )
    print(f"results in {out}")
    return 0


def add_parser(commands: Any) -> None:
    """Register ``adapt`` on the subparsers."""
    parser = commands.add_parser(
        "adapt",
        help="test-time adaptation (none, Tent, READ, ABPEM) of a trained fusion model",
        description=(
            "Stream the run's test split, one modality corrupted, in batches through each "
            "method; every method adapts online from the trained model and is scored on the "
            "predictions it makes after each update. Writes per_batch.csv, summary.json and "
            "adapt.png."
        ),
        epilog=(
            "example: polymodal adapt runs/abpem_av_digits --method none read abpem "
            "--corrupt audio:wind:5 image:fog:5"
        ),
    )
    parser.add_argument(
        "checkpoint", metavar="CHECKPOINT", help="run folder of `polymodal fit` (or a checkpoint)"
    )
    parser.add_argument(
        "--method", nargs="+", choices=METHOD_NAMES, default=["abpem"], help="methods to run"
    )
    parser.add_argument(
        "--corrupt",
        nargs="*",
        default=[],
        metavar="MODALITY:NAME:SEVERITY",
        help="corruptions, e.g. audio:wind:5 image:gaussian_noise:3 (none: clean data)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of corruption and stream order")
    parser.add_argument("--batch-size", type=int, default=16, help="test batch size")
    add_samples_argument(parser, None, "test samples")
    parser.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate")
    parser.add_argument("--steps", type=int, default=1, help="updates per batch")
    parser.add_argument("--out", metavar="DIR", help="output folder (default CHECKPOINT/adapt)")
    parser.set_defaults(func=cmd_adapt)
