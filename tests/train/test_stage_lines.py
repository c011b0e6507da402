"""Stage and epoch lines of long runs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from polymodal.train.stage_lines import EpochLines, clock, say


def test_clock_reads_minutes_and_seconds() -> None:
    assert clock(42.4) == "42s"
    assert clock(95.2) == "1m35s"
    assert clock(600) == "10m00s"


def test_epoch_lines_show_the_epoch_and_the_metric_so_far(
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = EpochLines("divprune: VLM", "val_acc")
    trainer = SimpleNamespace(current_epoch=2, max_epochs=8, callback_metrics={"val_acc": 0.91234})
    lines.on_train_epoch_end(trainer, None)  # type: ignore[arg-type]
    trainer.callback_metrics = {}  # not validated this epoch
    lines.on_train_epoch_end(trainer, None)  # type: ignore[arg-type]
    say("divprune", "VLM from the cache")
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("divprune: VLM: epoch 3/8, val_acc 0.912 (")
    assert err[1].startswith("divprune: VLM: epoch 3/8, val_acc — (")
    assert err[2] == "divprune: VLM from the cache"
