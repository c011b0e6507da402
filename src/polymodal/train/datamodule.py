"""Data loading for the recipes: a Lightning DataModule over registered datasets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from polymodal.data.contract import collate
from polymodal.data.registry import build_dataset
from polymodal.errors import DataError
from polymodal.train.config import DataConfig


class EpochSeededSampler(Sampler[int]):
    """Shuffles with a permutation that depends only on ``(seed, epoch)``.

    A resumed run therefore sees exactly the batches an uninterrupted run would:
    Lightning calls :meth:`set_epoch` at the start of every epoch (and wraps this
    sampler for distributed runs).
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        return self.size


def labelled_indices(dataset: Dataset[Any]) -> tuple[list[int], list[int]]:
    """Indices of the labelled and the unlabelled samples, by ``label_mask``
    (a sample without it counts as labelled).

    Raises:
        DataError: either part is empty (semi-supervised training needs both).
    """
    tensors = getattr(dataset, "tensors", None)
    if tensors is not None:
        flags = tensors["label_mask"].bool().tolist() if "label_mask" in tensors else None
    else:
        flags = [bool(dataset[i].get("label_mask", True)) for i in range(len(dataset))]  # type: ignore[arg-type]
    if flags is None:
        flags = [True] * len(dataset)  # type: ignore[arg-type]
    labelled = [i for i, f in enumerate(flags) if f]
    unlabelled = [i for i, f in enumerate(flags) if not f]
    if not labelled or not unlabelled:
        raise DataError(
            "semi-supervised training needs labelled and unlabelled samples; the training set "
            f"has {len(labelled)} and {len(unlabelled)} "
            "(mark unlabelled ones with label_mask=False)"
        )
    return labelled, unlabelled


class MultimodalDataModule(L.LightningDataModule):
    """Train/val/test loaders for the dataset named in a :class:`DataConfig`.

    Args:
        config: the data section.
        seed: shuffling seed.
        streams: train on two streams, ``{"labelled": batch, "unlabelled": batch}``
            per step (semi-supervised); an epoch ends with the longer stream, the
            shorter one cycling (each with its own seeded shuffle).
    """

    def __init__(self, config: DataConfig, seed: int = 0, streams: bool = False) -> None:
        super().__init__()
        self.config = config
        self.seed = seed
        self.streams = streams
        self.datasets: dict[str, Dataset[Any]] = {}

    def dataset(self, split: str) -> Dataset[Any]:
        if split not in self.datasets:
            self.datasets[split] = build_dataset(self.config.name, split, **self.config.options)
        return self.datasets[split]

    def _loader(
        self,
        split: str,
        shuffle: bool,
        dataset: Dataset[Any] | None = None,
        seed: int | None = None,
    ) -> DataLoader[Any]:
        dataset = self.dataset(split) if dataset is None else dataset
        seed = self.seed if seed is None else seed
        sampler = EpochSeededSampler(len(dataset), seed) if shuffle else None  # type: ignore[arg-type]
        return DataLoader(
            dataset,
            batch_size=self.config.batch_size,
            sampler=sampler,
            collate_fn=collate,
            num_workers=self.config.num_workers,
            persistent_workers=self.config.num_workers > 0,
        )

    def train_dataloader(self) -> Any:
        if not self.streams:
            return self._loader("train", shuffle=True)
        train = self.dataset("train")
        labelled, unlabelled = labelled_indices(train)
        loaders = {
            "labelled": self._loader("train", True, Subset(train, labelled)),
            "unlabelled": self._loader("train", True, Subset(train, unlabelled), self.seed + 1),
        }
        return CombinedLoader(loaders, mode="max_size_cycle")

    def val_dataloader(self) -> DataLoader[Any]:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader[Any]:
        return self._loader("test", shuffle=False)
