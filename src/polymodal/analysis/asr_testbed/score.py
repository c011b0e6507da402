"""Word error rate per scenario x severity, with intervals, and its trend over severity."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from polymodal.analysis.asr_testbed.recognizers import Recognizer, normalize_transcript
from polymodal.data.synth.asr_testbed import ASRTestbed

CLEAN = ("clean", 0)
"""The condition key of the undegraded speech."""

_BOOTSTRAP = 2000


@dataclass(frozen=True)
class ConditionWER:
    """WER of one condition: corpus WER (errors / reference words) and its 95 % interval.

    The interval is a percentile bootstrap over utterances (errors and reference
    lengths resampled together).
    """

    scenario: str
    severity: int
    wer: float
    low: float
    high: float
    hypotheses: tuple[str, ...]


def word_errors(reference: str, hypothesis: str) -> int:
    """Substitutions + deletions + insertions between two normalised transcripts.

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
    """(WER, 95 % low, 95 % high) over utterances; transcripts are normalised first."""
    refs = [normalize_transcript(r) for r in references]
    hyps = [normalize_transcript(h) for h in hypotheses]
    errors = np.array([word_errors(r, h) for r, h in zip(refs, hyps, strict=True)], float)
    lengths = np.array([len(r.split()) for r in refs], float)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(refs), size=(_BOOTSTRAP, len(refs)))
    boot = errors[draws].sum(1) / lengths[draws].sum(1)
    low, high = np.percentile(boot, [2.5, 97.5])
    return float(errors.sum() / lengths.sum()), float(low), float(high)


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties); nan when one side is constant."""
    from scipy.stats import spearmanr

    rho = spearmanr(x, y).statistic
    return float(rho)


@dataclass(frozen=True)
class TestbedScores:
    """A recogniser's WER on every condition of a testbed."""

    recognizer: str
    transcripts: tuple[str, ...]
    conditions: tuple[ConditionWER, ...]

    def wer(self, scenario: str, severity: int) -> ConditionWER:
        for condition in self.conditions:
            if (condition.scenario, condition.severity) == (scenario, severity):
                return condition
        raise KeyError((scenario, severity))

    def scenarios(self) -> list[str]:
        return list(dict.fromkeys(c.scenario for c in self.conditions if c.severity > 0))

    def severities(self) -> list[int]:
        return sorted({c.severity for c in self.conditions if c.severity > 0})

    def trend(self, scenario: str) -> float:
        """Spearman ρ between severity and WER in one scenario."""
        levels = self.severities()
        return spearman(levels, [self.wer(scenario, s).wer for s in levels])

    def to_dict(self) -> dict[str, object]:
        return {
            "recognizer": self.recognizer,
            "transcripts": list(self.transcripts),
            "conditions": [asdict(c) for c in self.conditions],
            "spearman": {name: self.trend(name) for name in self.scenarios()},
        }


def score_testbed(recognizer: Recognizer, bed: ASRTestbed) -> TestbedScores:
    """Transcribe the clean speech and every clip of ``bed``; WER per condition."""
    conditions = []
    for (scenario, severity), waves in [(CLEAN, bed.clean), *bed.clips.items()]:
        hypotheses = recognizer.transcribe(waves)
        wer, low, high = corpus_wer(bed.transcripts, hypotheses)
        conditions.append(ConditionWER(scenario, severity, wer, low, high, tuple(hypotheses)))
    return TestbedScores(recognizer.name, bed.transcripts, tuple(conditions))
