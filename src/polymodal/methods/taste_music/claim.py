"""Claim check ``taste_music``: a taste-conditioned music generator, fine-tuned on
taste descriptions, makes clips that an independent taste classifier recognises as
the asked taste more often than the clips of the model before fine-tuning
(arXiv 2503.02823).

The judge (:mod:`~polymodal.methods.taste_music.judge`) is trained on audio of
pieces no generator sees and scored on held-out pieces before it judges. The base
model is the pre-trained generator; each seed fine-tunes it on the 85 taste pieces
(:mod:`~polymodal.methods.taste_music.experiment`). Both are prompted with the same
unseen taste phrasings, sampling seeds and settings.

The criterion, fixed before running: per taste, the fine-tuned − base rate of
clips classified as the asked taste, the mean over seeds 0–2 of the per-seed
difference on 50 paired clips per taste, its 95 % interval from a paired bootstrap
over clips; a taste holds when its interval lies above 0. The claim holds when at
least 3 of the 4 tastes hold, does not hold when 2 or more tastes have their
interval below 0 (3 can no longer hold), and is inconclusive otherwise
(:func:`count_part`). The correspondence features are reported beside it, each
with its expected direction; they do not enter the verdict.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tqdm.auto import tqdm

from polymodal.bench.claims import ClaimCheck, Context, Outcome, Table
from polymodal.bench.registry import register
from polymodal.bench.report import table
from polymodal.bench.verdict import RESAMPLES, Part, paired_difference
from polymodal.data.synth.music_compose import TASTES
from polymodal.methods.taste_music.compose import write_piece
from polymodal.methods.taste_music.experiment import (
    BASE,
    FULL,
    QUICK,
    TEMPERATURE,
    TOP_K,
    TUNED,
    Clip,
    finetune_config,
    generate_clips,
    pretrain_config,
)
from polymodal.methods.taste_music.judge import EXPECTED, FEATURES, TasteJudge, train_judge
from polymodal.methods.taste_music.plots import feature_bars, piano_rolls

SEEDS = (0, 1, 2)
CLIPS = {"full": 50, "quick": 6}
JUDGE_SIZES = {"full": (60, 20, 40), "quick": (8, 4, 4)}
"""Judge pieces per taste: train, validation, test."""
NEEDED = 3
"""Tastes whose interval must lie above 0."""
LISTENING = 3
"""WAV and MIDI files per taste and model in the check's folder."""


def taste_parts(
    tuned: dict[str, list[np.ndarray]],
    base: dict[str, list[np.ndarray]],
    resamples: int = RESAMPLES,
) -> list[Part]:
    """One part per taste: fine-tuned − base classified-as-asked rate > 0.

    Args:
        tuned, base: ``{taste: one (N,) 0/1 array per seed}``, paired clip by clip.
    """
    return [
        Part.of(
            f"{taste}: fine-tuned − base rate",
            paired_difference(tuned[taste], base[taste], resamples),
        )
        for taste in tuned
    ]


def count_part(parts: Sequence[Part], needed: int = NEEDED) -> Part:
    """The criterion as one part: how many tastes hold, as an interval of counts.

    ``low`` counts the tastes whose interval lies above 0 (surely holding), ``high``
    the tastes not lying entirely below 0 (possibly holding), ``estimate`` those
    with a positive point estimate. With margin ``needed - 0.5`` the part holds
    when at least ``needed`` tastes hold, does not hold when fewer than ``needed``
    can, and is inconclusive otherwise.
    """
    low = sum(p.verdict == "holds" for p in parts)
    high = sum(p.verdict != "does not hold" for p in parts)
    estimate = sum(p.estimate > 0 for p in parts)
    name = f"tastes with fine-tuned − base interval above 0 (of {len(parts)})"
    return Part(name, float(estimate), float(low), float(high), margin=needed - 0.5)


def hits(clips: Sequence[Clip], judge: TasteJudge) -> dict[str, np.ndarray]:
    """Per taste, (N,) 1.0 where the judge names the asked taste."""
    predicted = judge.predict(np.stack([c.features for c in clips]))
    asked = np.array([c.taste for c in clips])
    return {t: (predicted[asked == k] == k).astype(float) for k, t in enumerate(TASTES)}


