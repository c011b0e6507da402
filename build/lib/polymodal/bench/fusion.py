"""Claim check ``fusion``: on AV-Digits, fusing image and audio beats either alone.

Five models share encoders, optimiser and schedule: image-only, audio-only, early
fusion, late fusion and cross-attention fusion, each trained with three seeds by
the standard recipe (``configs/fusion_av_digits.yaml``). Trained runs are cached,
keyed by their full config, so a second ``polymodal bench`` only re-reads them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from polymodal.bench.claims import ClaimCheck, Context, Outcome
from polymodal.bench.plots import bar_chart
from polymodal.bench.registry import register
from polymodal.bench.report import mean_std, table
from polymodal.data.cache import home, params_key
from polymodal.train.config import ExperimentConfig, from_dict

UNIMODAL = ("image_only", "audio_only")
FUSION = ("early", "late", "cross_attention")
SEEDS = (0, 1, 2)


def experiment(fusion: str, seed: int, quick: bool) -> ExperimentConfig:
    """The config of one bench run (quick: a smaller data set and fewer epochs)."""
    data = {"train": 1500, "val": 300, "test": 500, "voices": 60} if quick else {}
    values = {
        "name": f"fusion-{fusion}",
        "seed": seed,
        "data": {"name": "av_digits", "options": data, "batch_size": 64},
        "model": {"fusion": fusion, "dim": 64},
        "optim": {"lr": 2e-3, "weight_decay": 1e-4},
        "trainer": {"max_epochs": 3 if quick else 4, "patience": None, "progress_bar": False},
    }
    config = from_dict(ExperimentConfig, values)
    config.out_dir = str(home() / "bench" / "fusion" / params_key(config.to_dict()))
    return config


def train_cached(config: ExperimentConfig) -> dict[str, float]:
    """Test metrics of ``config``'s run, training it unless a finished run is cached."""
    from polymodal.train.recipe import fit

    metrics_file = Path(config.out_dir) / "metrics.json"
    if metrics_file.is_file():
        return json.loads(metrics_file.read_text())
    if Path(config.out_dir).exists():  # an unfinished run: continue where it stopped
        return fit(config, resume=True).metrics
    return fit(config).metrics


def run(context: Context) -> Outcome:
    names = UNIMODAL + FUSION
    jobs = [(name, seed) for name in names for seed in SEEDS]
    accuracy: dict[str, list[float]] = {name: [] for name in names}
    macro_f1: dict[str, list[float]] = {name: [] for name in names}
    for name, seed in tqdm(jobs, desc="fusion: training", disable=not context.progress):
        metrics = train_cached(experiment(name, seed, context.quick))
        accuracy[name].append(metrics["test_acc"])
        macro_f1[name].append(metrics["test_macro_f1"])
    means = {name: float(np.mean(values)) for name, values in accuracy.items()}
    best_fusion = max(FUSION, key=means.__getitem__)
    best_single = max(UNIMODAL, key=means.__getitem__)
    rows = [
        [
            name,
            "fusion" if name in FUSION else "single modality",
            mean_std(accuracy[name]),
            mean_std(macro_f1[name]),
            ", ".join(f"{v:.4f}" for v in accuracy[name]),
        ]
        for name in names
    ]
    plot = bar_chart(
        accuracy,
        context.out_dir / "fusion_accuracy.png",
        title="AV-Digits test accuracy (mean ± std over seeds)",
        ylabel="accuracy",
        highlight=FUSION,
    )
    return Outcome(
        ours=means[best_fusion],
        baselines={name: means[name] for name in UNIMODAL},
        holds=means[best_fusion] > means[best_single],
        seeds=list(SEEDS),
        tables=[
            table(
                "Test accuracy and macro-F1 per model",
                ["model", "kind", "accuracy", "macro-F1", "per seed"],
                rows,
            )
        ],
        plots=[plot],
        notes=f"Best fusion: {best_fusion}; best single modality: {best_single}.",
    )


register(
    ClaimCheck(
        name="fusion",
        method="Multimodal fusion baselines",
        paper="foundation (no paper)",
        claim="Fusing image and audio on AV-Digits beats the better single modality.",
        metric="test accuracy, mean over 3 seeds",
        criterion=(
            "the best of early/late/cross-attention fusion has a higher mean test accuracy "
            "than the best of image-only/audio-only"
        ),
        run=run,
    )
)
