"""Data loading for the recipes: a Lightning DataModule over registered datasets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from polymodal.data.contract import collate
from polymodal.data.registry import build_dataset
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


class MultimodalDataModule(L.LightningDataModule):
    """Train/val/test loaders for the dataset named in a :class:`DataConfig`."""

    def __init__(self, config: DataConfig, seed: int = 0) -> None:
        super().__init__()
        self.config = config
        self.seed = seed
        self.datasets: dict[str, Dataset[Any]] = {}

    def dataset(self, split: str) -> Dataset[Any]:
        if split not in self.datasets:
            self.datasets[split] = build_dataset(self.config.name, split, **self.config.options)
        return self.datasets[split]

    def _loader(self, split: str, shuffle: bool) -> DataLoader[Any]:
        dataset = self.dataset(split)
        sampler = EpochSeededSampler(len(dataset), self.seed) if shuffle else None  # type: ignore[arg-type]
        return DataLoader(
            dataset,
            batch_size=self.config.batch_size,
            sampler=sampler,
            collate_fn=collate,
            num_workers=self.config.num_workers,
            persistent_workers=self.config.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader[Any]:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader[Any]:
        return self._loader("test", shuffle=False)
