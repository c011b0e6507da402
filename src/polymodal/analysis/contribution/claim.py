"""Claim check ``contribution``: occlusion contribution finds collapse and tracks ability.

On AV-Digits (image + audio digits) the check trains, with the standard recipe:

* **collapse** — a cross-attention fusion model whose audio is replaced by noise
  (``audio_snr_db = -40``: the spoken digit is 100 times quieter than the noise),
  plus an audio-only model on the same data to confirm the audio is useless;
* **sweep** — five settings that trade image noise against audio noise, from
  clean images with drowned speech to noisy images with clear speech; in each,
  an image-only, an audio-only and a cross-attention fusion model.

Each fusion model is analysed on its whole test split (7 x 7 image patches, 16
audio time chunks, mean fill, softmax outputs); each unimodal model is scored
item by item on the same split. Keeping the per-item results (d_image^k,
d_audio^k and 0/1 correctness) lets :func:`criterion_parts` recompute the
pooled m and Spearman's ρ on resampled test items. The balanced setting is
picked on validation accuracy, so the test items that judge it did not choose it.
Trained runs and analyses are cached under the polymodal home.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from polymodal.bench.claims import ClaimCheck, Context, Outcome
from polymodal.bench.registry import register
from polymodal.bench.report import table
from polymodal.bench.verdict import RESAMPLES, Part, bootstrap
from polymodal.data.cache import run_folder
from polymodal.plots import pyplot, save_figure
from polymodal.train.config import ExperimentConfig, load_config

COLLAPSE_SNR_DB = -40.0
SWEEP = ((0.05, -25.0), (0.1, -21.0), (0.2, -17.0), (0.5, -10.0), (0.8, -5.0))
"""(image_noise, audio_snr_db) per setting, from image-friendly to audio-friendly."""
QUICK_SWEEP = (SWEEP[0], SWEEP[2], SWEEP[3], SWEEP[4])
COLLAPSE_IMAGE_NOISE = 0.2
SEED = 0
COLLAPSE_MAX = 0.05
BALANCED_MIN = 0.2
RHO_MIN = 0.8
MODALITIES = ("image", "audio")
"""Column order of the per-item occlusion effects ``d`` (N, 2)."""


@dataclass(frozen=True)
class Items:
    """Per-item test results of one setting, all on the same N test items.

    Args:
        d: (N, 2) each item's total occlusion effect d_i^k of the fusion model,
            columns in :data:`MODALITIES` order.
        correct_image: (N,) 1.0 where the image-only model is right, or None.
        correct_audio: (N,) 1.0 where the audio-only model is right, or None.
    """

    d: np.ndarray
    correct_image: np.ndarray | None = None
    correct_audio: np.ndarray | None = None


@dataclass
class Setting:
    """One data setting and what was measured on it.

    ``acc_*`` are test accuracies and ``val_*`` the best validation accuracies of
    the unimodal models (None where that model was not trained).
    """

    name: str
    image_noise: float
    audio_snr_db: float
    acc_image: float | None = None
    acc_audio: float | None = None
    val_image: float | None = None
    val_audio: float | None = None
    acc_fusion: float = 0.0
    m: dict[str, float] | None = None
    m_per_sample: dict[str, float] | None = None
    flips: dict[str, float] | None = None
    items: Items | None = None

    def record(self, model: str, metrics: Mapping[str, float]) -> None:
        """Store a trained model's accuracies from its ``metrics.json`` contents.

        Args:
            model: ``"image_only"``, ``"audio_only"`` or ``"cross_attention"``.
            metrics: at least ``test_acc``; unimodal models also ``best_val_acc``.

        Raises:
            ValueError: a unimodal run without ``best_val_acc`` (the balanced setting
                cannot be chosen on validation without it).
        """
        if model == "cross_attention":
            self.acc_fusion = metrics["test_acc"]
            return
        if "best_val_acc" not in metrics:
            raise ValueError(
                f"{self.name}: the {model} run has no best_val_acc in its metrics "
                f"(keys {sorted(metrics)}); retrain it with the current recipe"
            )
        modality = model.removesuffix("_only")
        setattr(self, f"acc_{modality}", metrics["test_acc"])
        setattr(self, f"val_{modality}", metrics["best_val_acc"])

    @property
    def gap(self) -> float:
        """Unimodal test accuracy gap, image minus audio."""
        assert self.acc_image is not None and self.acc_audio is not None
        return self.acc_image - self.acc_audio

    @property
    def val_gap(self) -> float:
        """Unimodal validation accuracy gap, image minus audio."""
        assert self.val_image is not None and self.val_audio is not None
        return self.val_image - self.val_audio


def pick_balanced(sweep: Sequence[Setting]) -> Setting:
    """The setting whose unimodal models have the closest **validation** accuracies.

    Test accuracies are never looked at: the balanced part is then judged on test
    items that played no part in choosing the setting.
    """
    return min(sweep, key=lambda s: abs(s.val_gap))


def pooled_m(d: np.ndarray) -> np.ndarray:
    """Pooled contribution of each modality from per-item occlusion effects.

    Args:
        d: (N, M) d_i^k per item and modality.

    Returns:
        (M,) m_i = mean_k d_i^k / Σ_j mean_k d_j^k; zeros when nothing had any effect
        (as :attr:`ContributionResult.m`).
    """
    totals = d.mean(axis=0)  # (M,)
    total = totals.sum()
    return totals / total if total > 0 else np.zeros_like(totals)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's ρ of two (S,) arrays (average ranks for ties).

    Returns 0.0 when either array is constant: with no ranking to follow there is
    no evidence of agreement (scipy would return NaN and stop the bootstrap).
    """
    from scipy.stats import rankdata

    rx, ry = rankdata(x), rankdata(y)
    if np.ptp(rx) == 0 or np.ptp(ry) == 0:
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])


