"""Claim check ``divprune``: at ~90 % pruning DivPrune keeps far more accuracy than the baselines.

The small LLaVA-style VLM of :mod:`polymodal.train.vlm`, trained once on
Shapes-VQA and cached, answers the test questions with its visual tokens pruned
by DivPrune, random selection (3 seeds) and strided uniform selection before the
language model, and by FastV inside it (:mod:`polymodal.methods.divprune.fastv`:
LM layers 0–1 see every token, layers ≥ 2 the visual tokens the last prompt token
attended to most in layer 1), at keep ratios 1.0, 0.5, 0.25, 0.1 and 0.05. An
extra row, ``attention``, applies layer 2's last-token attention ranking before
layer 0 (a pre-filter, not FastV; not in the verdict). Every method runs through
the Hugging Face path of :mod:`polymodal.hf.llava`: image features once,
selection, pruned ``inputs_embeds``, the next-token logits. FastV spends more
prefill FLOPs at the same keep ratio (its first K layers are unpruned); the
report lists each method's share of the FLOPs saved.

**Verdict** (:func:`criterion_parts`), at keep ratio 0.1 over the same test
questions: DivPrune / unpruned accuracy ≥ 0.90 (a ratio of means, bootstrapped
over questions), DivPrune − random ≥ 0.10 and DivPrune − FastV ≥ 0.10
(paired bootstrap over questions). Random selection is pooled over its 3
selection seeds by averaging each question's correctness over them: the seeds
prune the same model on the same questions, so the questions are resampled once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from lightning.fabric.utilities import move_data_to_device
from numpy.typing import ArrayLike
from torch import Tensor
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from polymodal.bench.claims import ClaimCheck, Context, Outcome
from polymodal.bench.registry import register
from polymodal.bench.report import mean_std, table
from polymodal.bench.verdict import Interval, Part, bootstrap, paired_difference
from polymodal.bench.vlm import vlm_config
from polymodal.data.synth.shapes_vqa import QUESTION_TYPES, load_shapes_vqa
from polymodal.hf.llava import image_features
from polymodal.methods.divprune.fastv import fastv_next_token_logits, fastv_prefill_flops
from polymodal.methods.divprune.llava import (
    last_token_attention,
    next_token_logits,
    prefill_flops,
    prune_inputs,
)
from polymodal.methods.divprune.plots import accuracy_plot, kept_tokens_figure
from polymodal.methods.divprune.select import keep_count, select_tokens
from polymodal.train.vlm import TrainedVLM, accuracy_by_type, cached_vlm
from polymodal.train.vqa_batches import VQABatch, VQACollator

RATIOS = (1.0, 0.5, 0.25, 0.1, 0.05)
CRITERION_RATIO = 0.1
RANDOM_SEEDS = (0, 1, 2)
BASELINES = ("random", "fastv", "uniform")
EXTRA = ("attention",)  # FastV's ranking applied before layer 0: reported, not judged
FASTV_LAYER = 2
BATCH = 250
QUESTIONS = 1000  # the first 1,000 test questions (of 2,000): 25 pruned passes each
DENSE_QUESTIONS = 500  # 576 tokens cost ~9x per pass; still ±0.04 on a 0.10 margin
MIN_KEPT = 0.90  # DivPrune / unpruned accuracy
MIN_GAIN = 0.10  # DivPrune − random and DivPrune − FastV accuracy


@dataclass
class PruningResults:
    """Per-item correctness of every (method, seed, ratio) run, and the question types."""

    correct: dict[tuple[str, int, float], list[Tensor]] = field(default_factory=dict)
    question_type: list[Tensor] = field(default_factory=list)

    def add(self, method: str, seed: int, ratio: float, correct: Tensor) -> None:
        self.correct.setdefault((method, seed, ratio), []).append(correct.cpu())

    def accuracy(self, method: str, ratio: float) -> list[float]:
        """Accuracy of each seed of ``method`` at ``ratio``."""
        return [
            float(torch.cat(runs).float().mean())
            for (m, _, r), runs in self.correct.items()
            if m == method and r == ratio
        ]

    def mean(self, method: str, ratio: float) -> float:
        return float(np.mean(self.accuracy(method, ratio)))

    def items(self, method: str, ratio: float) -> list[np.ndarray]:
        """Per-question correctness (N,) float of each seed of ``method`` at ``ratio``."""
        return [
            torch.cat(runs).float().numpy()
            for (m, _, r), runs in self.correct.items()
            if m == method and r == ratio
        ]

    def per_type(self, method: str, ratio: float) -> dict[str, float]:
        kinds = torch.cat(self.question_type)
        seeds = [torch.cat(v) for (m, _, r), v in self.correct.items() if (m, r) == (method, ratio)]
        per_seed = [accuracy_by_type(c, kinds).per_type for c in seeds]
        return {k: float(np.mean([p[k] for p in per_seed])) for k in per_seed[0]}


def criterion_parts(
    full: ArrayLike, divprune: ArrayLike, random: Sequence[ArrayLike], fastv: ArrayLike
) -> list[Part]:
    """The verdict's parts from per-question correctness at the criterion's keep ratio.

    Args:
        full: (N,) 1.0 where the unpruned model answered right.
        divprune: (N,) the same for DivPrune, on the same questions.
        random: one (N,) array per selection seed of random pruning.
        fastv: (N,) FastV pruning.

    Returns:
        Three parts: DivPrune / unpruned accuracy (needs > 0.90), DivPrune − random
        and DivPrune − FastV accuracy (each needs > 0.10).
    """
    ours = np.asarray(divprune, dtype=np.float64)
    unpruned = np.asarray(full, dtype=np.float64)
    pooled = np.mean([np.asarray(r, dtype=np.float64) for r in random], axis=0)

    def kept(indices: list[np.ndarray]) -> float:
        (i,) = indices
        # a replicate without one question the unpruned model gets right counts as
        # nothing kept (conservative; rare unless it is right on very few questions)
        base = unpruned[i].mean()
        return float(ours[i].mean() / base) if base > 0 else 0.0

    nan = float("nan")  # the share kept of nothing is undefined: an inconclusive part
    share = bootstrap(kept, [ours.size]) if unpruned.any() else Interval(nan, nan, nan)
    return [
        Part.of("DivPrune / unpruned accuracy", share, MIN_KEPT),
        Part.of("DivPrune − random accuracy", paired_difference([ours], [pooled]), MIN_GAIN),
        Part.of("DivPrune − FastV accuracy", paired_difference([ours], [fastv]), MIN_GAIN),
    ]


def _methods() -> list[tuple[str, int]]:
    return [
        ("divprune", 0),
        *(("random", s) for s in RANDOM_SEEDS),
        ("fastv", 0),
        ("uniform", 0),
        ("attention", 0),
    ]


@torch.no_grad()
def evaluate_pruning(
    vlm: TrainedVLM, batches: DataLoader[VQABatch], progress: bool = False
) -> PruningResults:
    """Answer every test question under every method and keep ratio."""
    model, results = vlm.model, PruningResults()
    generators = {s: torch.Generator().manual_seed(s) for s in RANDOM_SEEDS}
    device = next(model.parameters()).device
    for batch in tqdm(batches, desc="evaluating pruned answers", disable=not progress):
        batch = move_data_to_device(batch, device)
        prompt_ids, prompt_mask = batch.prompt()
        features = image_features(model, batch.pixel_values)  # (B, M, D)
        scores = last_token_attention(model, prompt_ids, prompt_mask, features, FASTV_LAYER)
        results.question_type.append(batch.question_type.cpu())
        for ratio in RATIOS:
            keep = keep_count(features.shape[1], ratio)
            for method, seed in _methods():
                if ratio == 1.0 and (method, seed) != ("divprune", 0):
                    correct = results.correct[("divprune", 0, 1.0)][-1]  # all keep everything
                elif method == "fastv":
                    fastv = fastv_next_token_logits(
                        model, prompt_ids, prompt_mask, features, keep, FASTV_LAYER
                    )
                    correct = fastv.logits.argmax(dim=-1) == batch.answer_ids
                else:
                    kept = select_tokens(
                        method, features, keep, scores=scores, generator=generators.get(seed)
                    )
                    pruned = prune_inputs(model, prompt_ids, prompt_mask, features, kept)
                    answer = next_token_logits(model, pruned).argmax(dim=-1)
                    correct = answer == batch.answer_ids
                results.add(method, seed, ratio, correct)
    return results


def run(context: Context) -> Outcome:
    """The 64-token regime: the bench VLM of ``configs/shapes_vlm.yaml``."""
    return _run(context, dense=False)


def run_dense(context: Context) -> Outcome:
    """The paper's regime: 576 visual tokens, most of them redundant
    (``configs/shapes_vlm_dense.yaml``)."""
    return _run(context, dense=True)


def _run(context: Context, dense: bool) -> Outcome:
    config = vlm_config(context.quick, context.device, dense)
    name = "divprune_dense" if dense else "divprune"
    vlm = cached_vlm(config, name if context.progress else None)
    vlm.model.to(context.device)
    test = load_shapes_vqa("test", **config.data.options)
    questions = Subset(test, range(min(DENSE_QUESTIONS if dense else QUESTIONS, len(test))))
    loader: DataLoader[VQABatch] = DataLoader(
        questions,  # type: ignore[arg-type]  # the collator turns samples into VQABatch
        batch_size=BATCH,
        collate_fn=VQACollator(vlm.fmt),
    )
    results = evaluate_pruning(vlm, loader, context.progress)

    full = results.mean("divprune", 1.0)
    ours = results.mean("divprune", CRITERION_RATIO)
    baselines = {m: results.mean(m, CRITERION_RATIO) for m in BASELINES}
    (divprune,) = results.items("divprune", CRITERION_RATIO)
    (fastv,) = results.items("fastv", CRITERION_RATIO)
    parts = criterion_parts(
        results.items("divprune", 1.0)[0],
        divprune,
        results.items("random", CRITERION_RATIO),
        fastv,
    )
    methods = ("divprune", *BASELINES, *EXTRA)
    rows = [
        [f"{r:g}", keep_count(vlm.fmt.num_visual_tokens, r)]
        + [_fmt(results.accuracy(m, r)) for m in methods]
        for r in RATIOS
    ]
    type_rows = [
        [
            f"{m} @ {r:g}",
            *(f"{results.per_type(m, r).get(k, float('nan')):.3f}" for k in QUESTION_TYPES),
        ]
        for m, r in [("divprune", 1.0), *((m, CRITERION_RATIO) for m in methods)]
    ]
    curves = {m: {r: results.accuracy(m, r) for r in RATIOS} for m in methods}
    plots = [
        accuracy_plot(curves, context.out_dir / f"{name}_accuracy.png", full),
        kept_tokens_figure(vlm, test, context.out_dir / f"{name}_kept_tokens.png", CRITERION_RATIO),
    ]
    trained = {k: round(v, 4) for k, v in vlm.metrics.items()}
    kept = f"{ours / full:.1%}" if full > 0 else "— (the unpruned model answers nothing right)"
    return Outcome(
        ours=ours,
        baselines=baselines,
        parts=parts,
        seeds=list(RANDOM_SEEDS),
        tables=[
            table(
                "Test accuracy vs keep ratio (random: mean ± std over 3 seeds)",
                ["keep ratio", "tokens kept", *methods],
                rows,
            ),
            table("Accuracy per question type", ["method @ ratio", *QUESTION_TYPES], type_rows),
            table(
                "Language-model prefill FLOPs saved (FLOP model 4nd² + 2n²d + 2ndm per layer)",
                ["keep ratio", "pruned before layer 0", f"FastV (after layer {FASTV_LAYER})"],
                flops_rows(vlm, loader),
            ),
        ],
        plots=plots,
        notes=(
            f"{len(questions)} test questions; unpruned accuracy {full:.4f} with "
            f"{vlm.fmt.num_visual_tokens} visual tokens. DivPrune keeps {kept} of it at "
            f"ratio {CRITERION_RATIO:g}. One trained model (seed 0); the seeds are random "
            f"selection's. VLM test metrics after training: {trained}."
            + (
                " Quick size: a one-epoch model; the verdict is not meaningful."
                if context.quick
                else ""
            )
        ),
    )


def flops_rows(vlm: TrainedVLM, loader: DataLoader[VQABatch]) -> list[list[str]]:
    """Share of the prefill FLOPs each kind of pruning saves, per keep ratio, at the
    test prompts' mean text length."""
    prompt_ids, prompt_mask = next(iter(loader)).prompt()
    M = vlm.fmt.num_visual_tokens
    text = round(float(prompt_mask.sum(dim=1).float().mean()) - M)
    lm = vlm.model.config.text_config
    return [
        [
            f"{r:g}",
            f"{prefill_flops(lm, text, M, keep_count(M, r)).reduction:.1%}",
            f"{fastv_prefill_flops(lm, text, M, keep_count(M, r), FASTV_LAYER).reduction:.1%}",
        ]
        for r in RATIOS
    ]


