"""Per-item predictions of a trained model, kept so that verdicts can resample items.

A claim's interval comes from a paired bootstrap over test items
(:mod:`polymodal.bench.verdict`), so a run keeps its predictions item by item, not
only their mean. :class:`Predictions` holds them in test-set order and is stored
as ``test_predictions.safetensors`` beside a run's ``metrics.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from polymodal.errors import DataError

FILE = "test_predictions.safetensors"
"""File name of a run's per-item test predictions."""


@dataclass
class Predictions:
    """Per-item outputs of a classifier on a set of items, in the items' order.

    Attributes:
        logits: (N, C) class scores (float32).
        labels: (N,) true classes (int64).
        ids: (N,) patient/sample ids when the data carries them, else None.
        index: (N,) position of each item in the pooled data set (cross-validation),
            else None.
    """

    logits: Tensor
    labels: Tensor
    ids: Tensor | None = None
    index: Tensor | None = None

    def __post_init__(self) -> None:
        if self.logits.ndim != 2 or self.labels.shape != self.logits.shape[:1]:
            raise ValueError(
                "predictions: logits must be (N, C) and labels (N,), got "
                f"{tuple(self.logits.shape)} and {tuple(self.labels.shape)}"
            )
        for name in ("ids", "index"):
            extra = getattr(self, name)
            if extra is not None and extra.shape != self.labels.shape:
                raise ValueError(
                    f"predictions: {name} must be (N,) = {tuple(self.labels.shape)}, "
                    f"got {tuple(extra.shape)}"
                )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def pred(self) -> np.ndarray:
        """(N,) predicted class of every item."""
        return self.logits.argmax(dim=-1).numpy()

    def correct(self) -> np.ndarray:
        """(N,) 1.0 where the prediction is right, else 0.0 (per-item accuracy)."""
        return (self.pred == self.labels.numpy()).astype(np.float64)

    def save(self, path: str | Path) -> None:
        """Write as safetensors (``logits``, ``label`` and, when set, ``id``, ``index``)."""
        tensors = {"logits": self.logits, "label": self.labels}
        if self.ids is not None:
            tensors["id"] = self.ids
        if self.index is not None:
            tensors["index"] = self.index
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path))

    @classmethod
    def load(cls, path: str | Path) -> Predictions:
        """Read what :meth:`save` wrote.

        Raises:
            DataError: no such file, or not a predictions file.
        """
        path = Path(path)
        if not path.is_file():
            raise DataError(f"no per-item predictions at {path}")
        tensors = load_file(str(path))
        if "logits" not in tensors or "label" not in tensors:
            raise DataError(f"{path} holds no 'logits' and 'label' tensors")
        return cls(tensors["logits"], tensors["label"], tensors.get("id"), tensors.get("index"))

    @classmethod
    def concat(cls, parts: Sequence[Predictions]) -> Predictions:
        """The items of ``parts`` one after the other (e.g. every fold's held-out items).

        Raises:
            ValueError: no parts, or parts that disagree on which of ids/index they carry.
        """
        if not parts:
            raise ValueError("predictions: nothing to concatenate")

        def joined(name: str) -> Tensor | None:
            values = [getattr(p, name) for p in parts]
            if all(v is None for v in values):
                return None
            if any(v is None for v in values):
                raise ValueError(f"predictions: some parts have no {name!r}")
            return torch.cat(values)

        return cls(
            torch.cat([p.logits for p in parts]),
            torch.cat([p.labels for p in parts]),
            joined("ids"),
            joined("index"),
        )

    def sorted_by_index(self) -> Predictions:
        """The items in pooled-data order (by :attr:`index`), so runs align item by item.

        Raises:
            ValueError: :attr:`index` is None.
        """
        if self.index is None:
            raise ValueError("predictions: no index to sort by")
        order = torch.argsort(self.index)
        ids = None if self.ids is None else self.ids[order]
        return Predictions(self.logits[order], self.labels[order], ids, self.index[order])


def interleave_ranks(gathered: Tensor, total: int) -> Tensor:
    """Undo a distributed sampler's split of items over ranks.

    Lightning's ``DistributedSampler`` (no shuffling) gives rank r the items
    r, r + W, r + 2W, ... of a list padded by repeating its first items.

    Args:
        gathered: (W, n, ...) each rank's outputs in the order it saw them.
        total: the true number of items N (<= W * n).

    Returns:
        (N, ...) the outputs in data-set order, padding dropped.
    """
    # (W, n, ...) -> (n, W, ...) -> (n * W, ...): item k sits at row k // W, rank k % W.
    return gathered.transpose(0, 1).reshape(-1, *gathered.shape[2:])[:total]
