"""Claim check ``contribution``: occlusion contribution finds collapse and tracks ability.

On AV-Digits (image + audio digits) the check trains, with the standard recipe:

* **collapse** — a cross-attention fusion model whose audio is replaced by noise
  (``audio_snr_db = -40``: the spoken digit is 100 times quieter than the noise),
  plus an audio-only model on the same data to confirm the audio is useless;
* **sweep** — five settings that trade image noise against audio noise, from
  clean images with drowned speech to noisy images with clear speech; in each,
  an image-only, an audio-only and a cross-attention fusion model.

Each fusion model is analysed on its test split (7 x 7 image patches, 16 audio
time chunks, mean fill, softmax outputs), giving the pooled m_image and m_audio.
Trained runs and analyses are cached under the polymodal home.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polymodal.bench.claims import ClaimCheck, Context, Outcome
from polymodal.bench.plots import pyplot, save_figure
from polymodal.bench.registry import register
from polymodal.bench.report import table
from polymodal.data.cache import home, params_key
from polymodal.train.config import ExperimentConfig, from_dict

COLLAPSE_SNR_DB = -40.0
SWEEP = ((0.05, -25.0), (0.1, -21.0), (0.2, -17.0), (0.5, -10.0), (0.8, -5.0))
"""(image_noise, audio_snr_db) per setting, from image-friendly to audio-friendly."""
QUICK_SWEEP = (SWEEP[0], SWEEP[2], SWEEP[3], SWEEP[4])
COLLAPSE_IMAGE_NOISE = 0.2
SEED = 0
COLLAPSE_MAX = 0.05
BALANCED_MIN = 0.2
RHO_MIN = 0.8


@dataclass
class Setting:
    """One data setting and what was measured on it."""

    name: str
    image_noise: float
    audio_snr_db: float
    acc_image: float | None = None
    acc_audio: float | None = None
    acc_fusion: float = 0.0
    m: dict[str, float] | None = None
    m_per_sample: dict[str, float] | None = None
    flips: dict[str, float] | None = None

    @property
    def gap(self) -> float:
        """Unimodal accuracy gap, image minus audio."""
        assert self.acc_image is not None and self.acc_audio is not None
        return self.acc_image - self.acc_audio


def experiment(fusion: str, image_noise: float, snr_db: float, quick: bool) -> ExperimentConfig:
    """One AV-Digits training run (quick: a small data set and two epochs)."""
    size = {"train": 800, "val": 200, "test": 200, "voices": 40} if quick else {}
    size = size or {"train": 1500, "val": 300, "test": 500, "voices": 60}
    values = {
        "name": f"contribution-{fusion}",
        "seed": SEED,
        "data": {
            "name": "av_digits",
            "options": {**size, "image_noise": image_noise, "audio_snr_db": snr_db},
            "batch_size": 64,
        },
        "model": {"fusion": fusion, "dim": 64},
        "optim": {"lr": 2e-3, "weight_decay": 1e-4},
        "trainer": {"max_epochs": 3 if quick else 4, "patience": None, "progress_bar": False},
    }
    config = from_dict(ExperimentConfig, values)
    config.out_dir = str(home() / "bench" / "contribution" / params_key(config.to_dict()))
    return config


def analyse(run_dir: Path, samples: int) -> dict[str, Any]:
    """Pooled and per-sample m of a trained image + audio model on its test split (cached)."""
    from polymodal.analysis.contribution.measure import modality_contribution
    from polymodal.analysis.contribution.units import Chunks, Patches
    from polymodal.data.contract import collate
    from polymodal.train.recipe import load_trained

    cached = run_dir / f"contribution-{samples}.json"
    if cached.is_file():
        return json.loads(cached.read_text())  # type: ignore[no-any-return]
    _, model, data = load_trained(run_dir)
    test = data.dataset("test")
    batch = collate([test[i] for i in range(min(samples, len(test)))])  # type: ignore[arg-type]
    units = {"image": Patches(4), "audio": Chunks(count=16)}
    result = modality_contribution(model, batch, units, fill="mean", batch_size=512)
    summary = {"m": result.m, "m_per_sample": result.m_per_sample, "flips": result.flip_counts()}
    cached.write_text(json.dumps(summary, indent=2))
    return summary


def _measure(setting: Setting, quick: bool, unimodal: tuple[str, ...]) -> Setting:
    from polymodal.bench.fusion import train_cached

    noise, snr = setting.image_noise, setting.audio_snr_db
    accuracy = {
        name: train_cached(experiment(name, noise, snr, quick))["test_acc"]
        for name in (*unimodal, "cross_attention")
    }
    setting.acc_image = accuracy.get("image_only")
    setting.acc_audio = accuracy.get("audio_only")
    setting.acc_fusion = accuracy["cross_attention"]
    fused = Path(experiment("cross_attention", noise, snr, quick).out_dir)
    summary = analyse(fused, 100 if quick else 500)
    setting.m, setting.m_per_sample = summary["m"], summary["m_per_sample"]
    setting.flips = summary["flips"]
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


def run(context: Context) -> Outcome:
    import numpy as np
    from scipy.stats import spearmanr

    from polymodal.methods.subtype_fusion.claim import single_threaded

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
    assert collapse.m is not None
    balanced = min(sweep, key=lambda s: abs(s.gap))
    assert balanced.m is not None
    rho = float(spearmanr([s.gap for s in sweep], [s.m["image"] for s in sweep if s.m])[0])
    # A setting agrees when the unimodal gap and m_image - m_audio have the same sign
    # (a tie in accuracy has no ranking to follow and counts as a disagreement).
    agree = [bool(np.sign(s.gap) == np.sign(s.m["image"] - s.m["audio"])) for s in sweep if s.m]
    collapse_ok = collapse.m["audio"] < COLLAPSE_MAX
    balanced_ok = min(balanced.m.values()) > BALANCED_MIN
    ranking_ok = all(agree) and rho >= RHO_MIN

    def fmt(value: float | None) -> str:
        return "—" if value is None else f"{value:.4f}"

    rows = [
        [
            s.name,
            fmt(s.acc_image),
            fmt(s.acc_audio),
            fmt(s.acc_fusion),
            fmt(s.m["image"] if s.m else None),
            fmt(s.m["audio"] if s.m else None),
            fmt(s.m_per_sample["audio"] if s.m_per_sample else None),
            f"{s.flips['image']:.2f} / {s.flips['audio']:.2f}" if s.flips else "—",
            "—" if s is collapse else ("yes" if ok else "no"),
        ]
        for s, ok in zip([*sweep, collapse], [*agree, True], strict=True)
    ]
    checks = [
        ["collapse: m_audio < 0.05 with audio = noise", fmt(collapse.m["audio"]), collapse_ok],
        [
            f"balanced ({balanced.name}): both m_i > 0.2",
            f"{balanced.m['image']:.4f} / {balanced.m['audio']:.4f}",
            balanced_ok,
        ],
        [
            f"ranking agrees in every setting and ρ ≥ {RHO_MIN}",
            f"{sum(agree)}/{len(agree)}, ρ = {rho:.3f}",
            ranking_ok,
        ],
    ]
    plot = _plot(sweep, collapse, context.out_dir / "contribution_sweep.png")
    return Outcome(
        ours=rho,
        baselines={},
        holds=collapse_ok and balanced_ok and ranking_ok,
        seeds=[SEED],
        tables=[
            table("The three parts of the criterion", ["part", "measured", "holds"], checks),
            table(
                "Test accuracy and modality contribution per setting",
                [
                    "setting",
                    "image-only acc",
                    "audio-only acc",
                    "fusion acc",
                    "m_image",
                    "m_audio",
                    "m_audio (per-sample)",
                    "flips per sample (image / audio)",
                    "ranking agrees",
                ],
                rows,
            ),
        ],
        plots=[plot],
        notes=(
            "Cross-attention fusion models, one seed each; m_i pooled over the test split "
            "(7 x 7 patches of 4 px, 16 audio chunks, mean fill, softmax outputs). The "
            "balanced setting is the one whose unimodal accuracies are closest. Flips: mean "
            "number of units per sample whose occlusion changes the predicted class."
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
        metric="Spearman's ρ between m_image and the unimodal accuracy gap (image − audio)",
        criterion=(
            f"all of: (1) a fusion model trained with audio replaced by noise has m_audio < "
            f"{COLLAPSE_MAX}; (2) in the sweep setting with the closest unimodal accuracies "
            f"both m_i > {BALANCED_MIN}; (3) across the noise sweep (5 settings; 4 at quick "
            "size) the modality with the higher unimodal accuracy has the higher m_i in "
            f"every setting, and Spearman's ρ ≥ {RHO_MIN}"
        ),
        run=run,
    )
)
