"""What every task's LightningModule shares: seeding for exact resume, the optimizer,
modality dropout, and the metric the run monitors.

A task is a :class:`TaskModule` subclass that names its loss (``training_step``),
its ``torchmetrics`` metrics (``validation_step``/``test_step``) and the validation
metric early stopping and checkpointing watch (:attr:`TaskModule.monitor`, with
:attr:`TaskModule.mode`). The recipe (:mod:`polymodal.train.recipe`) trains any of
them the same way.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import lightning as L
import torch
from torch import Tensor, nn

from polymodal.modules.modality_dropout import drop_modalities
from polymodal.train.config import OptimConfig

# Seeds of evaluation batches live far from those of training steps.
_EVAL_OFFSET = 7_919_000_003


class TaskModule(L.LightningModule):
    """Base of every task: a model, AdamW with cosine decay, and step-seeded randomness.

    Randomness inside a step (dropout, MAE masks, modality dropout, noise) depends
    only on ``(seed, epoch, step, rank)``, never on what consumed the global
    generator before (data-loader start-up, validation, a restart), so a resumed
    run ends with exactly the numbers of an uninterrupted one. Evaluation batches
    are seeded by their index, so a validation pass is the same wherever it runs.

    Args:
        model: the network; what it returns is the task's business.
        optim: AdamW settings.
        max_epochs: length of the cosine learning-rate schedule.
        seed: base of the per-step reseeding.
        modality_dropout: ``{modality: rate}``; in training steps only, each sample
            loses modality ``m`` with probability ``rate`` through ``<m>_mask``
            (:func:`~polymodal.modules.modality_dropout.drop_modalities`); empty = off.
    """

    kind: ClassVar[str] = ""
    """The task's registered name (``polymodal.train.tasks.TASKS``)."""
    monitor: ClassVar[str] = "val_loss"
    """The validation metric that picks the best epoch and stops early."""
    mode: ClassVar[Literal["min", "max"]] = "min"
    """Whether :attr:`monitor` is better higher (``max``) or lower (``min``)."""

    def __init__(
        self,
        model: nn.Module,
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

    def forward(self, batch: dict[str, Tensor]) -> Any:
        return self.model(batch)

    @property
    def eval_model(self) -> nn.Module:
        """The network validated, tested and exported (a teacher may stand in)."""
        return self.model

    def _step_seed(self, batch_idx: int) -> int:
        step = self.current_epoch * 1_000_003 + batch_idx
        return self.seed * 100_003 + step * 101 + self.global_rank

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        torch.manual_seed(self._step_seed(batch_idx))

    def _seed_eval(self, batch_idx: int) -> None:
        torch.manual_seed(_EVAL_OFFSET + self.seed * 100_003 + batch_idx * 101 + self.global_rank)

    def on_validation_batch_start(
        self, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._seed_eval(batch_idx)

    def on_test_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._seed_eval(batch_idx)

    def training_inputs(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        """``batch`` with modality dropout applied (unchanged when it is off).

        Dropout draws from its own generator, seeded from the step like the global
        one: exact on resume, and the model's other randomness draws what it would
        draw without it.
        """
        if not self.modality_dropout:
            return batch
        generator = torch.Generator().manual_seed(self._step_seed(batch_idx) + 1)
        return drop_modalities(batch, self.modality_dropout, generator)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters the optimizer updates: those of :attr:`model` not frozen."""
        return [p for p in self.model.parameters() if p.requires_grad]

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.AdamW(
            self.trainable_parameters(), lr=self.optim.lr, weight_decay=self.optim.weight_decay
        )
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.max_epochs)
        return {"optimizer": optimizer, "lr_scheduler": schedule}

    def log_metric(self, name: str, value: Any, size: int, prog_bar: bool = False) -> None:
        """Log an epoch-level metric (a torchmetrics object or a tensor) for a batch of ``size``."""
        sync = isinstance(value, Tensor)
        self.log(name, value, prog_bar=prog_bar, batch_size=size, sync_dist=sync)


def batch_size(batch: dict[str, Any]) -> int:
    """B, the leading size of the first tensor in ``batch``."""
    return int(next(v for v in batch.values() if isinstance(v, Tensor)).shape[0])


def gather_rows(module: L.LightningModule, rows: Tensor) -> Tensor:
    """Every rank's ``rows`` (n, ...) stacked into (W * n, ...); the rows themselves
    on a single process. Order across ranks is the same for every call, so two
    gathered tensors stay aligned row by row."""
    if module.trainer.world_size == 1:
        return rows
    gathered = module.all_gather(rows)  # (W, n, ...)
    return gathered.flatten(0, 1)
