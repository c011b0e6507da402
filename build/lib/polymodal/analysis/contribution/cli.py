"""``polymodal analyze contribution RUN_DIR``: modality contribution of a trained model.

Writes into ``--out`` (default ``RUN_DIR/contribution``):

    contribution.json     m_i (pooled and per-sample), flips, per-unit importance
    contribution.png      bar chart of m_i
    heatmaps_<m>.png      for image-like modalities cut into patches: the mean
                          patch importance and a few images with their heatmaps
    tiles_<m>.png         for bags of tiles: each patient's most and least
                          important tiles
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from polymodal.errors import ConfigError


def _fill(text: str) -> Any:
    if text in ("mean", "zero"):
        return text
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"--fill must be mean, zero or a number, got {text!r}") from None


def _unit_options(items: list[str]) -> dict[str, Any]:
    from polymodal.analysis.contribution.units import parse_units

    specs = {}
    for item in items:
        name, sep, spec = item.partition("=")
        if not sep:
            raise ConfigError(
                f"--units {item!r} must look like MODALITY=SPEC, e.g. image=patches:4"
            )
        try:
            specs[name.strip()] = parse_units(spec)
        except ValueError as error:
            raise ConfigError(str(error)) from error
    return specs


def _analysis_data(run_dir: Path, config: Any, split: str) -> Any:
    """The samples to analyse: a fold's held-out patients for a CV fold folder, else a split."""
    from torch.utils.data import Subset

    from polymodal.data.registry import build_dataset
    from polymodal.train.kfold import pool_dataset

    fold = run_dir / "fold.json"
    if split == "test" and fold.is_file():
        held_out = json.loads(fold.read_text())["test"]
        return Subset(pool_dataset(config).dataset, held_out)
    return build_dataset(config.data.name, split, **config.data.options)


def cmd_contribution(args: argparse.Namespace) -> int:
    """Run the analysis and write its files (see the module doc)."""
    from torch.utils.data import DataLoader, Subset

    from polymodal.analysis.contribution import plots
    from polymodal.analysis.contribution.measure import modality_contribution
    from polymodal.analysis.contribution.units import Patches, Tiles, default_units
    from polymodal.data.contract import collate
    from polymodal.train.recipe import load_trained

    run_dir = Path(args.run)
    config, model, _ = load_trained(run_dir)
    dataset = _analysis_data(run_dir, config, args.split)
    if args.samples:
        dataset = Subset(dataset, range(min(args.samples, len(dataset))))
    sample = dataset[0]
    chosen = _unit_options(args.units)
    names = [m for m in config.model.modalities if m in sample]
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        raise ConfigError(f"--units names {unknown}, but the model reads {names}")
    units = {m: chosen.get(m) or default_units(m, tuple(sample[m].shape)) for m in names}
    loader = DataLoader(dataset, batch_size=256, collate_fn=collate)
    result = modality_contribution(
        model,
        loader,
        units,
        fill=_fill(args.fill),
        output=args.output,
        batch_size=args.batch_size,
        progress=True,
    )

    out = Path(args.out or run_dir / "contribution")
    out.mkdir(parents=True, exist_ok=True)
    settings = {
        "run": str(run_dir),
        "split": args.split,
        "fill": args.fill,
        "output": args.output,
        "units": {m: repr(u) for m, u in units.items()},
    }
    (out / "contribution.json").write_text(json.dumps({**settings, **result.summary()}, indent=2))
    plots.contribution_bars(
        result.m,
        result.m_per_sample,
        out / "contribution.png",
        f"modality contribution: {run_dir.name}",
    )
    shown = min(args.heatmaps, len(dataset))
    if shown:
        batch = collate([dataset[i] for i in range(shown)])
        for m, spec in units.items():
            if isinstance(spec, Patches):
                titles = [
                    f"label {int(batch['label'][i])}, pred {int(result.predictions[i])}"
                    for i in range(shown)
                ]
                plots.patch_heatmaps(
                    batch[m],
                    result.scores[m][:shown],
                    result.grids[m],
                    result.importance_map(m),
                    out / f"heatmaps_{m}.png",
                    titles,
                )
            elif isinstance(spec, Tiles):
                plots.tile_rankings(
                    batch[m],
                    result.scores[m][:shown],
                    result.valid[m][:shown],
                    out / f"tiles_{m}.png",
                )
    print(f"{'modality':<12}{'m (pooled)':>12}{'m (per-sample)':>16}{'flips/sample':>14}")
    flips = result.flip_counts()
    for m in result.modalities:
        print(f"{m:<12}{result.m[m]:>12.4f}{result.m_per_sample[m]:>16.4f}{flips[m]:>14.2f}")
    print(f"{len(result.predictions)} samples; results in {out}")
    return 0


def add_contribution_parser(analyze_subparsers: Any) -> argparse.ArgumentParser:
    """Add ``contribution`` to the subparsers of ``polymodal analyze``."""
    parser: argparse.ArgumentParser = analyze_subparsers.add_parser(
        "contribution",
        help="how much each modality contributes to a trained model's decisions (occlusion)",
        description=(
            "Occlude one unit of one modality at a time (image patches, tiles, time chunks, "
            "tabular entries, ...) and measure how much the model's output moves: m_i per "
            "modality (pooled and per-sample normalised), per-unit importance maps and the "
            "number of decision-flipping units. Writes contribution.json and PNG figures."
        ),
        epilog=(
            "example: polymodal analyze contribution runs/fusion_av_digits "
            "--units image=patches:4 audio=chunks:16 --samples 1000"
        ),
    )
    parser.add_argument(
        "run",
        metavar="CHECKPOINT",
        help="run folder of `polymodal fit` or a fold of `polymodal cv`",
    )
    parser.add_argument(
        "--split",
        default="test",
        help="data split to analyse (default test; for a CV fold folder: its held-out patients)",
    )
    parser.add_argument(
        "--samples", type=int, default=1000, help="analyse the first N samples (0 = all)"
    )
    parser.add_argument(
        "--units",
        nargs="*",
        default=[],
        metavar="MODALITY=SPEC",
        help="occlusion units per modality: whole, patches:S, patches:HxW, tiles, chunks:N, "
        "size:S, entries (default: 7x7 patches for images, tiles, 16 audio chunks, ...)",
    )
    parser.add_argument("--fill", default="mean", help="occlusion value: mean, zero or a number")
    parser.add_argument(
        "--output",
        choices=("probs", "logits"),
        default="probs",
        help="compare probabilities or logits",
    )
    parser.add_argument(
        "--batch-size", type=int, default=1024, help="occluded copies per forward pass"
    )
    parser.add_argument("--heatmaps", type=int, default=6, help="samples shown in the figures")
    parser.add_argument("--out", metavar="DIR", help="output folder (default RUN_DIR/contribution)")
    parser.set_defaults(func=cmd_contribution)
    return parser
