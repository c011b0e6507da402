"""Weakly supervised grounding: trained on image-level labels, scored on maps.

The model trains on its own loss (``model(batch).loss``, e.g. classification of
the action on exocentric and egocentric views plus a part-prototype term) from
samples that carry a ``label`` and no map. Validation and test samples carry a
``heatmap``; the model's ``heatmap`` output (B, H, W), non-negative, is scored
against it with the affordance-grounding KLD (monitored, lower is better), SIM and
NSS of :mod:`.grounding_metrics`. Ground-truth maps are thus used for evaluation
and checkpoint choice on the validation split only, never for training.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from torch import Tensor, nn

from polymodal.train.tasks.base import TaskModule, batch_size
from polymodal.train.tasks.grounding_metrics import KLD, NSS, SIM

METRICS = {"kld": KLD, "sim": SIM, "nss": NSS}


class WeakGroundingModule(TaskModule):
    """See the module doc.

    Args:
        model: ``model(batch)`` returns ``.loss`` (in training) and ``.heatmap`` (B, H, W).
        **kwargs: :class:`~polymodal.train.tasks.base.TaskModule` options.
    """

    kind: ClassVar[str] = "weak_grounding"
    monitor: ClassVar[str] = "val_kld"
    mode: ClassVar[Literal["min", "max"]] = "min"

    def __init__(self, model: nn.Module, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        for stage in ("val", "test"):
            for name, make in METRICS.items():
                setattr(self, f"{stage}_{name}", make())

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        out = self.model(self.training_inputs(batch, batch_idx))
        size = batch_size(batch)
        for name, value in getattr(out, "parts", {}).items():
            self.log(f"train_{name}", value, batch_size=size)
        self.log("train_loss", out.loss, prog_bar=True, batch_size=size)
        return out.loss  # type: ignore[no-any-return]

    def _score(self, stage: str, batch: dict[str, Tensor]) -> None:
        predicted = self.eval_model(batch).heatmap
        for name in METRICS:
            metric = getattr(self, f"{stage}_{name}")
            metric.update(predicted, batch["heatmap"])
            self.log(
                f"{stage}_{name}", metric, prog_bar=name == "kld", batch_size=batch_size(batch)
            )

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._score("val", batch)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._score("test", batch)

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> Any:
        """Maps summing to 1 and the label each grounds: the batch's, else the predicted."""
        out = self.eval_model(batch)
        heatmap = out.heatmap  # (B, H, W), non-negative
        label = batch["label"] if "label" in batch else out.logits.argmax(1)
        total = heatmap.flatten(1).sum(1).clamp_min(1e-12)[:, None, None]
        return {"heatmap": heatmap / total, "label": label}