def feature_rows(
    tuned: Sequence[Sequence[Clip]], base: Sequence[Sequence[Clip]], resamples: int = RESAMPLES
) -> list[list[str]]:
    """Per taste and expected feature: base and fine-tuned means, the difference with its
    interval (pairs where both clips have the feature), and whether it moved as expected."""
    rows = []
    for k, taste in enumerate(TASTES):
        for feature, sign in EXPECTED[taste].items():
            ours, theirs = [], []
            for a_seed, b_seed in zip(tuned, base, strict=True):
                a = np.array([c.correspondence[feature] for c in a_seed if c.taste == k])
                b = np.array([c.correspondence[feature] for c in b_seed if c.taste == k])
                both = np.isfinite(a) & np.isfinite(b)
                if both.any():
                    ours.append(a[both])
                    theirs.append(b[both])
            if not ours:
                rows.append([taste, feature, "↑" if sign > 0 else "↓", "-", "-", "-", "no clips"])
                continue
            effect = paired_difference(ours, theirs, resamples)
            clears = effect.low > 0 if sign > 0 else effect.high < 0
            wrong = effect.high < 0 if sign > 0 else effect.low > 0
            rows.append(
                [
                    taste,
                    feature,
                    "↑" if sign > 0 else "↓",
                    f"{np.mean(np.concatenate(theirs)):.3g}",
                    f"{np.mean(np.concatenate(ours)):.3g}",
                    f"{effect.estimate:+.3g} [{effect.low:+.3g}, {effect.high:+.3g}]",
                    "yes" if clears else "opposite" if wrong else "inside the noise",
                ]
            )
    return rows


def _judge_tables(judge: TasteJudge, sizes: tuple[int, int, int]) -> list[Table]:
    quality = table(
        "The judge on its own held-out rule-generated pieces (audio features, logistic regression)",
        ["train / val / test pieces per taste", "chosen C", "val accuracy", "test accuracy"],
        [
            [
                " / ".join(map(str, sizes)),
                judge.regularisation,
                judge.val_accuracy,
                judge.test_accuracy,
            ]
        ],
    )
    confusion = table(
        "Judge test confusion (rows: true taste, columns: predicted)",
        ["taste", *TASTES],
        [[t, *map(int, judge.confusion[k])] for k, t in enumerate(TASTES)],
    )
    return [quality, confusion]


def _listening(clips: dict[str, list[Clip]], context: Context) -> None:
    """A few WAV and MIDI files per taste and model (seed 0) in ``listening/``."""
    folder = context.out_dir / "listening"
    for model, seed_clips in clips.items():
        for k, taste in enumerate(TASTES):
            chosen = [c for c in seed_clips if c.taste == k][:LISTENING]
            for i, clip in enumerate(chosen):
                write_piece(clip.piece, folder / f"{taste}_{model}_{i}")


