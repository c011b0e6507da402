"""Claim checks ``fusion`` and ``fusion_av_mnist``: fusing image and audio beats either alone.

Five models share encoders, optimiser and schedule: image-only, audio-only, early
fusion, late fusion and cross-attention fusion, each trained with three seeds by
the standard recipe, ``configs/fusion_av_digits.yaml`` plus the named overrides of
:func:`overrides` (``model.fusion``, ``seed``; ``--quick`` shrinks data and epochs).
Trained runs are cached, keyed by their full config and code, so a second
``polymodal bench`` only re-reads them.

The verdict compares the best fusion with the best single modality, both chosen
on **validation** accuracy (mean over seeds), by a paired bootstrap over the test
items of the three seeds.

Beside the verdict, :mod:`polymodal.bench.fusion_missing` reports each fusion
model's accuracy with one modality missing at test, and the best fusion retrained
with modality dropout (one more model per seed).

``fusion_av_mnist`` runs the same comparison on real data, AV-MNIST from a folder
the user gives (``polymodal bench --data DIR``: FSDD recordings and the MNIST t10k
IDX files), under MultiBench's protocol: images keep only the principal components
holding 25 % of their energy, so that neither modality alone is near perfect
(``configs/fusion_av_mnist.yaml``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from polymodal.bench import fusion_missing
from polymodal.bench.claims import ClaimCheck, Context, Outcome
from polymodal.bench.registry import register
from polymodal.bench.report import mean_std, table
from polymodal.bench.verdict import RESAMPLES, Part, paired_difference
from polymodal.data.cache import run_folder
from polymodal.data.real_folders import av_mnist_options
from polymodal.plots import bar_chart
from polymodal.train.config import ExperimentConfig, load_config, on_device

UNIMODAL = ("image_only", "audio_only")
FUSION = ("early", "late", "cross_attention")
SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class FusionBench:
    """One data set's fusion comparison.

    Args:
        name: the check's name (also its cache kind, ``bench/<name>``).
        config: the packaged recipe YAML the runs start from.
        quick: overrides that make the smoke size.
        data: overrides that point the recipe at the data, from ``Context.data_dir``.
        code: modules whose source keys the cached runs, beside the recipe's.
        title: the data set's name in plots.
    """

    name: str
    config: str
    quick: tuple[str, ...]
    data: Callable[[Path | None], list[str]]
    code: tuple[str, ...]
    title: str


AV_DIGITS = FusionBench(
    name="fusion",
    config="fusion_av_digits",
    quick=(
        "data.options.train=1500",
        "data.options.val=300",
        "data.options.test=500",
        "data.options.voices=60",
        "trainer.max_epochs=3",
    ),
    data=lambda _: [],
    code=("polymodal.data.synth.av_digits",),
    title="AV-Digits",
)
AV_MNIST = FusionBench(
    name="fusion_av_mnist",
    config="fusion_av_mnist",
    quick=("trainer.max_epochs=2",),
    data=lambda root: (
        [f"data.options.{key}={value}" for key, value in av_mnist_options(root).items()]
        if root
        else []
    ),
    code=("polymodal.data.real.datasets",),
    title="AV-MNIST",
)


def overrides(
    fusion: str,
    seed: int,
    quick: bool,
    bench: FusionBench = AV_DIGITS,
    data_dir: Path | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """The named overrides of the recipe YAML for one bench run (plus ``extra`` ones)."""
    named = [f"name={bench.name}-{fusion}", f"model.fusion={fusion}", f"seed={seed}", *extra]
    named += bench.data(data_dir)
    return [*named, "trainer.progress_bar=false", *(bench.quick if quick else ())]


def experiment(
    fusion: str,
    seed: int,
    quick: bool,
    bench: FusionBench = AV_DIGITS,
    data_dir: Path | None = None,
    extra: Sequence[str] = (),
    device: str = "cpu",
) -> ExperimentConfig:
    """The config of one bench run: the recipe YAML plus :func:`overrides`, trained on
    ``device`` (``cpu`` or ``cuda``; the run folder differs per device)."""
    config = load_config(bench.config, overrides(fusion, seed, quick, bench, data_dir, extra))
    config = on_device(config, device)
    code = ("polymodal.train.recipe", "polymodal.modules.classifier", *bench.code)
    config.out_dir = str(run_folder(f"bench/{bench.name}", config.to_dict(), code=code))
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


def run(context: Context, bench: FusionBench = AV_DIGITS) -> Outcome:
    from polymodal.train.recipe import train_cached

    names = UNIMODAL + FUSION
    jobs = [(name, seed) for name in names for seed in SEEDS]
    accuracy: dict[str, list[float]] = {name: [] for name in names}
    macro_f1: dict[str, list[float]] = {name: [] for name in names}
    val_acc: dict[str, list[float]] = {name: [] for name in names}
    correct: dict[str, list[np.ndarray]] = {name: [] for name in names}
    missing: dict[str, dict[str, list[np.ndarray]]] = {}
    progress = not context.progress
    for name, seed in tqdm(jobs, desc=f"{bench.name}: training", disable=progress):
        config = experiment(name, seed, context.quick, bench, context.data_dir, (), context.device)
        result = train_cached(config)
        assert result.predictions is not None
        accuracy[name].append(result.metrics["test_acc"])
        macro_f1[name].append(result.metrics["test_macro_f1"])
        val_acc[name].append(result.metrics["best_val_acc"])
        correct[name].append(result.predictions.correct())
        if name in FUSION:
            for m, right in fusion_missing.missing_correct(result.out_dir).items():
                missing.setdefault(name, {}).setdefault(m, []).append(right)
    means = {name: float(np.mean(values)) for name, values in accuracy.items()}
    best_fusion = best_on_validation(val_acc, FUSION)
    best_single = best_on_validation(val_acc, UNIMODAL)

    # The validation-chosen fusion again, with modality dropout at fixed rates.
    dropout = f"{best_fusion} + modality dropout"
    extra = [fusion_missing.dropout_override()]
    for seed in tqdm(SEEDS, desc=f"{bench.name}: modality dropout", disable=progress):
        config = experiment(
            best_fusion, seed, context.quick, bench, context.data_dir, extra, context.device
        )
        result = train_cached(config)
        assert result.predictions is not None
        accuracy.setdefault(dropout, []).append(result.metrics["test_acc"])
        correct.setdefault(dropout, []).append(result.predictions.correct())
        for m, right in fusion_missing.missing_correct(result.out_dir).items():
            missing.setdefault(dropout, {}).setdefault(m, []).append(right)
    target = fusion_missing.target_parts(
        correct[dropout], missing[dropout], correct[best_fusion], correct
    )
    missing_tables, missing_note = fusion_missing.report(
        [*FUSION, dropout], accuracy, missing, dropout, target
    )
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
        context.out_dir / f"{bench.name}_accuracy.png",
        title=f"{bench.title} test accuracy (mean ± std over seeds)",
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
            ),
            *missing_tables,
        ],
        plots=[plot],
        notes=(
            f"Chosen on validation accuracy: best fusion {best_fusion}, best single "
            f"modality {best_single}. Test set: {len(correct[best_fusion][0])} items per seed. "
            + missing_note
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
        honours_device=True,
    )
)
register(
    ClaimCheck(
        name="fusion_av_mnist",
        method="Multimodal fusion baselines",
        paper="foundation (no paper); AV-MNIST as in MultiBench",
        claim=(
            "Fusing image and audio on real AV-MNIST (MNIST images reduced to 25 % of their "
            "PCA energy, FSDD recordings) beats the better single modality."
        ),
        metric="test accuracy, mean over 3 seeds",
        criterion=CRITERION,
        run=lambda context: run(context, AV_MNIST),
        needs_data=True,
        honours_device=True,
    )
)
