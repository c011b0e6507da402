"""Supervised multimodal classification as a LightningModule."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from polymodal.modules.modality_dropout import drop_modalities
from polymodal.train.config import OptimConfig
from polymodal.train.predictions import Predictions, interleave_ranks


class ClassificationModule(L.LightningModule):
    """Cross-entropy training of any model that maps a batch dict to ``.logits``.

    Args:
        model: e.g. a :class:`~polymodal.modules.classifier.MultimodalClassifier`;
            ``model(batch).logits`` has shape (B, num_classes).
        num_classes: number of classes C.
        optim: AdamW settings.
        max_epochs: length of the cosine learning-rate schedule.
        seed: base of the per-epoch reseeding that makes resumed runs exact.
        modality_dropout: ``{modality: rate}``; in training steps only, each sample
            loses modality ``m`` with probability ``rate`` through ``<m>_mask``
            (:func:`~polymodal.modules.modality_dropout.drop_modalities`). List every
            modality of the model (rate 0 for one never dropped); empty = off.

    After ``trainer.test``, :attr:`test_predictions` holds the per-item logits and
    labels of the test set in data-set order (gathered from every rank).
    """

    def __init__(
        self,
        model: nn.Module,
        num_classes: int,
        optim: OptimConfig | None = None,
        max_epochs: int = 10,
        seed: int = 0,
        modality_dropout: dict[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.optim = optim or OptimConfig()
        self.max_epochs = max_epochs
        self.seed = seed
        self.modality_dropout = dict(modality_dropout or {})
        self.val_accuracy = MulticlassAccuracy(num_classes, average="micro")
        self.test_accuracy = MulticlassAccuracy(num_classes, average="micro")
        self.test_f1 = MulticlassF1Score(num_classes, average="macro")
        self.test_predictions: Predictions | None = None
        self._test_outputs: list[tuple[Tensor, Tensor]] = []

    def forward(self, batch: dict[str, Tensor]) -> Any:
        return self.model(batch)

    def _step_seed(self, batch_idx: int) -> int:
        step = self.current_epoch * 1_000_003 + batch_idx
        return self.seed * 100_003 + step * 101 + self.global_rank

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # Dropout and any other in-model randomness depend only on (seed, epoch, step,
        # rank), never on what consumed the global generator before (data-loader
        # start-up, validation, a restart), so a resumed run matches exactly.
        torch.manual_seed(self._step_seed(batch_idx))

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        if self.modality_dropout:
            # Its own generator, seeded from the step like the global one: exact on
            # resume, and the model's other randomness draws what it drew without it.
            generator = torch.Generator().manual_seed(self._step_seed(batch_idx) + 1)
            batch = drop_modalities(batch, self.modality_dropout, generator)
        logits = self.model(batch).logits
        loss = F.cross_entropy(logits, batch["label"])
        self.log("train_loss", loss, prog_bar=True, batch_size=logits.shape[0])
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        logits = self.model(batch).logits
        loss = F.cross_entropy(logits, batch["label"])
        self.val_accuracy.update(logits, batch["label"])
        size = logits.shape[0]
        self.log("val_loss", loss, prog_bar=True, sync_dist=True, batch_size=size)
        self.log("val_acc", self.val_accuracy, prog_bar=True, batch_size=size)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        logits = self.model(batch).logits
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

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=self.optim.lr, weight_decay=self.optim.weight_decay
        )
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.max_epochs)
        return {"optimizer": optimizer, "lr_scheduler": schedule}
