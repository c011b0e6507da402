import numpy as np
import pytest

from polymodal.bench.verdict import (
    Interval,
    Part,
    bootstrap,
    decide,
    deciding_part,
    mean_over_seeds,
    paired_difference,
)


def test_part_verdicts_above_and_below_their_margin():
    assert Part("d", 0.05, 0.01, 0.09).verdict == "holds"
    assert Part("d", -0.05, -0.09, -0.01).verdict == "does not hold"
    assert Part("d", 0.01, -0.02, 0.04).verdict == "inconclusive"
    # a claim that needs the value below 0.05 (e.g. a collapsed contribution)
    assert Part("m", 0.02, 0.01, 0.04, margin=0.05, above=False).verdict == "holds"
    assert Part("m", 0.11, 0.08, 0.14, margin=0.05, above=False).verdict == "does not hold"
    assert Part("m", 0.05, 0.03, 0.07, margin=0.05, above=False).verdict == "inconclusive"


def test_decide_three_outcomes_and_the_deciding_part():
    good = Part("good", 0.3, 0.2, 0.4)
    tight = Part("tight", 0.05, 0.01, 0.09)
    noisy = Part("noisy", 0.0, -0.1, 0.1)
    bad = Part("bad", -0.3, -0.4, -0.2)
    assert decide([good, tight]) == "holds"
    assert deciding_part([good, tight]) is tight  # clears by 0.01 < 0.2
    assert decide([good, noisy]) == "inconclusive"
    assert deciding_part([good, noisy]) is noisy
    assert decide([noisy, bad, good]) == "does not hold"
    assert deciding_part([noisy, bad, good]) is bad
    with pytest.raises(ValueError, match="at least one"):
        decide([])


def test_paired_difference_of_identical_models_is_exactly_zero():
    scores = [np.array([1, 0, 1, 1.0]), np.array([0, 0, 1, 1.0])]
    assert paired_difference(scores, scores, resamples=200) == Interval(0.0, 0.0, 0.0)


def test_paired_difference_estimate_is_the_mean_over_seeds_of_item_means():
    ours = [np.ones(10), np.array([1.0] * 5 + [0.0] * 5)]
    base = [np.zeros(10), np.zeros(10)]
    interval = paired_difference(ours, base, resamples=500)
    assert interval.estimate == pytest.approx(0.75)  # (1.0 + 0.5) / 2
    # seed 0 contributes exactly 1.0 to every replicate; seed 1's item mean varies
    assert 0.5 < interval.low < 0.75 < interval.high <= 1.0


def test_paired_difference_is_paired_a_constant_shift_has_no_spread():
    rng = np.random.default_rng(0)
    base = [rng.random(50)]
    interval = paired_difference([base[0] + 0.1], base, resamples=300)
    assert interval.low == pytest.approx(0.1) and interval.high == pytest.approx(0.1)


def test_paired_difference_refuses_unpaired_or_nan_items():
    with pytest.raises(ValueError, match="equal shapes"):
        paired_difference([np.ones(3)], [np.ones(4)])
    with pytest.raises(ValueError, match="NaN"):
        paired_difference([np.array([1.0, np.nan])], [np.ones(2)])


def test_bootstrap_recomputes_the_statistic_on_resampled_items():
    values = np.array([0.0, 1.0, 2.0, 3.0])
    interval = bootstrap(lambda idx: float(values[idx[0]].max()), [4], resamples=400)
    assert interval.estimate == 3.0
    assert interval.high == 3.0 and 1.0 <= interval.low < 3.0  # the max of a resample


def test_mean_over_seeds_interval_contains_the_mean():
    interval = mean_over_seeds([np.array([1.0, 0.0, 1.0, 0.0])], resamples=400)
    assert interval.estimate == 0.5 and interval.low < 0.5 < interval.high
