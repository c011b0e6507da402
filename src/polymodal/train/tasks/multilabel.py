"""Multi-label classification: one binary decision per label (findings, attributes)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import MultilabelAUROC, MultilabelF1Score

from polymodal.train.tasks.base import TaskModule, batch_size


class MultilabelModule(TaskModule):
    """Binary cross-entropy of a model's ``.logits`` (B, K) against ``labels`` (B, K)
    multi-hot; macro AUROC (monitored, higher is better) and macro/micro F1 at 0.5.

    Args:
        model: maps a batch to ``.logits`` (B, K).
        num_labels: K.
        **kwargs: :class:`~polymodal.train.tasks.base.TaskModule` options.
    """

    kind: ClassVar[str] = "multilabel_classification"
    monitor: ClassVar[str] = "val_auroc"
    mode: ClassVar[Literal["min", "max"]] = "max"

    def __init__(self, model: nn.Module, num_labels: int, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        for stage in ("val", "test"):
            setattr(self, f"{stage}_auroc", MultilabelAUROC(num_labels, average="macro"))
            setattr(self, f"{stage}_macro_f1", MultilabelF1Score(num_labels, average="macro"))
            setattr(self, f"{stage}_micro_f1", MultilabelF1Score(num_labels, average="micro"))

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        logits = self.model(self.training_inputs(batch, batch_idx)).logits
        loss = F.binary_cross_entropy_with_logits(logits, batch["labels"].float())
        self.log("train_loss", loss, prog_bar=True, batch_size=batch_size(batch))
        return loss

    def _score(self, stage: str, batch: dict[str, Tensor]) -> None:
        logits = self.eval_model(batch).logits
        labels = batch["labels"].long()
        size = batch_size(batch)
        for name in ("auroc", "macro_f1", "micro_f1"):
            metric = getattr(self, f"{stage}_{name}")
            metric.update(logits.sigmoid(), labels)
            self.log(f"{stage}_{name}", metric, prog_bar=name == "auroc", batch_size=size)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._score("val", batch)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._score("test", batch)

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> Any:
        return {"probabilities": self.eval_model(batch).logits.float().sigmoid()}
