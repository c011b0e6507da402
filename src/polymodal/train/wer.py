"""Word error rate: normalised transcripts, edit distance, corpus WER with a bootstrap interval."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

_BOOTSTRAP = 2000
_DIGITS = dict(
    enumerate(("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"))
)


def normalize_transcript(text: str) -> str:
    """Lower case, letters and spelled-out single digits, single spaces: what WER compares.

    >>> normalize_transcript("  Can everyone hear me, clearly? 2")
    'can everyone hear me clearly two'
    """
    words = re.sub(r"[^a-z0-9' ]+", " ", text.lower()).replace("'", "").split()
    return " ".join(_DIGITS[int(w)] if w.isdigit() and len(w) == 1 else w for w in words)


def word_errors(reference: str, hypothesis: str) -> int:
    """Substitutions + deletions + insertions between two transcripts (split on spaces).

    >>> word_errors("a b c", "a x c d")
    2
    """
    ref, hyp = reference.split(), hypothesis.split()
    row = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, guess in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (word != guess))
    return row[-1]


def corpus_wer(
    references: Sequence[str], hypotheses: Sequence[str], seed: int = 0
) -> tuple[float, float, float]:
    """(WER, 95 % low, 95 % high): errors over reference words, normalised transcripts.

    The interval is a percentile bootstrap over utterances (errors and reference
    lengths resampled together).
    """
    refs = [normalize_transcript(r) for r in references]
    hyps = [normalize_transcript(h) for h in hypotheses]
    errors = np.array([word_errors(r, h) for r, h in zip(refs, hyps, strict=True)], float)
    lengths = np.array([len(r.split()) for r in refs], float)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(refs), size=(_BOOTSTRAP, len(refs)))
    boot = errors[draws].sum(1) / np.maximum(lengths[draws].sum(1), 1)
    low, high = np.percentile(boot, [2.5, 97.5])
    return float(errors.sum() / lengths.sum()), float(low), float(high)
