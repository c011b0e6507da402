"""The ``divprune`` check's criterion on hand-made per-question results."""

from __future__ import annotations

import numpy as np
import pytest

from polymodal.bench.verdict import decide
from polymodal.methods.divprune.claim import criterion_parts


def _answers(right: int, total: int = 200) -> np.ndarray:
    """(total,) correctness: the first ``right`` questions answered right."""
    return (np.arange(total) < right).astype(float)


def test_criterion_holds_when_divprune_keeps_accuracy_and_beats_both_baselines() -> None:
    full, ours = _answers(160), _answers(156)  # keeps 97.5 %
    random = [_answers(80), _answers(90), _answers(70)]
    parts = criterion_parts(full, ours, random, fastv=_answers(100))
    assert [p.name for p in parts] == [
        "DivPrune / unpruned accuracy",
        "DivPrune − random accuracy",
        "DivPrune − FastV accuracy",
    ]
    assert parts[0].estimate == pytest.approx(156 / 160)
    assert parts[1].estimate == pytest.approx((156 - 80) / 200)  # random pooled over seeds
    assert decide(parts) == "holds"


def test_criterion_does_not_hold_when_fastv_is_as_good() -> None:
    full, ours = _answers(160), _answers(156)
    parts = criterion_parts(full, ours, [_answers(80)] * 3, fastv=_answers(150))
    assert [p.verdict for p in parts] == ["holds", "holds", "does not hold"]
    assert decide(parts) == "does not hold"


def test_criterion_is_inconclusive_when_the_kept_share_is_near_the_margin() -> None:
    # 36 / 40 = 0.90 kept on 40 questions: the interval straddles 0.90
    full, ours = _answers(40, 50), _answers(36, 50)
    parts = criterion_parts(full, ours, [_answers(5, 50)] * 3, fastv=_answers(5, 50))
    assert parts[0].verdict == "inconclusive" and parts[0].low < 0.9 < parts[0].high
    assert decide(parts) == "inconclusive"


def test_the_kept_share_of_an_unpruned_model_that_answers_nothing_is_inconclusive() -> None:
    nothing = _answers(0)
    parts = criterion_parts(nothing, _answers(1), [nothing] * 3, fastv=nothing)
    assert parts[0].verdict == "inconclusive" and np.isnan(parts[0].estimate)
