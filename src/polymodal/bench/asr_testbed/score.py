"""Word error rate per scenario x severity, with intervals, and its trend over severity."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from polymodal.bench.asr_testbed.recognizers import Recognizer
from polymodal.data.synth.asr_testbed import ASRTestbed
from polymodal.train.wer import corpus_wer

CLEAN = ("clean", 0)
"""The condition key of the undegraded speech."""


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


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties); nan when one side is constant."""
    from scipy.stats import spearmanr

    rho = spearmanr(x, y).statistic
    return float(rho)


@dataclass(frozen=True)
class TestbedScores:
    """A recogniser's WER on every condition of a testbed (of one sentence set)."""

    recognizer: str
    transcripts: tuple[str, ...]
    conditions: tuple[ConditionWER, ...]
    sentences: str = "everyday"

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
            "sentences": self.sentences,
            "transcripts": list(self.transcripts),
            "conditions": [asdict(c) for c in self.conditions],
            "spearman": {name: self.trend(name) for name in self.scenarios()},
        }


def score_testbed(
    recognizer: Recognizer, bed: ASRTestbed, sentences: str = "everyday"
) -> TestbedScores:
    """Transcribe the clean speech and every clip of ``bed`` (of sentence set ``sentences``);
    WER per condition."""
    conditions = []
    for (scenario, severity), waves in [(CLEAN, bed.clean), *bed.clips.items()]:
        hypotheses = recognizer.transcribe(waves)
        wer, low, high = corpus_wer(bed.transcripts, hypotheses)
        conditions.append(ConditionWER(scenario, severity, wer, low, high, tuple(hypotheses)))
    return TestbedScores(recognizer.name, bed.transcripts, tuple(conditions), sentences)
