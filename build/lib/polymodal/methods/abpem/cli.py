"""``polymodal adapt CHECKPOINT``: test-time adaptation of a trained fusion model on corrupted data.

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

from polymodal.errors import ConfigError

METHOD_NAMES = ("none", "tent", "read", "abpem")
"""The methods of :data:`polymodal.methods.abpem.methods.METHODS` (listed here so that
building the parser does not import torch)."""


def corrupted_test_split(config: Any, corruption: Any, seed: int, samples: int) -> dict[str, Any]:
    """The run's test split with one modality corrupted, as stacked tensors.

    AV-Digits and AV-MNIST corrupt audio on the waveform; any other data set with an
    ``image`` modality takes the image corruptions.
    """
    from polymodal.data.corrupt import av_digits_c, av_mnist_c, corrupt_images

    options = dict(config.data.options)
    name = config.data.name
    if name == "av_digits":
        indices = list(range(samples)) if samples else None
        return dict(av_digits_c(corruption, seed=seed, indices=indices, **options).tensors)
    elif name == "av_mnist":
        folders = {k: options.pop(k, None) for k in ("mnist_folder", "fsdd_root")}
        if not all(folders.values()):
            raise ConfigError("av_mnist needs data.options.mnist_folder and fsdd_root")
        tensors = dict(
            av_mnist_c(
                folders["mnist_folder"], folders["fsdd_root"], corruption, seed, **options
            ).tensors
        )
    else:
        from polymodal.data.contract import collate
        from polymodal.data.registry import build_dataset

        if corruption is not None and corruption.modality != "image":
            raise ConfigError(
                f"audio corruptions need waveforms; data set {name!r} only offers features "
                "(supported: av_digits, av_mnist)"
            )
        dataset = build_dataset(name, "test", **options)
        tensors = collate([dataset[i] for i in range(len(dataset))])  # type: ignore[arg-type]
        if corruption is not None:
            tensors["image"] = corrupt_images(
                tensors["image"], corruption.name, corruption.severity, seed
            )
    if samples:
        tensors = {k: v[:samples] for k, v in tensors.items()}
    return tensors


def cmd_adapt(args: argparse.Namespace) -> int:
    """Adapt each method on each corrupted stream and write the files of the module doc."""
    import torch

    from polymodal.data.corrupt import Corruption
    from polymodal.methods.abpem.experiment import make_adapters, make_stream, run_stream
    from polymodal.methods.abpem.plots import stream_accuracy
    from polymodal.train.recipe import load_trained

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
            corrupted_test_split(config, spec, args.seed, args.samples), args.seed, args.batch_size
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


def add_adapt_parser(commands: Any) -> argparse.ArgumentParser:
    """Add ``adapt`` to the ``polymodal`` sub-commands."""
    parser: argparse.ArgumentParser = commands.add_parser(
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
    parser.add_argument("--samples", type=int, default=0, help="use the first N samples (0 = all)")
    parser.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate")
    parser.add_argument("--steps", type=int, default=1, help="updates per batch")
    parser.add_argument("--out", metavar="DIR", help="output folder (default CHECKPOINT/adapt)")
    parser.set_defaults(func=cmd_adapt)
    return parser
