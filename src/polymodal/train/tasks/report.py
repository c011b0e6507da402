"""Report generation scored by what the reports state (clinical F1).

The model trains on its own loss (``model(batch).loss``, e.g. a sum of
captioning, contrastive and classification terms) and, for evaluation, writes a
report per sample and reads back the findings it states:
``model.report_labels(batch)`` and ``model.reference_labels(batch)`` are (B, K)
multi-hot vectors parsed from the generated and the reference reports. The
metrics are per-finding F1 averaged over findings (``val_clinical_macro_f1``,
monitored, higher is better) and over all decisions (micro), with ``torchmetrics``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from torch import Tensor, nn
from torchmetrics.classification import MultilabelF1Score

from polymodal.train.tasks.base import TaskModule, batch_size


class ReportGenerationModule(TaskModule):
    """See the module doc.

    Args:
        model: has ``forward(batch).loss``, ``report_labels`` and ``reference_labels``.
        num_labels: K findings.
        **kwargs: :class:`~polymodal.train.tasks.base.TaskModule` options.
    """

    kind: ClassVar[str] = "report_generation"
    monitor: ClassVar[str] = "val_clinical_macro_f1"
    mode: ClassVar[Literal["min", "max"]] = "max"

    def __init__(self, model: nn.Module, num_labels: int, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        for stage in ("val", "test"):
            for average in ("macro", "micro"):
                metric = MultilabelF1Score(num_labels, average=average, zero_division=0)
                setattr(self, f"{stage}_clinical_{average}_f1", metric)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        out = self.model(self.training_inputs(batch, batch_idx))
        size = batch_size(batch)
        for name, value in getattr(out, "parts", {}).items():
            self.log(f"train_{name}", value, batch_size=size)
        self.log("train_loss", out.loss, prog_bar=True, batch_size=size)
        return out.loss

    def _score(self, stage: str, batch: dict[str, Tensor]) -> None:
        model = self.eval_model
        predicted = model.report_labels(batch).to(self.device).long()
        truth = model.reference_labels(batch).to(self.device).long()
        size = batch_size(batch)
        for average in ("macro", "micro"):
            metric = getattr(self, f"{stage}_clinical_{average}_f1")
            metric.update(predicted, truth)
            name = f"{stage}_clinical_{average}_f1"
            self.log(name, metric, prog_bar=average == "macro", batch_size=size)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._score("val", batch)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._score("test", batch)

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> Any:
        return {"reports": self.eval_model.write_reports(batch)}
