"""``polymodal analyze contribution|text-bias``: model-agnostic analyses of a trained model.

``contribution RUN_DIR`` measures each modality's contribution to a trained model's
decisions (:mod:`polymodal.analysis.contribution`) and writes into ``--out``
(default ``RUN_DIR/contribution``):

    contribution.json     m_i (pooled and per-sample), flips, per-unit importance
    contribution.png      bar chart of m_i
    heatmaps_<m>.png      for image-like modalities cut into patches: the mean
                          patch importance and a few images with their heatmaps
    tiles_<m>.png         for bags of tiles: each patient's most and least
                          important tiles

``text-bias CHECKPOINT`` asks whether a VLM believes the text or the image
(:mod:`polymodal.analysis.text_bias`). CHECKPOINT is a run folder of the small VLM
(``polymodal fit configs/shapes_vlm.yaml``) or
a folder holding a Hugging Face ``LlavaForConditionalGeneration`` and its
processor with a chat template (``save_pretrained``; read with
``local_files_only``). The items are Shapes-VQA questions with their matching,
corrupted and irrelevant texts (:mod:`polymodal.data.synth.shapes_text`), built
with the run's data options or ``-o KEY=VALUE``.

Writes into ``--out`` (default ``CHECKPOINT/text_bias``):

    text_bias.json   settings, and per text position: the table, accuracy per
                     question type and every answer
    text_bias.csv    the table: position, condition, accuracy, says_text,
                     text, image, same, neither, tpr
    text_bias.md     the same table in markdown
    text_bias.png    accuracy per condition and TPR per text variant
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path
from typing import Any

from polymodal.cli.common import add_samples_argument, sample_count
from polymodal.errors import ConfigError

FILE_STEM = "text_bias"


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

    samples = sample_count(args.samples)  # before loading anything: a bad value fails at once
    run_dir = Path(args.run)
    config, model, _ = load_trained(run_dir)
    dataset = _analysis_data(run_dir, config, args.split)
    if samples is not None:
        dataset = Subset(dataset, range(min(samples, len(dataset))))
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


def add_contribution_parser(analyses: Any) -> None:
    """Register ``contribution`` on the subparsers of ``polymodal analyze``."""
    parser = analyses.add_parser(
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
    add_samples_argument(parser, 1000, "samples")
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


# ----------------------------------------------------------------------------- text bias


def _device(name: str | None) -> str:
    import torch

    return name or ("cuda" if torch.cuda.is_available() else "cpu")


def load_adapter(run: Path, args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The probe adapter of CHECKPOINT and the Shapes-VQA options it was trained with.

    Args:
        run: a small-VLM run folder or a Hugging Face LLaVA folder.
        args: the command's arguments (device, batch size, generation settings).

    Returns:
        The adapter and the run's data options (empty for a Hugging Face folder).

    Raises:
        ConfigError: a folder that is neither kind of checkpoint.
    """
    from polymodal.analysis.text_bias.probe import LlavaAdapter, SmallVLMAdapter

    device = _device(args.device)
    if (run / "llava_config.json").is_file():
        from polymodal.train.vlm import load_vlm

        vlm = load_vlm(run)
        vlm.model.to(device)
        return SmallVLMAdapter(vlm, args.batch_size), dict(vlm.config.data.options)
    if (run / "config.json").is_file():
        from transformers import AutoProcessor, LlavaForConditionalGeneration

        model: Any = LlavaForConditionalGeneration.from_pretrained(run, local_files_only=True)
        processor = AutoProcessor.from_pretrained(run, local_files_only=True)
        adapter = LlavaAdapter(
            model.to(device).eval(),
            processor,
            batch_size=args.batch_size,
            max_new_tokens=args.max_new_tokens,
            instruction=args.instruction,
        )
        return adapter, {}
    raise ConfigError(
        f"{run} is neither a VLM run folder (llava_config.json inside) nor a Hugging Face "
        "LLaVA folder (config.json inside)"
    )


