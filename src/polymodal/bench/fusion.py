"""Claim check ``fusion``: on AV-Digits, fusing image and audio beats either alone.

Five models share encoders, optimiser and schedule: image-only, audio-only, early
fusion, late fusion and cross-attention fusion, each trained with three seeds by
the standard recipe, ``configs/fusion_av_digits.yaml`` plus the named overrides of
:func:`overrides` (``model.fusion``, ``seed``; ``--quick`` shrinks data and epochs).
Trained runs are cached, keyed by their full config and code, so a second
``polymodal bench`` only re-reads them.

The verdict compares the best fusion with the best single modality, both chosen
on **validation** accuracy (mean over seeds), by a paired bootstrap over the test
items of the three seeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from tqdm.auto import tqdm

from polymodal.bench.claims import ClaimCheck, Context, Outcome
from polymodal.bench.registry import register
from polymodal.bench.report import mean_std, table
from polymodal.bench.verdict import RESAMPLES, Part, paired_difference
from polymodal.data.cache import run_folder
from polymodal.plots import bar_chart
from polymodal.train.config import ExperimentConfig, load_config

UNIMODAL = ("image_only", "audio_only")
FUSION = ("early", "late", "cross_attention")
SEEDS = (0, 1, 2)
CONFIG = "fusion_av_digits"
QUICK = (
    "data.options.train=1500",
    "data.options.val=300",
    "data.options.test=500",
    "data.options.voices=60",
    "trainer.max_epochs=3",
)
"""Smoke size (``--quick``): a smaller AV-Digits build and one epoch fewer."""


def overrides(fusion: str, seed: int, quick: bool) -> list[str]:
    """The named overrides of the recipe YAML for one bench run."""
    named = [f"name=fusion-{fusion}", f"model.fusion={fusion}", f"seed={seed}"]
    return [*named, "trainer.progress_bar=false", *(QUICK if quick else ())]


def experiment(fusion: str, seed: int, quick: bool) -> ExperimentConfig:
    """The config of one bench run: the recipe YAML plus :func:`overrides`."""
    config = load_config(CONFIG, overrides(fusion, seed, quick))
    code = (
        "polymodal.train.recipe",
        "polymodal.modules.classifier",
        "polymodal.data.synth.av_digits",
    )
    config.out_dir = str(run_folder("bench/fusion", config.to_dict(), code=code))
    return config


def best_on_validation(val_acc: Mapping[str, Sequence[float]], names: Sequence[str]) -> str:
    """The model among ``names`` with the highest mean validation accuracy over seeds
    (the first one on a tie): test numbers never choose a model."""
    return max(names, key=lambda name: float(np.mean(val_acc[name])))


def criterion_parts(
    correct: Mapping[str, Sequence[np.ndarray]],
    val_acc: Mapping[str, Sequence[float]],
    resamples: int = RESAMPLES,
) -> list[Part]:
    """The criterion: best fusion − best single modality, test accuracy, above 0.

    Args:
        correct: per model, one (N,) array per seed of per-item test correctness
            (1.0 right, 0.0 wrong), the same test items in the same order for all models.
        val_acc: per model, its best validation accuracy per seed; picks the models.
        resamples: bootstrap replicates.

    Returns:
        One part: the paired difference of per-item test accuracy, pooled over seeds.
    """
    fusion = best_on_validation(val_acc, FUSION)
    single = best_on_validation(val_acc, UNIMODAL)
    interval = paired_difference(correct[fusion], correct[single], resamples)
    name = f"best fusion ({fusion}) − best single modality ({single}), test accuracy"
    return [Part.of(name, interval, margin=0.0)]


def run(context: Context) -> Outcome:
    from polymodal.train.recipe import train_cached

    names = UNIMODAL + FUSION
    jobs = [(name, seed) for name in names for seed in SEEDS]
    accuracy: dict[str, list[float]] = {name: [] for name in names}
    macro_f1: dict[str, list[float]] = {name: [] for name in names}
    val_acc: dict[str, list[float]] = {name: [] for name in names}
    correct: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for name, seed in tqdm(jobs, desc="fusion: training", disable=not context.progress):
        result = train_cached(experiment(name, seed, context.quick))
        assert result.predictions is not None
        accuracy[name].append(result.metrics["test_acc"])
        macro_f1[name].append(result.metrics["test_macro_f1"])
        val_acc[name].append(result.metrics["best_val_acc"])
        correct[name].append(result.predictions.correct())
    means = {name: float(np.mean(values)) for name, values in accuracy.items()}
    best_fusion = best_on_validation(val_acc, FUSION)
    best_single = best_on_validation(val_acc, UNIMODAL)
    rows = [
        [
            name,
            "fusion" if name in FUSION else "single modality",
            mean_std(val_acc[name]),
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
        parts=criterion_parts(correct, val_acc),
        seeds=list(SEEDS),
        tables=[
            table(
                "Validation (best epoch) and test metrics per model (mean ± std over seeds)",
                ["model", "kind", "val accuracy", "test accuracy", "test macro-F1", "per seed"],
                rows,
            )
        ],
        plots=[plot],
        notes=(
            f"Chosen on validation accuracy: best fusion {best_fusion}, best single "
            f"modality {best_single}. Test set: {len(correct[best_fusion][0])} items per seed."
        ),
    )


CRITERION = (
    "best fusion − best single modality, test accuracy > 0: the 95 % interval of the "
    "paired per-item difference (bootstrap over the test items of seeds 0, 1, 2) lies above "
    "0, where the best of early/late/cross-attention fusion and the best of "
    "image-only/audio-only are chosen on validation accuracy (mean over seeds), never on test"
)

register(
    ClaimCheck(
        name="fusion",
        method="Multimodal fusion baselines",
        paper="foundation (no paper)",
        claim="Fusing image and audio on AV-Digits beats the better single modality.",
        metric="test accuracy, mean over 3 seeds",
        criterion=CRITERION,
        run=run,
    )
)
