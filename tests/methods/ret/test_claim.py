import numpy as np

from polymodal.bench.registry import all_checks
from polymodal.bench.verdict import mean_over_seeds
from polymodal.methods.ret.claim import robustness_items


def test_robustness_item_is_half_the_baseline_loss_minus_ours():
    # Query 0: we keep the hit, the baseline loses it -> 0.5 * 1 - 0 = 0.5.
    # Query 1: both lose it -> 0.5 - 1 = -0.5.  Query 2: nobody had it -> 0.
    ours_full, ours_dropped = [np.array([1.0, 1, 0])], [np.array([1.0, 0, 0])]
    base_full, base_dropped = [np.array([1.0, 1, 0])], [np.array([0.0, 0, 0])]
    items = robustness_items(ours_full, ours_dropped, base_full, base_dropped)
    np.testing.assert_allclose(items[0], [0.5, -0.5, 0.0])


def test_losing_exactly_half_is_not_enough():
    # The baseline loses 2 hits of 4, we lose 1: 0.5 * 2 - 1 = 0 on average -> not above 0.
    full = [np.ones(4)]
    items = robustness_items(full, [np.array([1.0, 1, 1, 0])], full, [np.array([1.0, 1, 0, 0])])
    interval = mean_over_seeds(items, resamples=200)
    assert interval.estimate == 0.0 and interval.low <= 0.0


def test_ret_check_is_registered_with_its_criterion_stated():
    check = all_checks()["ret"]
    assert "last-layer-only Recall@5 > 0" in check.criterion
    assert "query image is removed" in check.criterion
    assert check.unit == "Recall@5" and not check.default
