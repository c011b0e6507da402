"""The ``text_bias`` check's criterion on hand-made per-question probe results."""

from __future__ import annotations

import math

import numpy as np
import pytest

from polymodal.analysis.text_bias.claim import ProbeItems, criterion_parts
from polymodal.bench.verdict import decide

N = 200


def _flags(count: int, start: int = 0) -> np.ndarray:
    """(N,) 1.0 on questions ``start`` .. ``start + count - 1``."""
    return ((np.arange(N) >= start) & (np.arange(N) < start + count)).astype(float)


def _model(image_only: int, corrupted: int, text: int, image: int) -> ProbeItems:
    """A model right on the first ``image_only`` (``corrupted``) questions without (with)
    corrupted text, whose image+text answer follows the text on ``text`` questions and
    the image on the next ``image`` questions."""
    return ProbeItems(_flags(image_only), _flags(corrupted), _flags(text), _flags(image, text))


def test_criterion_holds_for_a_gullible_model_cured_by_sft() -> None:
    trusting = _model(image_only=180, corrupted=60, text=120, image=40)  # TPR 0.75
    sft = _model(image_only=182, corrupted=170, text=10, image=150)  # TPR 0.0625
    parts = criterion_parts(trusting, sft)
    assert [p.estimate for p in parts] == pytest.approx(
        [0.75, (180 - 60) / N, 0.75 - 0.0625, 2 / N]
    )
    assert decide(parts) == "holds"


def test_criterion_does_not_hold_when_the_trusting_model_mostly_follows_the_image() -> None:
    trusting = _model(image_only=180, corrupted=120, text=40, image=120)  # TPR 0.25
    sft = _model(image_only=180, corrupted=170, text=5, image=150)
    parts = criterion_parts(trusting, sft)
    assert parts[0].verdict == "does not hold"
    assert decide(parts) == "does not hold"


def test_criterion_does_not_hold_when_sft_costs_clean_accuracy() -> None:
    trusting = _model(image_only=180, corrupted=60, text=120, image=40)
    sft = _model(image_only=140, corrupted=130, text=10, image=150)  # −0.20 image-only
    assert [p.verdict for p in criterion_parts(trusting, sft)][-1] == "does not hold"


def test_criterion_is_inconclusive_when_the_tpr_is_near_one_half() -> None:
    trusting = _model(image_only=180, corrupted=60, text=42, image=38)  # TPR 0.525 of 80
    sft = _model(image_only=182, corrupted=170, text=2, image=150)
    parts = criterion_parts(trusting, sft)
    assert parts[0].verdict == "inconclusive" and parts[0].low < 0.5 < parts[0].high
    assert decide(parts) == "inconclusive"


def test_an_undefined_tpr_makes_its_parts_inconclusive() -> None:
    trusting = _model(image_only=180, corrupted=60, text=0, image=0)  # nobody decided
    sft = _model(image_only=182, corrupted=170, text=10, image=150)
    parts = criterion_parts(trusting, sft)
    assert math.isnan(parts[0].estimate) and parts[0].verdict == "inconclusive"
    assert parts[2].verdict == "inconclusive"
