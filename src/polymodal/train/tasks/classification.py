"""Supervised multimodal classification: cross-entropy, accuracy and macro-F1."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from polymodal.train.config import OptimConfig
from polymodal.train.predictions import Predictions, interleave_ranks
from polymodal.train.tasks.base import TaskModule


class ClassificationModule(TaskModule):
    """Cross-entropy training of any model that maps a batch dict to ``.logits``.

    Args:
        model: e.g. a :class:`~polymodal.modules.classifier.MultimodalClassifier`;
            ``model(batch).logits`` has shape (B, num_classes).
        num_classes: number of classes C.
        optim, max_epochs, seed, modality_dropout: see
            :class:`~polymodal.train.tasks.base.TaskModule`.

    After ``trainer.test``, :attr:`test_predictions` holds the per-item logits and
    labels of the test set in data-set order (gathered from every rank).
    """

    kind: ClassVar[str] = "classification"
    monitor: ClassVar[str] = "val_acc"
    mode: ClassVar[Literal["min", "max"]] = "max"

    def __init__(
        self,
        model: nn.Module,
        num_classes: int,
        optim: OptimConfig | None = None,
        max_epochs: int = 10,
        seed: int = 0,
        modality_dropout: dict[str, float] | None = None,
    ) -> None:
        super().__init__(model, optim, max_epochs, seed, modality_dropout)
        self.val_accuracy = MulticlassAccuracy(num_classes, average="micro")
        self.test_accuracy = MulticlassAccuracy(num_classes, average="micro")
        self.test_f1 = MulticlassF1Score(num_classes, average="macro")
        self.test_predictions: Predictions | None = None
        self._test_outputs: list[tuple[Tensor, Tensor]] = []

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        logits = self.model(self.training_inputs(batch, batch_idx)).logits
        loss = F.cross_entropy(logits, batch["label"])
        self.log("train_loss", loss, prog_bar=True, batch_size=logits.shape[0])
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        logits = self.eval_model(batch).logits
        loss = F.cross_entropy(logits, batch["label"])
        self.val_accuracy.update(logits, batch["label"])
        size = logits.shape[0]
        self.log("val_loss", loss, prog_bar=True, sync_dist=True, batch_size=size)
        self.log("val_acc", self.val_accuracy, prog_bar=True, batch_size=size)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        logits = self.eval_model(batch).logits
        self.test_accuracy.update(logits, batch["label"])
        self.test_f1.update(logits, batch["label"])
        size = logits.shape[0]
        self.log("test_acc", self.test_accuracy, batch_size=size)
        self.log("test_macro_f1", self.test_f1, batch_size=size)
        self._test_outputs.append((logits.detach().float(), batch["label"].detach()))

    def on_test_epoch_start(self) -> None:
        self._test_outputs = []

    def on_test_epoch_end(self) -> None:
        logits = torch.cat([out[0] for out in self._test_outputs])  # (n, C) this rank's items
        labels = torch.cat([out[1] for out in self._test_outputs])  # (n,)
        self._test_outputs = []
        if self.trainer.world_size > 1:  # every rank saw every W-th item: put them back in order
            total = len(self.trainer.test_dataloaders.dataset)  # type: ignore[union-attr]
            gathered = self.all_gather((logits, labels))  # ((W, n, C), (W, n))
            logits = interleave_ranks(gathered[0], total)
            labels = interleave_ranks(gathered[1], total)
        self.test_predictions = Predictions(logits.cpu(), labels.cpu().long())

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> Any:
        logits = self.eval_model(batch).logits
        return {"probabilities": logits.float().softmax(dim=-1)}
