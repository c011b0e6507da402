"""Dense prediction: a map per sample, as a segmentation mask or a saliency distribution.

``target: mask`` (segmentation) trains per-pixel binary cross-entropy plus a soft
Dice loss (``loss: bce_dice``, the default, which copes with small foregrounds such
as lesions; ``loss: bce`` for cross-entropy alone) against a ``heatmap`` in [0, 1]
and scores Dice and IoU at threshold 0.5 with ``torchmetrics``. Maps may be 2D
(H, W) or 3D (D, H, W).
``target: saliency`` (affordance / fixation maps) treats the logits and the
``heatmap`` as distributions over pixels, trains the KL divergence and scores the
three standard saliency metrics: KLD (lower is better), SIM and NSS (higher).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MeanMetric
from torchmetrics.classification import BinaryF1Score, BinaryJaccardIndex

from polymodal.errors import ConfigError
from polymodal.train.tasks.base import TaskModule, batch_size
from polymodal.train.tasks.saliency import kld, nss, similarity

TARGETS = ("mask", "saliency")
MASK_LOSSES = ("bce_dice", "bce")
MASK_METRICS = {"dice": BinaryF1Score, "iou": BinaryJaccardIndex}
SALIENCY_METRICS = {"kld": MeanMetric, "sim": MeanMetric, "nss": MeanMetric}


def soft_dice_loss(logits: Tensor, truth: Tensor, smooth: float = 1.0) -> Tensor:
    """Mean over samples of ``1 − (2 Σ p·t + s) / (Σ p + Σ t + s)``, p = sigmoid(logits).

    Args:
        logits: (B, ...) per-pixel logits.
        truth: (B, ...) targets in [0, 1].
        smooth: added to both sides so an empty map with an empty prediction scores 0.
    """
    p, t = logits.sigmoid().flatten(1), truth.flatten(1)
    dice = (2 * (p * t).sum(dim=1) + smooth) / (p.sum(dim=1) + t.sum(dim=1) + smooth)
    return (1 - dice).mean()


class DensePredictionModule(TaskModule):
    """Train a model whose output has ``heatmap`` (B, H, W) logits against ``batch["heatmap"]``.

    Args:
        model: e.g. :class:`~polymodal.modules.segmenter.PatchSegmenter`.
        target: ``"mask"`` or ``"saliency"`` (module doc).
        loss: for masks, ``"bce_dice"`` or ``"bce"`` (module doc).
        **kwargs: :class:`~polymodal.train.tasks.base.TaskModule` options.

    The monitored metric is ``val_dice`` (mask, max) or ``val_kld`` (saliency, min).
    """

    kind: ClassVar[str] = "dense_prediction"

    def __init__(
        self, model: Any, target: str = "mask", loss: str = "bce_dice", **kwargs: Any
    ) -> None:
        super().__init__(model, **kwargs)
        if target not in TARGETS:
            raise ConfigError(f"task.options.target must be one of {TARGETS}, got {target!r}")
        if loss not in MASK_LOSSES:
            raise ConfigError(f"task.options.loss must be one of {MASK_LOSSES}, got {loss!r}")
        self.target = target
        self.mask_loss = loss
        self.monitor = "val_dice" if target == "mask" else "val_kld"  # type: ignore[misc]
        self.mode = "max" if target == "mask" else "min"  # type: ignore[misc]
        metrics = MASK_METRICS if target == "mask" else SALIENCY_METRICS
        for stage in ("val", "test"):
            for name, make in metrics.items():
                setattr(self, f"{stage}_{name}", make())

    def loss(self, logits: Tensor, heatmap: Tensor) -> Tensor:
        if self.target == "mask":
            bce = F.binary_cross_entropy_with_logits(logits, heatmap)
            return bce + soft_dice_loss(logits, heatmap) if self.mask_loss == "bce_dice" else bce
        truth = heatmap.flatten(1)
        truth = truth / truth.sum(dim=-1, keepdim=True).clamp_min(1e-12)
        log_predicted = logits.flatten(1).log_softmax(dim=-1)  # stable where softmax underflows
        return (truth * ((truth + 1e-12).log() - log_predicted)).sum(dim=-1).mean()

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        logits = self.model(self.training_inputs(batch, batch_idx)).heatmap
        loss = self.loss(logits, batch["heatmap"])
        self.log("train_loss", loss, prog_bar=True, batch_size=batch_size(batch))
        return loss

    def _score(self, stage: str, batch: dict[str, Tensor]) -> None:
        logits = self.eval_model(batch).heatmap  # (B, H, W) or (B, D, H, W)
        truth = batch["heatmap"]
        if self.target == "mask":
            pixels = (logits.sigmoid().flatten(), (truth > 0.5).flatten().long())
            updates = dict.fromkeys(MASK_METRICS, pixels)
        else:
            predicted = logits.flatten(1).softmax(dim=-1)  # (B, N) a distribution per sample
            flat = truth.flatten(1)
            updates = {
                "kld": (kld(predicted, flat),),
                "sim": (similarity(predicted, flat),),
                "nss": (nss(predicted, flat),),
            }
        for name, values in updates.items():
            metric = getattr(self, f"{stage}_{name}")
            metric.update(*values)
            self.log(
                f"{stage}_{name}",
                metric,
                prog_bar=name == self.monitor[4:],
                batch_size=batch_size(batch),
            )

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._score("val", batch)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._score("test", batch)

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> Any:
        logits = self.eval_model(batch).heatmap
        if self.target == "mask":
            return {"heatmap": logits.sigmoid()}
        b, h, w = logits.shape
        return {"heatmap": logits.flatten(1).softmax(dim=-1).reshape(b, h, w)}