def _fmt(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return mean_std(values)


CLAIM = (
    "At about 90 % visual-token pruning, DivPrune keeps far more of a VLM's unpruned "
    "accuracy than random and FastV pruning."
)
CRITERION = (
    "at keep ratio 0.1, on the same test questions, each 95 % interval clears its "
    "margin: DivPrune / unpruned accuracy > 0.90 (bootstrap over questions); "
    "DivPrune − random accuracy > 0.10 (random: each question's correctness averaged "
    "over 3 selection seeds) and DivPrune − FastV accuracy > 0.10 (FastV prunes after "
    "LM layer 2; paired bootstrap over questions)"
)

SMALL_VLM = ClaimCheck(
    name="divprune",
    method="DivPrune",
    paper="arXiv 2503.02175",
    claim=CLAIM,
    metric="Shapes-VQA test accuracy of the 64-token small VLM at keep ratio 0.1",
    criterion=CRITERION,
    run=run,
    default=False,
    skip_reason=(
        "training its VLM from scratch takes about 20 min on a 2-core CPU; "
        "run it with `polymodal bench --only divprune`"
    ),
    honours_device=True,
)
register(SMALL_VLM)
register(
    replace(
        SMALL_VLM,
        name="divprune_dense",
        method="DivPrune, 576 visual tokens",
        metric=(
            f"dense Shapes-VQA test accuracy (first {DENSE_QUESTIONS} questions) of the "
            "576-token small VLM at keep ratio 0.1"
        ),
        run=run_dense,
        skip_reason=(
            "trains the 576-token VLM (about 30 min on a 2-core CPU), then answers every "
            "question 25 times; run it with `polymodal bench --only divprune_dense`"
        ),
    )
)
