"""Semi-supervised classification: a labelled and an unlabelled stream, an EMA teacher.

Each training step draws one batch from each stream. The labelled batch gives the
cross-entropy of the student; on the unlabelled batch the teacher's confident
predictions (max probability ≥ ``threshold``) become pseudo-labels for the student,
which sees the batch with Gaussian noise on its float modalities (the weak/strong
split of FixMatch and Mean Teacher, in its most generic form). The teacher is an
exponential moving average of the student (``ema_decay``; 0 = the student itself,
plain pseudo-labelling) and is what validation, test and the exported weights use.

A model may add terms of its own on the unlabelled batch (mixing, contrastive, ...):
when it defines ``unlabelled_terms(step: UnlabelledStep) -> dict[str, Tensor]``, the
task adds every returned (already weighted) term to the loss and logs it as
``train_<name>``; what it puts in ``step.metrics`` (shares, rates) is logged the
same way but not added.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from polymodal.data.specs import MODALITIES
from polymodal.train.tasks.classification import ClassificationModule

STREAMS = ("labelled", "unlabelled")


def with_noise(batch: dict[str, Tensor], std: float) -> dict[str, Tensor]:
    """A copy of ``batch`` with N(0, std²) noise added to every float modality tensor
    (from the global generator, which the task seeds per step)."""
    if std <= 0:
        return batch
    out = dict(batch)
    for key, value in batch.items():
        if key in MODALITIES and value.is_floating_point():
            out[key] = value + std * torch.randn_like(value)
    return out


@dataclass
class UnlabelledStep:
    """What a model's ``unlabelled_terms`` sees of one training step.

    Attributes:
        weak: the unlabelled batch as the teacher saw it.
        strong: the same batch as the student saw it (noised).
        teacher: the teacher's output on ``weak`` (``.logits`` (B, C), and whatever
            else the model returns).
        student: the student's output on ``strong``.
        pseudo: (B,) int64 teacher pseudo-labels.
        keep: (B,) float, 1 where the teacher's confidence reaches the threshold.
        metrics: () values the model reports about its terms, logged as
            ``train_<name>`` and never added to the loss.
    """

    weak: dict[str, Tensor]
    strong: dict[str, Tensor]
    teacher: Any
    student: Any
    pseudo: Tensor
    keep: Tensor
    metrics: dict[str, Tensor] = field(default_factory=dict)


class SemiSupervisedModule(ClassificationModule):
    """Classification trained on labelled and unlabelled streams (module doc).

    Args:
        model: maps a batch to ``.logits`` (B, C).
        num_classes: C.
        unlabelled_weight: λ, the weight of the pseudo-label loss.
        threshold: τ, the teacher confidence a pseudo-label needs.
        ema_decay: teacher = EMA of the student with this decay; 0 = no teacher copy.
        noise: std of the noise on the student's unlabelled inputs.
        **kwargs: :class:`~polymodal.train.tasks.base.TaskModule` options.
    """

    kind: ClassVar[str] = "semi_supervised"

    def __init__(
        self,
        model: nn.Module,
        num_classes: int,
        unlabelled_weight: float = 1.0,
        threshold: float = 0.9,
        ema_decay: float = 0.99,
        noise: float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, num_classes, **kwargs)
        self.unlabelled_weight = unlabelled_weight
        self.threshold = threshold
        self.ema_decay = ema_decay
        self.noise = noise
        self.teacher = copy.deepcopy(model).requires_grad_(False) if ema_decay > 0 else None

    @property
    def eval_model(self) -> nn.Module:
        return self.teacher if self.teacher is not None else self.model

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:  # type: ignore[override]
        labelled, unlabelled = batch["labelled"], batch["unlabelled"]
        logits = self.model(self.training_inputs(labelled, batch_idx)).logits
        supervised = F.cross_entropy(logits, labelled["label"])
        own_terms = getattr(self.model, "unlabelled_terms", None)
        if self.unlabelled_weight == 0 and own_terms is None:
            # Supervised only, with the steps of the semi-supervised runs: the
            # unlabelled batch would only cost forward passes nobody uses.
            self.log("train_loss", supervised, prog_bar=True, batch_size=logits.shape[0])
            return supervised
        with torch.no_grad():
            teacher = self.eval_model
            was_training = teacher.training
            teacher.eval()
            teacher_out = teacher(unlabelled)
            teacher.train(was_training)
        confidence, pseudo = teacher_out.logits.softmax(dim=-1).max(dim=-1)
        keep = (confidence >= self.threshold).float()
        strong = with_noise(self.training_inputs(unlabelled, batch_idx), self.noise)
        student_out = self.model(strong)
        unsupervised = (F.cross_entropy(student_out.logits, pseudo, reduction="none") * keep).mean()
        loss = supervised + self.unlabelled_weight * unsupervised
        size = logits.shape[0]
        if own_terms is not None:
            step = UnlabelledStep(unlabelled, strong, teacher_out, student_out, pseudo, keep)
            for name, term in own_terms(step).items():
                loss = loss + term
                self.log(f"train_{name}", term, batch_size=size)
            for name, value in step.metrics.items():
                self.log(f"train_{name}", value, batch_size=size)
        self.log("train_loss", loss, prog_bar=True, batch_size=size)
        self.log("train_pseudo_share", keep.mean(), batch_size=size)
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.teacher is None:
            return
        with torch.no_grad():
            for t, s in zip(self.teacher.parameters(), self.model.parameters(), strict=True):
                t.lerp_(s, 1.0 - self.ema_decay)
            for t, s in zip(self.teacher.buffers(), self.model.buffers(), strict=True):
                t.copy_(s)
