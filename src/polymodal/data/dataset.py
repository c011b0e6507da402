"""In-memory datasets that yield contract samples."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor
from torch.utils.data import Dataset

from polymodal.data.cache import cached_build
from polymodal.data.contract import validate_sample
from polymodal.errors import DataError


class TensorDictDataset(Dataset[dict[str, Tensor]]):
    """Samples stored as equally long tensors, one per key.

    Args:
        tensors: e.g. ``{"image": (N, 1, 28, 28), "audio": (N, 40, 101), "label": (N,)}``.
            Half-precision tensors are returned as float32.

    A subclass lists in :attr:`padded` the sequence keys stored right-padded to the
    longest row, with their padding value; each sample gets its own length back.
    """

    padded: ClassVar[Mapping[str, int]] = {}

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
        for key, pad in self.padded.items():
            if key in sample:
                sample[key] = sample[key][sample[key] != pad]
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


def padded_rows(rows: Sequence[Sequence[int]], value: int) -> Tensor:
    """(N, L) int64 rows right-padded with ``value`` to the longest row (L >= 1)."""
    out = torch.full((len(rows), max(1, *(len(r) for r in rows))), value, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out


def build_splits(
    kind: str,
    version: str,
    config: Any,
    make_split: Callable[[str], Mapping[str, Tensor]],
    splits: Sequence[str] = ("train", "val", "test"),
    code: Sequence[str] = (),
) -> Path:
    """The cache folder of a generated data set, building every split once.

    Args:
        kind: cache entry family, e.g. ``"ctpa_phantoms"``.
        version: generator version.
        config: the build's options, a dataclass (the cache key).
        make_split: ``split -> tensors`` of one split, saved as ``<split>.safetensors``.
        splits: the split names.
        code: modules whose code keys the entry (the generator's own module).
    """

    def build(folder: Path) -> dict[str, Any]:
        sizes = {}
        for split in splits:
            dataset = TensorDictDataset(make_split(split))
            dataset.save(folder / f"{split}.safetensors")
            sizes[split] = len(dataset)
        return {"sizes": sizes}

    return cached_build(kind, version, asdict(config), build, code=code)
