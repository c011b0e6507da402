"""Train the small VLM under several recipe variants side by side and tabulate them.

Each variant is a list of dotted overrides of ``configs/shapes_vlm.yaml``; every
run is ``polymodal fit`` (``python -m polymodal.cli fit``) in its own process, ``--parallel`` at a
time, and the table shows validation accuracy after each epoch (``history.json``)
and test accuracy per question type (``metrics.json``). On a GPU several small
runs share the card well (eight at once on an H100 took about as long as one).

    python benchmarks/vlm_sweep.py SWEEP.yaml [--parallel 8] [--accelerator gpu]
        [--out runs/vlm_sweep]

SWEEP.yaml maps a variant name to its overrides, e.g.::

    lr1e-3: [optim.lr=0.001]
    q4: ["data.options={train: 32000, val: 2000, test: 2000, image_size: 64}"]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from polymodal.bench.report import markdown_table
from polymodal.data.synth.shapes_vqa import QUESTION_TYPES

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "shapes_vlm.yaml"


def launch(name: str, overrides: list[str], out: Path, accelerator: str) -> subprocess.Popen[bytes]:
    """Start one training run; its log goes to ``out/name.log``."""
    command = [
        sys.executable,
        *("-m", "polymodal.cli", "fit", str(CONFIG)),
        f"out_dir={out / name}",
        f"trainer.accelerator={accelerator}",
        "trainer.progress_bar=false",
        *overrides,
    ]
    with (out / f"{name}.log").open("wb") as log:  # the child keeps its own handle
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def table(names: list[str], out: Path) -> str:
    """Markdown: validation accuracy per epoch, then test accuracy overall and per type."""
    rows: list[list[Any]] = []
    for name in names:
        run = out / name
        if not (run / "metrics.json").is_file():
            rows.append([name, f"failed: see {name}.log", *[""] * (1 + len(QUESTION_TYPES))])
            continue
        history = json.loads((run / "history.json").read_text())
        test = json.loads((run / "metrics.json").read_text())
        curve = " ".join(f"{row['val_acc']:.2f}" for row in history)
        per_type = [test.get(f"test_acc_{t}", float("nan")) for t in QUESTION_TYPES]
        rows.append([name, curve, test["test_acc"], *per_type])
    columns = ["variant", "validation per epoch", "test", *QUESTION_TYPES]
    return markdown_table(columns, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sweep", type=Path, help="YAML: variant name -> list of overrides")
    parser.add_argument("--parallel", type=int, default=1, help="runs at a time")
    parser.add_argument("--accelerator", default="cpu", help="cpu, gpu or auto")
    parser.add_argument("--out", type=Path, default=Path("runs/vlm_sweep"))
    args = parser.parse_args()
    variants = yaml.safe_load(args.sweep.read_text()) or {}
    if not isinstance(variants, dict) or not all(isinstance(v, list) for v in variants.values()):
        parser.error(f"{args.sweep} must map each variant name to a list of overrides")
    args.out.mkdir(parents=True, exist_ok=True)
    pending, running = list(variants), []
    start = time.time()
    while pending or running:
        running = [p for p in running if p.poll() is None]
        while pending and len(running) < args.parallel:
            name = pending.pop(0)
            running.append(launch(name, variants[name], args.out, args.accelerator))
            print(f"{time.time() - start:6.0f} s  started {name}", flush=True)
        time.sleep(1)
    report = table(list(variants), args.out)
    (args.out / "sweep.md").write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    main()
