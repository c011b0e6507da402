"""Tests of dense prediction: target kinds, their monitors, losses and metrics."""

import math

import pytest
import torch
from torch import Tensor, nn

from polymodal.errors import ConfigError
from polymodal.modules.segmenter import DenseOutput
from polymodal.train.tasks.dense import DensePredictionModule


class _Fixed(nn.Module):
    def __init__(self, heatmap: Tensor) -> None:
        super().__init__()
        self.heatmap = heatmap

    def forward(self, batch: dict[str, Tensor]) -> DenseOutput:
        return DenseOutput(self.heatmap)


def _module(logits: Tensor, target: str) -> DensePredictionModule:
    module = DensePredictionModule(_Fixed(logits), target=target)
    module.log = lambda *args, **kwargs: None  # type: ignore[method-assign]
    return module


def test_unknown_target_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="target must be one of"):
        DensePredictionModule(nn.Identity(), target="depth")


@pytest.mark.parametrize(
    ("target", "monitor", "mode"), [("mask", "val_dice", "max"), ("saliency", "val_kld", "min")]
)
def test_monitor_and_mode_follow_the_target(target: str, monitor: str, mode: str) -> None:
    module = DensePredictionModule(nn.Identity(), target=target)
    assert (module.monitor, module.mode) == (monitor, mode)
    assert DensePredictionModule.monitor == "val_loss"  # the class is left alone


def test_losses_by_hand() -> None:
    heatmap = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    mask = _module(torch.zeros(1, 2, 2), "mask")
    # BCE at p = 1/2 is ln 2; soft Dice: 1 - (2 * 0.5 + 1) / (4 * 0.5 + 1 + 1) = 0.5
    assert mask.loss(torch.zeros(1, 2, 2), heatmap).item() == pytest.approx(math.log(2) + 0.5)
    mask.mask_loss = "bce"
    assert mask.loss(torch.zeros(1, 2, 2), heatmap).item() == pytest.approx(math.log(2))
    saliency = _module(torch.zeros(1, 2, 2), "saliency")
    # uniform prediction (1/4 each) of a one-pixel truth: KL = ln 4
    assert saliency.loss(torch.zeros(1, 2, 2), heatmap).item() == pytest.approx(math.log(4))


def test_mask_dice_and_iou_at_threshold_half() -> None:
    module = _module(torch.tensor([[[5.0, -5.0], [5.0, -5.0]]]), "mask")
    module.validation_step({"heatmap": torch.tensor([[[1.0, 0.7], [0.2, 0.0]]])}, 0)
    # predicted (1, 0, 1, 0), truth > 0.5 (1, 1, 0, 0): TP 1, FP 1, FN 1
    assert module.val_dice.compute().item() == pytest.approx(0.5)
    assert module.val_iou.compute().item() == pytest.approx(1 / 3)


def test_saliency_metrics_and_prediction_of_uniform_logits() -> None:
    module = _module(torch.zeros(1, 2, 2), "saliency")
    batch = {"heatmap": torch.tensor([[[2.0, 0.0], [0.0, 0.0]]])}
    module.validation_step(batch, 0)
    assert module.val_kld.compute().item() == pytest.approx(math.log(4))
    assert module.val_sim.compute().item() == pytest.approx(0.25)
    assert module.val_nss.compute().item() == 0.0
    predicted = module.predict_step(batch, 0)["heatmap"]
    assert predicted.tolist() == [[[0.25, 0.25], [0.25, 0.25]]]