def _finite(value: Any) -> Any:
    """NaN -> None, so that the JSON is standard."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def write_outputs(
    results: dict[str, Any], settings: dict[str, Any], out: Path, title: str
) -> list[list[Any]]:
    """Write the JSON, CSV, markdown and PNG files of a probe.

    Args:
        results: ``{text position: probe result}``.
        settings: what the run was asked, stored beside the results.
        out: the output folder.
        title: the plot's title.

    Returns:
        The table's rows, printable (None as "—").
    """
    from polymodal.analysis.text_bias.metrics import ROW_COLUMNS
    from polymodal.analysis.text_bias.plots import condition_bars
    from polymodal.bench.report import markdown_table

    out.mkdir(parents=True, exist_ok=True)
    columns = ["position", *ROW_COLUMNS]
    rows = [[position, *row] for position, r in results.items() for row in r.rows()]
    document = {**settings, "positions": {p: r.to_dict() for p, r in results.items()}}
    (out / f"{FILE_STEM}.json").write_text(json.dumps(_finite(document), indent=2))
    with (out / f"{FILE_STEM}.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows([["" if v is None else v for v in row] for row in rows])
    printable = [["—" if v is None else v for v in row] for row in rows]
    (out / f"{FILE_STEM}.md").write_text(markdown_table(columns, printable) + "\n")
    labels = {f"text {p} question": r for p, r in results.items()}
    condition_bars(labels, out / f"{FILE_STEM}.png", title)
    return printable


def cmd_text_bias(args: argparse.Namespace) -> int:
    """Run the probe and write its files (see the module doc)."""
    from polymodal.analysis.text_bias.probe import POSITIONS, probe_items, run_probe
    from polymodal.bench.report import markdown_table
    from polymodal.data.synth.shapes_text import ShapesTexts
    from polymodal.data.synth.shapes_vqa import load_shapes_vqa
    from polymodal.train.config import apply_overrides

    samples = sample_count(args.samples)
    run = Path(args.run)
    adapter, options = load_adapter(run, args)
    options.update(apply_overrides({}, args.option))
    dataset = load_shapes_vqa(args.split, **options)
    texts = ShapesTexts(dataset, seed=args.seed, caution=args.caution)
    count = len(dataset) if samples is None else min(samples, len(dataset))
    items = probe_items(dataset, texts, range(count))
    positions = POSITIONS if args.position == "both" else (args.position,)
    results = {p: run_probe(adapter, items, p, progress=True) for p in positions}
    settings = {
        "checkpoint": str(run),
        "split": args.split,
        "data_options": options,
        "samples": count,
        "seed": args.seed,
        "caution": args.caution,
    }
    out = Path(args.out or run / FILE_STEM)
    rows = write_outputs(results, settings, out, f"text bias: {run.name}")
    from polymodal.analysis.text_bias.metrics import ROW_COLUMNS

    print(markdown_table(["position", *ROW_COLUMNS], rows))
    print(f"{count} items; results in {out}")
    return 0


def add_text_bias_parser(analyses: Any) -> None:
    """Register ``text-bias`` on the subparsers of ``polymodal analyze``."""
    parser = analyses.add_parser(
        "text-bias",
        help="does a VLM follow the text or the image when they disagree (TPR)",
        description=(
            "Ask Shapes-VQA questions image-only, text-only and image+text, with a "
            "matching, a corrupted and an irrelevant text beside the question. Reports "
            "accuracy per condition, how many image+text answers follow the text, the "
            "image, both or neither, and TPR = text / (text + image). Writes "
            "text_bias.json, .csv, .md and .png."
        ),
        epilog=(
            "example: polymodal analyze text-bias runs/shapes_vlm --samples 1000 --position both"
        ),
    )
    parser.add_argument(
        "run",
        metavar="CHECKPOINT",
        help="small-VLM run folder, or a folder with a Hugging Face LLaVA model and processor",
    )
    parser.add_argument("--split", default="test", help="Shapes-VQA split (default test)")
    add_samples_argument(parser, 1000, "items")
    parser.add_argument(
        "--position",
        choices=("before", "after", "both"),
        default="before",
        help="where the text goes relative to the question (both: run each)",
    )
    parser.add_argument(
        "--caution",
        choices=("before", "after", "none"),
        default="before",
        help="where the sentence 'this text may be wrong .' goes relative to the text",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the text draws")
    parser.add_argument(
        "--option",
        "-o",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Shapes-VQA build option, e.g. -o test=500 (default: the run's own options)",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="queries per forward pass")
    parser.add_argument(
        "--max-new-tokens", type=int, default=10, help="answer length (Hugging Face models)"
    )
    parser.add_argument(
        "--instruction",
        default="Answer the question using a single word.",
        help="appended to each prompt (Hugging Face models)",
    )
    parser.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--out", metavar="DIR", help="output folder (default CHECKPOINT/text_bias)")
    parser.set_defaults(func=cmd_text_bias)


def add_parser(commands: Any) -> None:
    """Register ``analyze`` and its analyses (contribution, text-bias) on the subparsers."""
    analyze = commands.add_parser(
        "analyze",
        help="model-agnostic analyses of a trained model (contribution, text-bias)",
        description=(
            "Analyses of a trained model: how much each modality contributes to its "
            "decisions (contribution), and whether a VLM follows the text or the image "
            "when they disagree (text-bias)."
        ),
        epilog="example: polymodal analyze contribution runs/fusion_av_digits --samples all",
    )
    analyses = analyze.add_subparsers(dest="analyze_command", required=True, metavar="ANALYSIS")
    add_contribution_parser(analyses)
    add_text_bias_parser(analyses)
