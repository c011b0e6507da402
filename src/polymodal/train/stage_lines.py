"""One line per stage and epoch of a long training run, for runs without progress bars.

A claim check that trains for many minutes (the VLM checks) would otherwise print
nothing until it is done; these lines say what it is doing and how well it does
so far. They go to stderr through ``tqdm.write`` so that they do not break an
open progress bar.

Example::

    say("divprune", "training the VLM (cached afterwards)")
    trainer = L.Trainer(..., callbacks=[EpochLines("divprune: VLM", "val_acc")])
"""

from __future__ import annotations

import sys
import time
from typing import Any

import lightning as L
from tqdm.auto import tqdm


def say(label: str, message: str) -> None:
    """Write ``"<label>: <message>"`` as one line on stderr."""
    tqdm.write(f"{label}: {message}", file=sys.stderr)


def clock(seconds: float) -> str:
    """``95.2`` -> ``"1m35s"``; under a minute ``"42s"``."""
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


class EpochLines(L.Callback):
    """After each epoch: ``"<label>: epoch 3/8, val_acc 0.912 (4m10s)"``.

    Written at the end of the training epoch, which Lightning calls after that
    epoch's validation, so the metric is the one just measured.

    Args:
        label: what trains, e.g. ``"divprune: VLM"``.
        metric: the logged metric to show.
    """

    def __init__(self, label: str, metric: str) -> None:
        self.label, self.metric = label, metric
        self.start = time.monotonic()

    def on_train_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        self.start = time.monotonic()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        value = trainer.callback_metrics.get(self.metric)
        shown = "—" if value is None else f"{float(value):.3f}"
        epoch = f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"
        elapsed = clock(time.monotonic() - self.start)
        say(self.label, f"{epoch}, {self.metric} {shown} ({elapsed})")
