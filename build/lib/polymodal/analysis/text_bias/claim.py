"""Claim check ``text_bias``: a VLM that learned text is reliable follows corrupted text,
and SFT with text augmentation cures it without costing clean accuracy.

1. **Trusting model**: the bench VLM (:func:`polymodal.bench.vlm.vlm_config`) is
   fine-tuned on the ``trusting_text_only`` mixture — image only, image + matching
   text, text only + matching text: whenever there is text it is right, as in
   caption-rich data.
2. **SFT model**: the trusting model fine-tuned on ``sft_text_only`` — image only
   and image + matching / corrupted / irrelevant text, all labelled with the true
   answer, plus text only + corrupted text labelled with the text's answer.

Both are probed on the test questions (texts drawn with another seed than
training's) under image only, text only and image + text, with the text before
and after the question (:func:`polymodal.analysis.text_bias.probe.run_probe`).
"""

from __future__ import annotations

import dataclasses

from polymodal.analysis.text_bias.metrics import ROW_COLUMNS, TextBiasResult
from polymodal.analysis.text_bias.plots import condition_bars
from polymodal.analysis.text_bias.probe import SmallVLMAdapter, probe_items, run_probe
from polymodal.bench.claims import ClaimCheck, Context, Outcome, Table
from polymodal.bench.registry import register
from polymodal.bench.report import table
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
MAX_CLEAN_CHANGE = 0.02  # |image-only accuracy after SFT − before|


def fine_tune(base: VLMConfig, start: TrainedVLM, mixture: str, seed: int) -> VLMConfig:
    """A fine-tuning run of ``start`` on a text mixture: one pass over the training
    questions (one per row) at a fifth of the base learning rate."""
    return dataclasses.replace(
        base,
        name=f"{base.name}-{mixture}",
        init_from=str(start.run_dir),
        text=TextTrainingConfig(mixture=mixture, seed=seed),
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
    base = vlm_config(context.quick)
    trusting = cached_vlm(fine_tune(base, cached_vlm(base), "trusting_text_only", seed=0))
    sft = cached_vlm(fine_tune(base, trusting, "sft_text_only", seed=1))
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
    drop = clean_before - before.accuracy("image_corrupted")
    parts = {
        "trusting TPR > 0.5": tpr_before > MIN_TPR,
        "trusting accuracy drop >= 0.20": drop >= MIN_DROP,
        "SFT cuts TPR by >= 0.30": tpr_before - tpr_after >= MIN_TPR_CUT,
        "clean accuracy within 0.02": abs(clean_after - clean_before) <= MAX_CLEAN_CHANGE,
    }
    tables: list[Table] = [
        table(
            "Probe per model, text position and condition", ["model", *ROW_COLUMNS], _rows(results)
        ),
        table(
            "Criterion parts (text before the question, corrupted text)",
            ["part", "value", "met"],
            [
                ["trusting TPR", f"{tpr_before:.3f}", parts["trusting TPR > 0.5"]],
                ["trusting drop", f"{drop:.3f}", parts["trusting accuracy drop >= 0.20"]],
                [
                    "TPR trusting − SFT",
                    f"{tpr_before - tpr_after:.3f}",
                    parts["SFT cuts TPR by >= 0.30"],
                ],
                [
                    "image-only accuracy, SFT − trusting",
                    f"{clean_after - clean_before:+.3f}",
                    parts["clean accuracy within 0.02"],
                ],
            ],
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
        holds=all(parts.values()),
        seeds=[0],
        tables=tables,
        plots=[plot],
        notes="Text position: " + "; ".join(f"{k}: {v}" for k, v in effect.items()) + ".",
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
            "trusting model: TPR > 0.5 and image-only minus image+corrupted accuracy >= 0.20; "
            "after SFT: TPR falls by >= 0.30 and image-only accuracy changes by <= 0.02"
        ),
        run=run,
        default=False,
        skip_reason="fine-tunes the small VLM twice after training it; run --only text_bias",
    )
)
