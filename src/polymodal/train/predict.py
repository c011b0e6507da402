"""``polymodal predict``: apply a trained run to a user's files, whatever its task.

The run's task module makes the predictions (its ``predict_step``); a *writer*
registered for the task kind turns them into files a user opens: a CSV of classes
and probabilities, heatmap PNGs, reconstructions, embeddings, generated text.
A method adds a writer (:func:`register_writer`) rather than a command.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from polymodal.data.contract import collate
from polymodal.data.user_inputs import read_inputs
from polymodal.errors import ConfigError
from polymodal.train.config import ExperimentConfig
from polymodal.train.recipe import _quiet_lightning, load_trained, task_module
from polymodal.train.tasks import data_sizes, task_spec


@dataclass
class PredictionContext:
    """What a writer may need besides the predictions.

    Attributes:
        config: the run's config.
        names: one name per input sample, in prediction order.
        inputs: the samples as read (modality tensors).
        dataset: the run's training data set (class names, vocabulary, ...).
        volumes: per sample, ``{modality: Volume}`` of its NIfTI inputs (else empty):
            their grids and affines, to write a prediction back onto.
        spacing: the model's voxel size (3,) in mm, for volume models (else None).
    """

    config: ExperimentConfig
    names: list[str]
    inputs: list[dict[str, Tensor]]
    dataset: Dataset[Any]
    volumes: list[dict[str, Any]]
    spacing: list[float] | None = None


Writer = Callable[[Path, dict[str, Tensor], PredictionContext], list[Path]]
"""``writer(out_dir, predictions, context) -> files written``; ``predictions`` maps each
key of the task's ``predict_step`` output to the rows of every sample, concatenated."""

_WRITERS: dict[str, Writer] = {}


def register_writer(kind: str) -> Callable[[Writer], Writer]:
    """Decorator: the writer of task ``kind``'s predictions (a later one replaces it)."""

    def decorate(writer: Writer) -> Writer:
        _WRITERS[kind] = writer
        return writer

    return decorate


def writer_for(kind: str) -> Writer:
    from polymodal.train import writers  # noqa: F401  (registers the built-in writers)

    if kind not in _WRITERS:
        raise ConfigError(
            f"no prediction writer for task {kind!r}; register one with register_writer"
        )
    return _WRITERS[kind]


def _concatenate(outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-batch output dicts joined along the batch axis (sequences padded with -100;
    lists, such as generated texts, concatenated)."""
    joined: dict[str, Any] = {}
    for key in outputs[0]:
        if isinstance(outputs[0][key], list):  # e.g. generated texts
            joined[key] = [item for out in outputs for item in out[key]]
            continue
        parts = [out[key].detach().cpu() for out in outputs]
        if parts[0].dim() == 2 and not parts[0].is_floating_point():
            length = max(p.shape[1] for p in parts)
            parts = [
                torch.nn.functional.pad(p, (0, length - p.shape[1]), value=-100) for p in parts
            ]
        joined[key] = torch.cat(parts)
    return joined


def predict(
    run: str | Path, inputs: str | Path, out_dir: str | Path, batch_size: int = 32
) -> list[Path]:
    """Apply a finished run to the files under ``inputs`` and write the results.

    Args:
        run: a run folder written by ``polymodal fit``.
        inputs: a file or folder (:func:`~polymodal.data.user_inputs.read_inputs`).
        out_dir: where the writer puts its files (created).
        batch_size: samples per forward pass.

    Returns:
        The files written.

    Raises:
        ConfigError / DataError: an unusable run or input, named.
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    _quiet_lightning()
    config, model, data = load_trained(run)
    spec = task_spec(config.task.kind)
    train = data.dataset("train")
    sample = train[0]
    shapes = {m: tuple(sample[m].shape) for m in config.model.modalities}
    spacings = {m: sample[f"{m}_spacing"].tolist() for m in shapes if f"{m}_spacing" in sample}
    names, samples, volumes = read_inputs(inputs, shapes, spacings)
    module = task_module(config, model, data_sizes(spec, train, config.model.options))
    trainer = L.Trainer(
        accelerator=config.trainer.accelerator,
        devices=1,
        logger=False,
        enable_progress_bar=config.trainer.progress_bar,
        enable_model_summary=False,
    )
    loader = DataLoader(samples, batch_size=batch_size, collate_fn=collate)  # type: ignore[arg-type]
    outputs = trainer.predict(module, dataloaders=loader)
    predictions = _concatenate(outputs)  # type: ignore[arg-type]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spacing = next(iter(spacings.values()), None)
    context = PredictionContext(config, names, samples, train, volumes, spacing)
    return writer_for(spec.name)(out, predictions, context)
