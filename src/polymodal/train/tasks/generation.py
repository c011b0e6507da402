"""Sequence generation (captioning, VQA with free answers): next-token cross-entropy.

The model scores ``tokens`` teacher-forced (``.logits`` (B, L - 1, V) for tokens
1..L-1) and decodes with ``model.generate(batch)`` (B, L') starting at BOS, -100
after EOS, as :class:`~polymodal.modules.captioner.Captioner` does. Training and
validation score tokens (``val_token_acc``, monitored, higher is better); the test
also decodes greedily and counts a sequence right only when every token is
(``test_exact_match``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from polymodal.train.tasks.base import TaskModule, batch_size

IGNORE = -100


def exact_match(generated: Tensor, tokens: Tensor) -> Tensor:
    """(B,) 1.0 where a generated sequence equals its target, padding aside.

    Args:
        generated: (B, L') ids, -100 after EOS.
        tokens: (B, L) target ids, -100 as padding.
    """
    length = max(generated.shape[1], tokens.shape[1])
    a = F.pad(generated, (0, length - generated.shape[1]), value=IGNORE)
    b = F.pad(tokens, (0, length - tokens.shape[1]), value=IGNORE)
    return (a == b).all(dim=1).float()


class SequenceGenerationModule(TaskModule):
    """Train a model that scores and generates ``tokens`` (module doc).

    Args:
        model: e.g. :class:`~polymodal.modules.captioner.Captioner`.
        vocab_size: V.
        **kwargs: :class:`~polymodal.train.tasks.base.TaskModule` options.
    """

    kind: ClassVar[str] = "sequence_generation"
    monitor: ClassVar[str] = "val_token_acc"
    mode: ClassVar[Literal["min", "max"]] = "max"

    def __init__(self, model: Any, vocab_size: int, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.val_token_acc = MulticlassAccuracy(vocab_size, average="micro", ignore_index=IGNORE)
        self.test_token_acc = MulticlassAccuracy(vocab_size, average="micro", ignore_index=IGNORE)
        self.test_exact_match = MeanMetric()

    @staticmethod
    def _flat(logits: Tensor, tokens: Tensor) -> tuple[Tensor, Tensor]:
        return logits.flatten(0, 1), tokens[:, 1:].flatten()

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        logits = self.model(self.training_inputs(batch, batch_idx)).logits
        loss = F.cross_entropy(*self._flat(logits, batch["tokens"]), ignore_index=IGNORE)
        self.log("train_loss", loss, prog_bar=True, batch_size=batch_size(batch))
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        logits = self.eval_model(batch).logits
        flat = self._flat(logits, batch["tokens"])
        self.val_token_acc.update(*flat)
        size = batch_size(batch)
        self.log(
            "val_loss", F.cross_entropy(*flat, ignore_index=IGNORE), sync_dist=True, batch_size=size
        )
        self.log("val_token_acc", self.val_token_acc, prog_bar=True, batch_size=size)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        model = self.eval_model
        self.test_token_acc.update(*self._flat(model(batch).logits, batch["tokens"]))
        generated = model.generate(batch, max_length=batch["tokens"].shape[1])
        self.test_exact_match.update(exact_match(generated, batch["tokens"]))
        size = batch_size(batch)
        self.log("test_token_acc", self.test_token_acc, batch_size=size)
        self.log("test_exact_match", self.test_exact_match, batch_size=size)

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> Any:
        return {"tokens": self.eval_model.generate(batch)}
