"""Tests of the saliency metrics KLD, SIM and NSS with hand-worked values."""

import math

import pytest
import torch

from polymodal.train.tasks.saliency import kld, nss, similarity

UNIFORM = torch.full((1, 4), 0.25)
ONE_HOT = torch.tensor([[1.0, 0.0, 0.0, 0.0]])


def test_equal_maps_give_kld_zero_and_sim_one_after_normalising_the_truth() -> None:
    predicted = torch.tensor([[0.5, 0.5, 0.0, 0.0]])
    truth = torch.tensor([[3.0, 3.0, 0.0, 0.0]])  # normalised to the prediction
    assert kld(predicted, truth).item() == pytest.approx(0.0, abs=1e-6)
    assert similarity(predicted, truth).item() == pytest.approx(1.0)


def test_uniform_prediction_of_a_one_pixel_truth() -> None:
    assert kld(UNIFORM, ONE_HOT).item() == pytest.approx(math.log(4))
    assert similarity(UNIFORM, ONE_HOT).item() == pytest.approx(0.25)
    assert nss(UNIFORM, ONE_HOT).item() == 0.0  # a flat map has no z-score


def test_kld_and_sim_by_hand() -> None:
    predicted = torch.tensor([[0.4, 0.3, 0.2, 0.1]])
    truth = torch.tensor([[1.0, 1.0, 0.0, 0.0]])  # (0.5, 0.5, 0, 0)
    want = 0.5 * math.log(0.5 / 0.4) + 0.5 * math.log(0.5 / 0.3)
    assert kld(predicted, truth).item() == pytest.approx(want, rel=1e-5)
    assert similarity(predicted, truth).item() == pytest.approx(0.4 + 0.3)
    disjoint = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    assert similarity(torch.tensor([[0.5, 0.5, 0.0, 0.0]]), disjoint).item() == 0.0


def test_nss_is_the_truth_weighted_z_score() -> None:
    predicted = torch.tensor([[0.4, 0.3, 0.2, 0.1]])
    # mean 0.25, deviations +-0.15, +-0.05: sample std sqrt(0.05 / 3)
    assert nss(predicted, ONE_HOT).item() == pytest.approx(0.15 / math.sqrt(0.05 / 3))
    both_ends = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    assert nss(predicted, both_ends).item() == pytest.approx(0.0, abs=1e-6)
    weighted = torch.tensor([[3.0, 1.0, 0.0, 0.0]])  # (3 * 0.15 + 0.05) / 4
    assert nss(predicted, weighted).item() == pytest.approx(0.125 / math.sqrt(0.05 / 3))


def test_metrics_are_per_sample() -> None:
    predicted = torch.cat([UNIFORM, torch.tensor([[1.0, 0.0, 0.0, 0.0]])])
    truth = torch.cat([ONE_HOT, ONE_HOT])
    assert similarity(predicted, truth).tolist() == pytest.approx([0.25, 1.0])
    assert kld(predicted, truth).tolist() == pytest.approx([math.log(4), 0.0], abs=1e-6)
