"""``polymodal analyze text-bias CHECKPOINT``: does a VLM believe the text or the image?

CHECKPOINT is a run folder of the small VLM (``python -m polymodal.train.vlm``) or
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

from polymodal.errors import ConfigError
from polymodal.train.config import apply_overrides

FILE_STEM = "text_bias"


def _device(name: str | None) -> str:
    import torch

    return name or ("cuda" if torch.cuda.is_available() else "cpu")


def load_adapter(run: Path, args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The probe adapter of CHECKPOINT and the Shapes-VQA options it was trained with.

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
    """Write the JSON, CSV, markdown and PNG files; return the table's rows."""
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

    run = Path(args.run)
    adapter, options = load_adapter(run, args)
    options.update(apply_overrides({}, args.option))
    dataset = load_shapes_vqa(args.split, **options)
    texts = ShapesTexts(dataset, seed=args.seed, caution=args.caution)
    count = len(dataset) if args.samples <= 0 else min(args.samples, len(dataset))
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


def add_text_bias_parser(analyze_subparsers: Any) -> argparse.ArgumentParser:
    """Add ``text-bias`` to the subparsers of ``polymodal analyze``."""
    parser: argparse.ArgumentParser = analyze_subparsers.add_parser(
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
    parser.add_argument(
        "--samples", type=int, default=1000, help="probe the first N items (0 = all)"
    )
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
    return parser