def run(context: Context) -> Outcome:
    from polymodal.train.recipe import load_trained, train_cached

    size = "quick" if context.quick else "full"
    seeds = SEEDS[:1] if context.quick else SEEDS
    judge = train_judge(JUDGE_SIZES[size])
    pretrain = pretrain_config(context.quick, context.device)
    train_cached(pretrain)
    base_model = load_trained(pretrain.out_dir)[1].to(context.device)
    clips: dict[str, list[list[Clip]]] = {TUNED: [], BASE: []}
    for seed in tqdm(seeds, desc="taste_music: fine-tuning", disable=not context.progress):
        config = finetune_config(seed, context.quick, context.device)
        train_cached(config)
        tuned_model = load_trained(config.out_dir)[1].to(context.device)
        clips[TUNED].append(generate_clips(tuned_model, CLIPS[size], seed))
        clips[BASE].append(generate_clips(base_model, CLIPS[size], seed))
    scored = {m: [hits(c, judge) for c in clips[m]] for m in clips}
    per_taste = {m: {t: [s[t] for s in scored[m]] for t in TASTES} for m in scored}
    parts = taste_parts(per_taste[TUNED], per_taste[BASE])
    rates = {
        m: {t: float(np.mean([a.mean() for a in per_taste[m][t]])) for t in TASTES} for m in clips
    }
    malformed = {
        m: sum(c.malformed for s in clips[m] for c in s) / sum(len(s) for s in clips[m])
        for m in clips
    }
    taste_rows = [
        [t, f"{rates[TUNED][t]:.3f}", f"{rates[BASE][t]:.3f}", p.describe(), p.verdict]
        for t, p in zip(TASTES, parts, strict=True)
    ]
    values = {
        m: {
            t: {
                f: [c.correspondence[f] for s in clips[m] for c in s if c.taste == k]
                for f in FEATURES
            }
            for k, t in enumerate(TASTES)
        }
        for m in clips
    }
    first = {
        m: [next(c for c in clips[m][0] if c.taste == k).piece for k in range(len(TASTES))]
        for m in (BASE, TUNED)
    }
    plots = [
        feature_bars(values, context.out_dir / "taste_music_features.png"),
        piano_rolls(first, context.out_dir / "taste_music_piano_rolls.png"),
    ]
    _listening({m: clips[m][0] for m in clips}, context)
    sizes = JUDGE_SIZES[size]
    corpus = (QUICK if context.quick else FULL)["pretrain"]
    return Outcome(
        ours=float(np.mean(list(rates[TUNED].values()))),
        baselines={BASE: float(np.mean(list(rates[BASE].values())))},
        parts=[count_part(parts)],
        seeds=list(seeds),
        tables=[
            table(
                "Per taste: share of clips the judge classifies as the asked taste",
                ["taste", TUNED, BASE, "effect [95 % interval]", "taste verdict"],
                taste_rows,
            ),
            *_judge_tables(judge, sizes),
            table(
                "Correspondence features, fine-tuned vs base (paired clips; expected direction)",
                [
                    "taste",
                    "feature",
                    "expected",
                    BASE,
                    TUNED,
                    "difference [95 % interval]",
                    "moved as expected",
                ],
                feature_rows(clips[TUNED], clips[BASE]),
            ),
            table(
                "Malformed tokens per clip (tokens that fit no event)",
                ["model", "mean per clip"],
                [[m, f"{malformed[m]:.2f}"] for m in (TUNED, BASE)],
            ),
        ],
        plots=plots,
        notes=(
            f"{CLIPS[size]} clips per taste and seed, prompts cycling through unseen taste "
            f"phrasings, temperature {TEMPERATURE}, top-k {TOP_K}, the same sampling seeds for "
            f"both models. Base: one pre-training run (seed 0, {corpus}); "
            "fine-tuned: that run fine-tuned per seed on the 85 taste pieces, best epoch on the 15 "
            "evaluation pieces. The judge hears audio of the built-in synthesiser only; its pieces "
            "come from a random stream no generator trains on. Listening material: listening/*.wav "
            "and *.mid (seed 0, 3 per taste and model)."
        ),
    )


register(
    ClaimCheck(
        name="taste_music",
        method="A Multimodal Symphony (taste-conditioned music generation)",
        paper="arXiv 2503.02823",
        claim=(
            "A text-to-music generator fine-tuned on pieces described by taste makes clips that "
            "an independent taste classifier recognises as the asked taste more often than the "
            "clips of the same generator before fine-tuning, prompted the same way."
        ),
        metric=(
            "share of clips the audio taste classifier assigns to the asked taste, fine-tuned "
            "model, mean over tastes and 3 seeds"
        ),
        criterion=(
            "per taste, fine-tuned − base classified-as-asked rate: mean over seeds 0–2 of the "
            "per-seed difference on 50 paired clips, 95 % interval from a paired bootstrap over "
            "clips; holds when at least 3 of the 4 tastes have their interval above 0, does not "
            "hold when 3 can no longer hold (2 or more intervals below 0), inconclusive otherwise"
        ),
        run=run,
        default=False,
        skip_reason=(
            "pre-trains a generator and fine-tunes it 3 times (about 22 min on 1 CPU thread "
            "beside other jobs); run it with --only taste_music"
        ),
        unit="rate",
        honours_device=True,
    )
)