def _gaps(items: Items, index: np.ndarray) -> tuple[float, float]:
    """(unimodal accuracy gap, m gap), image minus audio, on the items ``index``."""
    assert items.correct_image is not None and items.correct_audio is not None
    accuracy = items.correct_image[index].mean() - items.correct_audio[index].mean()
    m = pooled_m(items.d[index])
    return float(accuracy), float(m[0] - m[1])


def criterion_parts(
    collapse: Items,
    balanced: Items,
    sweep: Sequence[Items],
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> list[Part]:
    """The three criterion parts, each with a bootstrap interval over test items.

    Args:
        collapse: the fusion model trained with audio replaced by noise (only ``d``).
        balanced: the sweep setting picked by :func:`pick_balanced` (only ``d``).
        sweep: every sweep setting, with unimodal correctness; a replicate resamples
            the test items of each setting independently (settings have their own
            data) and the same items for a setting's three models.
        resamples: bootstrap replicates.
        seed: seed of the bootstrap generator.

    Returns:
        ``[m_audio under audio noise (< COLLAPSE_MAX), min m_i in the balanced setting
        (> BALANCED_MIN), Spearman ρ of the gaps (> RHO_MIN)]``.
    """
    audio = MODALITIES.index("audio")

    def collapsed(index: list[np.ndarray]) -> float:
        return float(pooled_m(collapse.d[index[0]])[audio])

    def weaker(index: list[np.ndarray]) -> float:
        return float(pooled_m(balanced.d[index[0]]).min())

    def rho(index: list[np.ndarray]) -> float:
        accuracy, m = zip(*(_gaps(s, i) for s, i in zip(sweep, index, strict=True)), strict=True)
        return spearman(np.array(accuracy), np.array(m))

    sizes = [len(s.d) for s in sweep]
    return [
        Part.of(
            "m_audio under audio noise",
            bootstrap(collapsed, [len(collapse.d)], resamples, seed),
            COLLAPSE_MAX,
            above=False,
        ),
        Part.of(
            "min(m_image, m_audio), balanced setting",
            bootstrap(weaker, [len(balanced.d)], resamples, seed),
            BALANCED_MIN,
        ),
        Part.of("ρ(accuracy gap, m gap)", bootstrap(rho, sizes, resamples, seed), RHO_MIN),
    ]


CONFIG = "fusion_av_digits"
"""The recipe every run starts from (the ``fusion`` check's); :func:`overrides` names
what a setting changes."""
SIZES = {"train": 1500, "val": 300, "test": 500, "voices": 60}
QUICK_SIZES = {"train": 800, "val": 200, "test": 200, "voices": 40}


def overrides(fusion: str, image_noise: float, snr_db: float, quick: bool) -> list[str]:
    """The named overrides of the recipe YAML for one run: the model, the setting's
    noise levels, a smaller AV-Digits build, and (quick) one epoch fewer."""
    sizes = QUICK_SIZES if quick else SIZES
    named = [
        f"name=contribution-{fusion}",
        f"model.fusion={fusion}",
        f"seed={SEED}",
        f"data.options.image_noise={image_noise}",
        f"data.options.audio_snr_db={snr_db}",
        *(f"data.options.{key}={value}" for key, value in sizes.items()),
        "trainer.progress_bar=false",
    ]
    return [*named, *(["trainer.max_epochs=3"] if quick else [])]


def experiment(fusion: str, image_noise: float, snr_db: float, quick: bool) -> ExperimentConfig:
    """One AV-Digits training run: the recipe YAML plus :func:`overrides`."""
    config = load_config(CONFIG, overrides(fusion, image_noise, snr_db, quick))
    code = (
        "polymodal.train.recipe",
        "polymodal.modules.classifier",
        "polymodal.data.synth.av_digits",
        "polymodal.analysis.contribution.measure",  # analyse() caches its result in the run
        "polymodal.analysis.contribution.units",
    )
    config.out_dir = str(run_folder("bench/contribution", config.to_dict(), code=code))
    return config


def _test_batch(run_dir: Path) -> tuple[Any, dict[str, Any]]:
    """A trained model and its whole test split as one batch."""
    from polymodal.data.contract import collate
    from polymodal.train.recipe import load_trained

    _, model, data = load_trained(run_dir)
    test = data.dataset("test")
    return model, collate([test[i] for i in range(len(test))])  # type: ignore[arg-type]


def analyse(run_dir: Path) -> dict[str, Any]:
    """Occlusion analysis of a trained image + audio model on its whole test split (cached).

    Returns:
        ``m``, ``m_per_sample``, ``flips`` and ``d``: ``{modality: (N,) d_i^k}``.
    """
    from polymodal.analysis.contribution.measure import modality_contribution
    from polymodal.analysis.contribution.units import Chunks, Patches

    cached = run_dir / "occlusion-test.json"
    if cached.is_file():
        return json.loads(cached.read_text())  # type: ignore[no-any-return]
    model, batch = _test_batch(run_dir)
    units = {"image": Patches(4), "audio": Chunks(count=16)}
    result = modality_contribution(model, batch, units, fill="mean", batch_size=512)
    d = result.per_sample()  # (N, 2), columns in units order
    summary = {
        "m": result.m,
        "m_per_sample": result.m_per_sample,
        "flips": result.flip_counts(),
        "d": {name: d[:, j].tolist() for j, name in enumerate(result.modalities)},
    }
    cached.write_text(json.dumps(summary))
    return summary


def correct(run_dir: Path) -> np.ndarray:
    """(N,) 1.0 where a trained model predicts the label of a test item (cached)."""
    import torch

    cached = run_dir / "correct-test.json"
    if cached.is_file():
        return np.asarray(json.loads(cached.read_text()), dtype=np.float64)
    model, batch = _test_batch(run_dir)
    with torch.inference_mode():
        out = model(batch)
    logits = out if isinstance(out, torch.Tensor) else out.logits  # (N, C)
    hits = (logits.argmax(dim=-1) == batch["label"]).double().tolist()
    cached.write_text(json.dumps(hits))
    return np.asarray(hits)


def _measure(setting: Setting, quick: bool, unimodal: tuple[str, ...]) -> Setting:
    from polymodal.train.recipe import train_cached

    noise, snr = setting.image_noise, setting.audio_snr_db
    for name in (*unimodal, "cross_attention"):
        setting.record(name, train_cached(experiment(name, noise, snr, quick)).metrics)
    summary = analyse(Path(experiment("cross_attention", noise, snr, quick).out_dir))
    setting.m, setting.m_per_sample = summary["m"], summary["m_per_sample"]
    setting.flips = summary["flips"]
    hits = {name: correct(Path(experiment(name, noise, snr, quick).out_dir)) for name in unimodal}
    setting.items = Items(
        d=np.stack([summary["d"][name] for name in MODALITIES], axis=1),
        correct_image=hits.get("image_only"),
        correct_audio=hits.get("audio_only"),
    )
    return setting


def _plot(sweep: list[Setting], collapse: Setting, path: Path) -> Path:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    gaps = [s.gap for s in sweep]
    m_image = [s.m["image"] for s in sweep if s.m]
    left.plot(gaps, m_image, "o-", color="tab:orange")
    for s, x, y in zip(sweep, gaps, m_image, strict=True):
        left.annotate(s.name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    left.axhline(0.5, color="grey", lw=0.5)
    left.axvline(0.0, color="grey", lw=0.5)
    left.set_xlabel("unimodal accuracy: image minus audio")
    left.set_ylabel("m_image (pooled)")
    left.set_title("contribution follows unimodal ability")
    settings = [*sweep, collapse]
    xs = range(len(settings))
    for offset, modality, color in ((-0.2, "image", "tab:blue"), (0.2, "audio", "tab:green")):
        heights = [s.m[modality] if s.m else 0.0 for s in settings]
        right.bar([x + offset for x in xs], heights, width=0.38, label=modality, color=color)
    right.set_xticks(list(xs), [s.name for s in settings], rotation=20, fontsize=7)
    right.set_ylabel("m_i (pooled)")
    right.set_title("m_i per setting (last: audio replaced by noise)")
    right.legend(fontsize=8)
    return save_figure(fig, path)


def _rows(sweep: list[Setting], collapse: Setting, balanced: Setting) -> list[list[str]]:
    def fmt(value: float | None) -> str:
        return "—" if value is None else f"{value:.4f}"

    rows = []
    for s in [*sweep, collapse]:
        assert s.m is not None and s.m_per_sample is not None and s.flips is not None
        name = f"{s.name} (balanced)" if s is balanced else s.name
        if s is collapse:
            agrees = "—"
        else:
            agrees = "yes" if np.sign(s.gap) == np.sign(s.m["image"] - s.m["audio"]) else "no"
        rows.append(
            [
                name,
                f"{fmt(s.val_image)} / {fmt(s.val_audio)}",
                fmt(s.acc_image),
                fmt(s.acc_audio),
                fmt(s.acc_fusion),
                fmt(s.m["image"]),
                fmt(s.m["audio"]),
                fmt(s.m_per_sample["audio"]),
                f"{s.flips['image']:.2f} / {s.flips['audio']:.2f}",
                agrees,
            ]
        )
    return rows


def run(context: Context) -> Outcome:
    from polymodal.runtime import single_threaded

    grid = QUICK_SWEEP if context.quick else SWEEP
    sweep = [Setting(f"img {n:g} / snr {s:g} dB", n, s) for n, s in grid]
    collapse = Setting("audio = noise", COLLAPSE_IMAGE_NOISE, COLLAPSE_SNR_DB)
    with single_threaded():
        for setting in sweep:
            if context.progress:
                print(f"contribution: {setting.name}", flush=True)
            _measure(setting, context.quick, ("image_only", "audio_only"))
        # The audio-only model on noise confirms the audio is useless (full size only).
        _measure(collapse, context.quick, () if context.quick else ("audio_only",))
    balanced = pick_balanced(sweep)
    assert collapse.items is not None and balanced.items is not None
    parts = criterion_parts(collapse.items, balanced.items, [s.items for s in sweep if s.items])
    plot = _plot(sweep, collapse, context.out_dir / "contribution_sweep.png")
    n_items = len(collapse.items.d)
    return Outcome(
        ours=parts[2].estimate,
        baselines={},
        parts=parts,
        seeds=[SEED],
        tables=[
            table(
                "Accuracy and modality contribution per setting",
                [
                    "setting",
                    "val acc (image / audio)",
                    "image-only test acc",
                    "audio-only test acc",
                    "fusion test acc",
                    "m_image",
                    "m_audio",
                    "m_audio (per-sample)",
                    "flips per sample (image / audio)",
                    "higher-accuracy modality has higher m",
                ],
                _rows(sweep, collapse, balanced),
            ),
        ],
        plots=[plot],
        notes=(
            f"Cross-attention fusion models, one seed each; m_i pooled over the whole test "
            f"split ({n_items} items; 7 x 7 patches of 4 px, 16 audio chunks, mean fill, "
            "softmax outputs). The balanced setting "
            f"({balanced.name}) is the one whose unimodal models have the closest best "
            "validation accuracies (best_val_acc in metrics.json), chosen before any test "
            "number is looked at. Intervals resample the test items of each setting (the "
            "same items for its image-only, audio-only and fusion models) and recompute "
            "the pooled m, the unimodal accuracies and ρ on each replicate; ρ over "
            f"{len(sweep)} settings moves in coarse steps, so its interval clears "
            f"{RHO_MIN} only when nearly every replicate ranks the settings almost "
            "perfectly. Flips: mean number of units per sample whose occlusion changes the "
            "predicted class."
        ),
    )


register(
    ClaimCheck(
        name="contribution",
        method="Modality contribution by occlusion",
        paper="arXiv 2503.01904",
        claim=(
            "Occlusion-based modality contribution finds a planted collapse (a modality "
            "made uninformative gets about 0) and ranks modalities as their unimodal "
            "accuracies do."
        ),
        metric=(
            "Spearman's ρ between the unimodal test-accuracy gap and the contribution gap "
            "(image − audio) across the noise sweep"
        ),
        criterion=(
            "all three parts, each a 95 % bootstrap interval over test items: (a) a fusion "
            f"model trained with audio replaced by noise ({COLLAPSE_SNR_DB:g} dB SNR): the "
            f"interval of its pooled m_audio lies below {COLLAPSE_MAX}; (b) in the sweep "
            "setting whose unimodal models have the closest validation accuracies: the "
            f"interval of min(m_image, m_audio) lies above {BALANCED_MIN}; (c) across the "
            "noise sweep (5 settings; 4 at quick size): the interval of Spearman's ρ between "
            "the unimodal test-accuracy gap and the m gap (both image − audio) lies above "
            f"{RHO_MIN}"
        ),
        run=run,
        unit="Spearman's ρ",
    )
)
