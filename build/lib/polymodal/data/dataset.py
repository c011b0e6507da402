"""In-memory datasets that yield contract samples."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor
from torch.utils.data import Dataset

from polymodal.data.contract import validate_sample
from polymodal.errors import DataError


class TensorDictDataset(Dataset[dict[str, Tensor]]):
    """Samples stored as equally long tensors, one per key.

    Args:
        tensors: e.g. ``{"image": (N, 1, 28, 28), "audio": (N, 40, 101), "label": (N,)}``.
            Half-precision tensors are returned as float32.
    """

    def __init__(self, tensors: Mapping[str, Tensor]) -> None:
        if not tensors:
            raise DataError("a dataset needs at least one tensor")
        lengths = {k: int(v.shape[0]) for k, v in tensors.items()}
        if len(set(lengths.values())) != 1:
            raise DataError(f"dataset tensors disagree on length: {lengths}")
        if next(iter(lengths.values())) == 0:
            raise DataError("dataset is empty (0 samples)")
        self.tensors = dict(tensors)
        validate_sample(self[0])

    def __len__(self) -> int:
        return int(next(iter(self.tensors.values())).shape[0])

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        sample = {}
        for key, value in self.tensors.items():
            item = value[index]
            sample[key] = item.float() if item.dtype in (torch.float16, torch.bfloat16) else item
        return sample

    def save(self, path: str | Path) -> None:
        """Write the tensors to a ``.safetensors`` file."""
        save_file({k: v.contiguous() for k, v in self.tensors.items()}, str(path))

    @classmethod
    def load(cls, path: str | Path) -> TensorDictDataset:
        """Read a dataset written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise DataError(
                f"dataset file {path} does not exist; build it with `polymodal data build`"
            )
        try:
            tensors = load_file(str(path))
        except Exception as error:  # safetensors raises its own error types
            raise DataError(f"{path} is not a readable safetensors file: {error}") from error
        return cls(tensors)
