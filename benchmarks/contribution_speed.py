"""Speed of modality-contribution analysis on the AV-Digits fusion model.

Analyses 1,000 AV-Digits test pairs with 49 image patches (7 x 7 of 4 px) and 16
audio time chunks, i.e. 65,000 occluded copies plus 1,000 plain ones, and prints
the wall-clock seconds of the analysis alone. The model (cross-attention fusion)
is trained once and cached under the polymodal home.

    python benchmarks/contribution_speed.py [--run RUN_DIR] [--samples 1000]
        [--batch-size 512] [--threads 1]

One thread is the default: the model is small, and on a shared 2-core machine a
second intra-op thread mostly waits on the first.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from polymodal.analysis.contribution import Chunks, Patches, modality_contribution
from polymodal.data.cache import home, params_key
from polymodal.data.contract import collate
from polymodal.train.config import ExperimentConfig, from_dict
from polymodal.train.recipe import fit, load_trained


def trained_model() -> Path:
    """A cross-attention AV-Digits model (trained on first use, then cached)."""
    values = {
        "name": "contribution-speed",
        "seed": 0,
        "data": {
            "name": "av_digits",
            "options": {"train": 2000, "val": 300, "test": 1000, "voices": 60},
            "batch_size": 64,
        },
        "model": {"fusion": "cross_attention", "dim": 64},
        "trainer": {"max_epochs": 3, "patience": None, "progress_bar": False},
    }
    config = from_dict(ExperimentConfig, values)
    out = home() / "bench" / "contribution_speed" / params_key(config.to_dict())
    config.out_dir = str(out)
    if not (out / "model.safetensors").is_file():
        fit(config, resume=out.exists())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="an AV-Digits run folder (default: train one)")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    _, model, data = load_trained(args.run or trained_model())
    test = data.dataset("test")
    batch = collate([test[i] for i in range(min(args.samples, len(test)))])  # type: ignore[arg-type]
    units = {"image": Patches(4), "audio": Chunks(count=16)}
    n = batch["label"].shape[0]
    copies = n * (49 + 16)

    started = time.perf_counter()
    result = modality_contribution(model, batch, units, fill="mean", batch_size=args.batch_size)
    seconds = time.perf_counter() - started

    print(f"samples {n}, units image 49 + audio 16, occluded copies {copies}")
    print(f"threads {torch.get_num_threads()}, batch size {args.batch_size}")
    print(f"m {result.m}, per-sample {result.m_per_sample}")
    print(f"seconds {seconds:.1f} ({copies / seconds:,.0f} copies/s); target < 60")


if __name__ == "__main__":
    main()
