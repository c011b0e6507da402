"""Claim check ``text_bias``: a VLM that learned text is reliable follows corrupted text,
and SFT with text augmentation cures it without costing clean accuracy.

1. **Trusting model**: the bench VLM (:func:`polymodal.bench.vlm.vlm_config`) is
   fine-tuned on the ``trusting_text_only`` mixture — image only, image + matching
   text, text only + matching text: whenever there is text it is right, as in
   caption-rich data. Texts stand before or after the question (half and half),
   the two positions the probe asks with, so the "after" rows measure bias, not
   an unseen prompt format.
2. **SFT model**: the trusting model fine-tuned on ``sft_text_only`` — image only
   and image + matching / corrupted / irrelevant text, all labelled with the true
   answer, plus text only + corrupted text labelled with the text's answer (texts
   on both sides too).

Both are probed on the test questions (texts drawn with another seed than
training's) under image only, text only and image + text, with the text before
and after the question (:func:`polymodal.analysis.text_bias.probe.run_probe`).

**Verdict** (:func:`criterion_parts`, text before the question, corrupted text):
four parts, each a 95 % interval from a bootstrap over the probed questions (the
same resampled questions for every quantity a part compares); an empty,
special-token or out-of-vocabulary answer follows nothing
(:func:`polymodal.analysis.text_bias.metrics.follows`):

- trusting TPR > 0.5;
- trusting image-only − image+corrupted accuracy > 0.20 (paired);
- trusting TPR − SFT TPR > 0.30;
- SFT − trusting image-only accuracy > −0.02 (paired): SFT costs at most 2 points.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from polymodal.analysis.text_bias.metrics import ROW_COLUMNS, TextBiasResult
from polymodal.analysis.text_bias.plots import condition_bars
from polymodal.analysis.text_bias.probe import SmallVLMAdapter, probe_items, run_probe
from polymodal.bench.claims import ClaimCheck, Context, Outcome, Table
from polymodal.bench.registry import register
from polymodal.bench.report import table
from polymodal.bench.verdict import Interval, Part, bootstrap, paired_difference
from polymodal.bench.vlm import vlm_config
from polymodal.data.synth.shapes_text import ShapesTexts
from polymodal.data.synth.shapes_vqa import load_shapes_vqa
from polymodal.train.config import OptimConfig
from polymodal.train.vlm import TextTrainingConfig, TrainedVLM, VLMConfig, cached_vlm

POSITIONS = ("before", "after")
PROBE_SEED = 7  # texts of the test questions; training texts use seeds 0 and 1
MIN_TPR = 0.5  # trusting model, corrupted text
MIN_DROP = 0.20  # trusting model: image-only minus image + corrupted accuracy
MIN_TPR_CUT = 0.30  # trusting TPR minus SFT TPR
MIN_CLEAN_CHANGE = -0.02  # image-only accuracy after SFT − before


class ProbeItems(NamedTuple):
    """One model's per-question probe results (text before the question, corrupted text).

    Attributes:
        image_only: (N,) 1.0 where the image-only answer is right.
        image_corrupted: (N,) 1.0 where the image + corrupted text answer is right.
        follows_text: (N,) 1.0 where that answer follows the text alone.
        follows_image: (N,) 1.0 where it follows the image alone.
    """

    image_only: ArrayLike
    image_corrupted: ArrayLike
    follows_text: ArrayLike
    follows_image: ArrayLike

    @classmethod
    def of(cls, result: TextBiasResult) -> ProbeItems:
        text, image = result.follows("corrupted")
        return cls(
            *(
                np.asarray(v, dtype=np.float64)
                for v in (result.hits("image_only"), result.hits("image_corrupted"), text, image)
            )
        )


def _tpr(items: ProbeItems, index: np.ndarray) -> float:
    text = float(np.asarray(items.follows_text)[index].sum())
    image = float(np.asarray(items.follows_image)[index].sum())
    # a replicate without one decided item has no preference; rare unless few are decided
    return text / (text + image) if text + image else 0.5


def _tpr_interval(models: Sequence[ProbeItems], weights: Sequence[float]) -> Interval:
    """Interval of ``sum(weight_i * TPR_i)``, every model's TPR on the same resampled
    questions (a TPR is a ratio of counts, not a per-item mean)."""
    decided = [np.sum(m.follows_text) + np.sum(m.follows_image) for m in models]
    if not all(decided):
        nan = float("nan")  # no item follows either side alone: TPR is undefined
        return Interval(nan, nan, nan)
    return bootstrap(
        lambda idx: sum(w * _tpr(m, idx[0]) for w, m in zip(weights, models, strict=True)),
        [np.asarray(models[0].follows_text).size],
    )


def criterion_parts(trusting: ProbeItems, sft: ProbeItems) -> list[Part]:
    """The verdict's four parts from both models' per-question results on the same items.

    Args:
        trusting: the trusting model's :class:`ProbeItems` ((N,) arrays).
        sft: the SFT model's, on the same N questions and texts.

    Returns:
        Parts: trusting TPR (needs > 0.5), trusting accuracy drop under corrupted
        text (> 0.20), TPR trusting − SFT (> 0.30), image-only accuracy SFT −
        trusting (> −0.02).
    """
    return [
        Part.of("trusting TPR", _tpr_interval([trusting], [1.0]), MIN_TPR),
        Part.of(
            "trusting image-only − image+corrupted accuracy",
            paired_difference([trusting.image_only], [trusting.image_corrupted]),
            MIN_DROP,
        ),
        Part.of("TPR trusting − SFT", _tpr_interval([trusting, sft], [1.0, -1.0]), MIN_TPR_CUT),
        Part.of(
            "image-only accuracy SFT − trusting",
            paired_difference([sft.image_only], [trusting.image_only]),
            MIN_CLEAN_CHANGE,
        ),
    ]


def fine_tune(base: VLMConfig, start: TrainedVLM, mixture: str, seed: int) -> VLMConfig:
    """A fine-tuning run of ``start`` on a text mixture: one pass over the training
    questions (one per row) at a fifth of the base learning rate."""
    return dataclasses.replace(
        base,
        name=f"{base.name}-{mixture}",
        data=dataclasses.replace(base.data, rows="questions"),  # texts come one per question
        init_from=str(start.run_dir),
        # texts on both sides of the question, as the probe asks with both
        text=TextTrainingConfig(mixture=mixture, seed=seed, position="both"),
        optim=OptimConfig(lr=base.optim.lr / 5, weight_decay=base.optim.weight_decay),
        trainer=dataclasses.replace(base.trainer, max_epochs=1),
    )


def _rows(results: dict[str, TextBiasResult]) -> list[list[object]]:
    rows: list[list[object]] = []
    for name, result in results.items():
        rows += [[name, *(_fmt(v) for v in row)] for row in result.rows()]
    return rows


def _fmt(value: object) -> object:
    if value is None:
        return "—"  # the column does not apply to the condition
    return f"{value:.3f}" if isinstance(value, float) else value


def run(context: Context) -> Outcome:
    base = vlm_config(context.quick, context.device)
    lines = "text_bias" if context.progress else None
    trusting = cached_vlm(
        fine_tune(base, cached_vlm(base, lines), "trusting_text_only", seed=0), lines
    )
    sft = cached_vlm(fine_tune(base, trusting, "sft_text_only", seed=1), lines)
    for model in (trusting, sft):
        model.model.to(context.device)
    test = load_shapes_vqa("test", **base.data.options)
    count = 300 if context.quick else 1000
    items = probe_items(test, ShapesTexts(test, seed=PROBE_SEED), range(min(count, len(test))))
    results = {
        f"{name}, text {position}": run_probe(SmallVLMAdapter(model), items, position)
        for name, model in (("trusting", trusting), ("SFT", sft))
        for position in POSITIONS
    }
    before, after = results["trusting, text before"], results["SFT, text before"]
    tpr_before, tpr_after = before.tpr("corrupted"), after.tpr("corrupted")
    clean_before, clean_after = before.accuracy("image_only"), after.accuracy("image_only")
    parts = criterion_parts(ProbeItems.of(before), ProbeItems.of(after))
    tables: list[Table] = [
        table(
            "Probe per model, text position and condition (one trained model each, seed 0)",
            ["model", *ROW_COLUMNS],
            _rows(results),
        ),
    ]
    plot = condition_bars(results, context.out_dir / "text_bias.png", "Text-bias probe")
    effect = {
        name: f"TPR {r.tpr('corrupted'):.2f}, image+corrupted {r.accuracy('image_corrupted'):.2f}"
        for name, r in results.items()
    }
    return Outcome(
        ours=tpr_after,
        baselines={
            "trusting TPR": tpr_before,
            "trusting image-only acc": clean_before,
            "trusting image+corrupted acc": before.accuracy("image_corrupted"),
            "SFT image-only acc": clean_after,
            "SFT image+corrupted acc": after.accuracy("image_corrupted"),
        },
        parts=parts,
        seeds=[0],
        tables=tables,
        plots=[plot],
        notes=(
            f"{len(items):,} probed test questions; the verdict reads the text-before rows. "
            "Text position: " + "; ".join(f"{k}: {v}" for k, v in effect.items()) + "."
        ),
    )


register(
    ClaimCheck(
        name="text_bias",
        method="Words or Vision (text-bias probe, SFT with text augmentation)",
        paper="arXiv 2503.02199",
        claim=(
            "A small VLM trained where text is always right follows corrupted text; SFT with "
            "text augmentation cuts that without hurting clean accuracy."
        ),
        metric="TPR under corrupted text (text before the question), after SFT",
        criterion=(
            "text before the question, corrupted text; each 95 % interval (bootstrap over the "
            "probed questions, paired where two quantities are compared) clears its margin: "
            "trusting TPR > 0.5; trusting image-only − image+corrupted accuracy > 0.20; "
            "TPR trusting − SFT > 0.30; image-only accuracy SFT − trusting > −0.02"
        ),
        run=run,
        higher_is_better=False,
        unit="TPR",  # SFT should lower the text preference
        default=False,
        skip_reason="fine-tunes the small VLM twice after training it; run --only text_bias",
        honours_device=True,
    )
)
