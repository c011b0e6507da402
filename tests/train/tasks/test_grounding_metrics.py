import math

import pytest
import torch

from polymodal.errors import DataError
from polymodal.train.tasks.grounding_metrics import (
    KLD,
    NSS,
    SIM,
    grounding_kld,
    grounding_nss,
    grounding_sim,
)

# Two 2x2 cases worked by hand.
# (a) P = [.5, .5, 0, 0], Q = [1, 0, 0, 0]: KLD = log(1/.5) = log 2; SIM = .5;
#     z(P) = [1, 1, -1, -1] (mean .25, population std .25), Q > .1 only at pixel 0: NSS = 1.
# (b) P uniform (unnormalised ones), Q = [0, 2, 2, 0] -> [0, .5, .5, 0]:
#     KLD = 2 * .5 * log(.5/.25) = log 2; SIM = .25 + .25 = .5; P constant: NSS = 0.
PREDICTED = torch.tensor([[[0.5, 0.5], [0.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]])
TRUTH = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 2.0], [2.0, 0.0]]])


def test_kld_sim_nss_of_hand_worked_maps():
    torch.testing.assert_close(
        grounding_kld(PREDICTED, TRUTH), torch.full((2,), math.log(2), dtype=torch.float64)
    )
    torch.testing.assert_close(
        grounding_sim(PREDICTED, TRUTH), torch.tensor([0.5, 0.5], dtype=torch.float64)
    )
    torch.testing.assert_close(
        grounding_nss(PREDICTED, TRUTH), torch.tensor([1.0, 0.0], dtype=torch.float64)
    )


def test_equal_maps_score_zero_kld_and_full_similarity():
    maps = torch.rand(3, 4, 5) + 0.1
    assert grounding_kld(maps, maps).abs().max() < 1e-9
    torch.testing.assert_close(grounding_sim(maps, maps), torch.ones(3, dtype=torch.float64))


def test_nss_counts_only_pixels_above_a_tenth_of_the_truth_range():
    predicted = torch.tensor([[[3.0, 1.0, 1.0, 1.0]]])  # z = [sqrt 3, -1/sqrt 3 x 3]
    truth = torch.tensor([[[1.0, 0.05, 0.2, 0.0]]])  # pixels 0 and 2 exceed 0.1
    expected = (math.sqrt(3) - 1 / math.sqrt(3)) / 2
    assert grounding_nss(predicted, truth).item() == pytest.approx(expected)


def test_metric_objects_average_over_every_sample_of_every_batch():
    kld, sim, nss = KLD(), SIM(), NSS()
    for metric in (kld, sim, nss):
        metric.update(PREDICTED[:1], TRUTH[:1])
        metric.update(PREDICTED[1:], TRUTH[1:])
    assert kld.compute().item() == pytest.approx(math.log(2))
    assert sim.compute().item() == pytest.approx(0.5)
    assert nss.compute().item() == pytest.approx(0.5)
    assert not KLD.higher_is_better and SIM.higher_is_better and NSS.higher_is_better


def test_a_heatmap_that_sums_to_zero_is_a_one_line_error():
    truth = TRUTH.clone()
    truth[1] = 0
    with pytest.raises(DataError, match="ground-truth heatmap 1 of the batch sums to 0") as info:
        KLD().update(PREDICTED, truth)
    assert "\n" not in str(info.value)


def test_maps_of_different_shapes_are_refused():
    with pytest.raises(DataError, match="same shape"):
        grounding_sim(PREDICTED, TRUTH[:, :1])
