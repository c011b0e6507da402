"""Clinical scores of generated reports: the findings they state, and n-gram overlap.

Both reports are read by the findings parser
(:func:`~polymodal.data.synth.ctpa_reports.parse_report`); F1 is computed per
finding over the cases, then averaged over findings (macro) or pooled over all
decisions (micro). A finding absent from both the generated and the reference
reports of every case has no F1 and is left out of the macro average (as
``torchmetrics``' ``MultilabelF1Score`` scores it 0, the two agree whenever every
finding occurs). BLEU-4 and ROUGE-L come from ``torchmetrics``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np


def per_finding_f1(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(K,) F1 of each finding over the cases; NaN where neither side has a positive.

    Args:
        predicted: (N, K) 0/1 findings stated by the generated reports.
        truth: (N, K) 0/1 findings of the references.
    """
    p, t = predicted.astype(bool), truth.astype(bool)
    tp = (p & t).sum(axis=0)
    denominator = p.sum(axis=0) + t.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * tp / denominator, np.nan)


def macro_f1(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Mean per-finding F1 over the findings that occur (module doc)."""
    scores = per_finding_f1(predicted, truth)
    return float(np.nanmean(scores)) if np.isfinite(scores).any() else 0.0


def micro_f1(predicted: np.ndarray, truth: np.ndarray) -> float:
    """F1 of all (case, finding) decisions pooled."""
    p, t = predicted.astype(bool), truth.astype(bool)
    denominator = p.sum() + t.sum()
    return float(2 * (p & t).sum() / denominator) if denominator else 1.0


def text_scores(generated: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Corpus BLEU-4 and mean ROUGE-L F-measure of generated reports (``torchmetrics``),
    case-insensitive, with punctuation as words."""
    from torchmetrics.text import BLEUScore, ROUGEScore

    def words(text: str) -> str:
        return " ".join(re.findall(r"[a-z]+|[.,:;]", text.lower()))

    ours, theirs = [words(g) for g in generated], [words(r) for r in references]
    bleu = BLEUScore(n_gram=4)(ours, [[r] for r in theirs])
    rouge = ROUGEScore(rouge_keys="rougeL")(ours, theirs)
    return {"bleu4": float(bleu), "rougeL": float(rouge["rougeL_fmeasure"])}
