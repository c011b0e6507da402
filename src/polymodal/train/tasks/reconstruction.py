"""Masked reconstruction (MAE-style pre-training): mean squared error on hidden patches."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from torch import Tensor
from torchmetrics import MeanMetric

from polymodal.train.tasks.base import TaskModule, batch_size


def masked_mse(prediction: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Per-sample mean squared error over the hidden patches only (MAE's loss).

    Args:
        prediction: (B, N, P) predicted patch values.
        target: (B, N, P) true patch values.
        mask: (B, N) 1.0 where the patch was hidden from the encoder.

    Returns:
        (B,) the mean over hidden patches of the per-patch mean squared error.
    """
    per_patch = (prediction - target).pow(2).mean(dim=-1)  # (B, N)
    return (per_patch * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)


def reconstruction_errors(out: Any) -> Tensor:
    """(B,) :func:`masked_mse` of a model output, summed over modalities when its
    ``prediction``, ``target`` and ``mask`` are ``{modality: tensor}`` dicts."""
    if isinstance(out.prediction, dict):
        return sum(
            (masked_mse(out.prediction[m], out.target[m], out.mask[m]) for m in out.prediction),
            start=torch.zeros(()),
        )
    return masked_mse(out.prediction, out.target, out.mask)


class MaskedReconstructionModule(TaskModule):
    """Train a model whose output has ``prediction``, ``target`` (B, N, P) and ``mask``
    (B, N), e.g. :class:`~polymodal.modules.mae.MaskedAutoencoder`, or the same as
    ``{modality: tensor}`` dicts for a multimodal MAE (the errors add up), and
    optionally an ``auxiliary`` () loss added in training (e.g. FratMAE's metadata term).

    The loss and the monitored metric are :func:`masked_mse` (lower is better);
    validation and test masks are seeded by batch index, so every epoch is scored
    on the same masks.
    """

    kind: ClassVar[str] = "masked_reconstruction"
    monitor: ClassVar[str] = "val_mse"
    mode: ClassVar[Literal["min", "max"]] = "min"

    def __init__(self, model: Any, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.val_mse = MeanMetric()
        self.test_mse = MeanMetric()

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        out = self.model(self.training_inputs(batch, batch_idx))
        loss = reconstruction_errors(out).mean()
        auxiliary = getattr(out, "auxiliary", None)
        if auxiliary is not None:
            loss = loss + auxiliary
            self.log("train_auxiliary", auxiliary, batch_size=batch_size(batch))
        self.log("train_loss", loss, prog_bar=True, batch_size=batch_size(batch))
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self.val_mse.update(reconstruction_errors(self.eval_model(batch)))
        self.log("val_mse", self.val_mse, prog_bar=True, batch_size=batch_size(batch))

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self.test_mse.update(reconstruction_errors(self.eval_model(batch)))
        self.log("test_mse", self.test_mse, batch_size=batch_size(batch))

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> Any:
        out = self.eval_model(batch)
        flat: dict[str, Tensor] = {}
        for name in ("mask", "reconstruction"):
            value = getattr(out, name)
            if isinstance(value, dict):  # a multimodal MAE: one entry per modality
                flat.update({f"{name}_{m}": v for m, v in value.items()})
            else:
                flat[name] = value
        return flat
