"""Tests of masked reconstruction: the MSE over hidden patches only."""

from typing import NamedTuple

import pytest
import torch
from torch import Tensor, nn

from polymodal.train.tasks.reconstruction import MaskedReconstructionModule, masked_mse

PREDICTION = torch.tensor(
    [
        [[1.0, 1.0], [2.0, 0.0], [3.0, 3.0]],  # per-patch MSE 1, 2, 9
        [[0.0, 2.0], [1.0, 1.0], [0.0, 0.0]],  # per-patch MSE 2, 1, 0
        [[0.0, 2.0], [1.0, 1.0], [0.0, 0.0]],
    ]
)
MASK = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]])


def test_masked_mse_averages_hidden_patches_only() -> None:
    errors = masked_mse(PREDICTION, torch.zeros(3, 3, 2), MASK)
    # (1 + 9) / 2; (1 + 0) / 2; no hidden patch gives 0, not NaN
    assert errors.tolist() == [5.0, 0.5, 0.0]


def test_masked_mse_ignores_errors_on_visible_patches() -> None:
    target = PREDICTION.clone()
    target[:, 0] += 10.0  # patch 0 is off by 10 (MSE 100): hidden in sample 0 only
    errors = masked_mse(PREDICTION, target, MASK)
    assert errors.tolist() == [50.0, 0.0, 0.0]  # sample 0: (100 + 0) / 2


class _Out(NamedTuple):
    prediction: Tensor
    target: Tensor
    mask: Tensor


class _Fixed(nn.Module):
    def forward(self, batch: dict[str, Tensor]) -> _Out:
        return _Out(PREDICTION, torch.zeros(3, 3, 2), MASK)


def test_training_loss_is_the_batch_mean_and_lower_is_better() -> None:
    module = MaskedReconstructionModule(_Fixed())
    module.log = lambda *args, **kwargs: None  # type: ignore[method-assign]
    loss = module.training_step({"image": torch.zeros(3, 1)}, 0)
    assert loss.item() == pytest.approx(5.5 / 3)
    assert (module.monitor, module.mode) == ("val_mse", "min")
