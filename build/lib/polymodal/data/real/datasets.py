"""Registry entries that let recipes train on FSDD and AV-MNIST folders.

Both data sets come with a train/test split only (FSDD takes 0-4 are test). The
validation split used for early stopping and checkpoint selection is carved out
of the training recordings: takes 5-9 of every speaker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

from polymodal.data.real.av_mnist import AVMNIST
from polymodal.data.real.fsdd import FSDD
from polymodal.data.registry import register_dataset
from polymodal.errors import ConfigError

VALIDATION_TAKES = range(5, 10)


class DigitSubset(Subset[dict[str, Tensor]]):
    """A subset of a ten-class digit data set."""

    num_classes = 10


def _split(split: str) -> str:
    if split not in ("train", "val", "test"):
        raise ConfigError(f"splits are train, val and test, not {split!r}")
    return "test" if split == "test" else "train"


def _carve(dataset: Dataset[Any], takes: list[int], split: str) -> Dataset[Any]:
    """Keep validation takes for ``val`` and drop them from ``train``."""
    if split == "test":
        return dataset
    held_out = torch.tensor([t in VALIDATION_TAKES for t in takes])
    keep = held_out if split == "val" else ~held_out
    return DigitSubset(dataset, keep.nonzero().flatten().tolist())


def _require(path: str | None, option: str, name: str) -> Path:
    if not path:
        raise ConfigError(f"dataset {name!r} needs data.options.{option} (a folder path)")
    return Path(path).expanduser()


@register_dataset("fsdd")
def load_fsdd(split: str, root: str | None = None, **options: Any) -> Dataset[Any]:
    """FSDD spoken digits from ``root`` (a folder of ``{digit}_{speaker}_{take}.wav``)."""
    dataset = FSDD(_require(root, "root", "fsdd"), split=_split(split), **options)  # type: ignore[arg-type]
    return _carve(dataset, dataset.takes, split)


@register_dataset("av_mnist")
def load_av_mnist(
    split: str, mnist_folder: str | None = None, fsdd_root: str | None = None, **options: Any
) -> Dataset[Any]:
    """AV-MNIST: MNIST images paired with FSDD recordings of the same digit."""
    dataset = AVMNIST(
        _require(mnist_folder, "mnist_folder", "av_mnist"),
        _require(fsdd_root, "fsdd_root", "av_mnist"),
        split=_split(split),  # type: ignore[arg-type]
        **options,
    )
    takes = [dataset.audio.takes[int(i)] for i in dataset.recording_index]
    return _carve(dataset, takes, split)
