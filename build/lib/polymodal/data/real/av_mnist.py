"""AV-MNIST: an MNIST image and an FSDD recording of the same digit.

AV-MNIST (used by MFAS and MultiBench) pairs each spoken digit with a handwritten
one. Here every FSDD recording of the split is paired with ``pairs_per_recording``
MNIST images of its digit, so the number of samples is
``len(recordings) * pairs_per_recording`` and the two labels always agree.

FSDD split: takes 0-4 of every speaker are test, the other takes train.

MNIST images: by default (``mnist_split=None``) both splits draw from the t10k
file, divided into disjoint train and test pools per digit: within each digit
class, a permutation seeded by ``pool_seed`` puts the first
``1 - test_fraction`` (80 %) of that class's images in the train pool and the rest
in the test pool. The pools do not depend on ``seed``, so a train set and a test
set built with different pairing seeds still share no image. A user with the
official MNIST files can instead pass ``mnist_split="train"`` for the train set and
``mnist_split="t10k"`` for the test set; the whole file is then the pool.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from torch import Tensor
from torch.utils.data import Dataset

from polymodal.data.contract import validate_sample
from polymodal.data.real.fsdd import FSDD
from polymodal.data.real.mnist import load_mnist
from polymodal.errors import DataError

__all__ = ["AVMNIST", "mnist_pools"]


def mnist_pools(labels: Tensor, test_fraction: float = 0.2, seed: int = 0) -> dict[str, Tensor]:
    """Split image indices into disjoint, class-stratified train and test pools.

    Args:
        labels: (N,) int64 digit labels.
        test_fraction: share of each class that goes to the test pool.
        seed: seed of the per-class permutation.

    Returns:
        ``{"train": (N_train,) int64, "test": (N_test,) int64}`` sorted indices.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    generator = torch.Generator().manual_seed(seed)
    train: list[Tensor] = []
    test: list[Tensor] = []
    for digit in torch.unique(labels).tolist():
        members = torch.nonzero(labels == digit).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        n_test = round(len(members) * test_fraction)
        test.append(members[:n_test])
        train.append(members[n_test:])
    return {"train": torch.cat(train).sort().values, "test": torch.cat(test).sort().values}


class AVMNIST(Dataset[dict[str, Tensor]]):
    """Paired MNIST images and FSDD spoken digits (AV-MNIST).

    Args:
        mnist_folder: folder with the MNIST IDX files (see :func:`load_mnist`).
        fsdd_root: FSDD recordings folder (see :class:`FSDD`).
        split: ``"train"`` or ``"test"``.
        pairs_per_recording: MNIST images paired with each recording.
        seed: seed of the pairing; the same seed gives the same pairs.
        sample_rate, duration, n_mels: audio settings passed to :class:`FSDD`.
        mnist_split: ``None`` carves both pools out of the t10k file (module
            docstring); ``"train"`` or ``"t10k"`` uses that whole file as the pool.
        test_fraction: share of each digit's t10k images in the test pool
            (only when ``mnist_split`` is None).
        pool_seed: seed of the t10k pool split (only when ``mnist_split`` is None).

    Each digit's recordings walk through a seeded permutation of that digit's
    pool images, so images repeat only when a digit has more pairs than images.
    Samples are ``{"image": (1, 28, 28) float32 in [0, 1], "audio": (n_mels, T)
    float32 log-mel, "label": () int64}``. Per-sample provenance:
    :attr:`recording_index` (into :attr:`audio`, an :class:`FSDD`) and
    :attr:`image_index` (into the MNIST file that was read).

    Raises:
        DataError: missing files, or a digit with recordings but no pool images.
    """

    def __init__(
        self,
        mnist_folder: str | Path,
        fsdd_root: str | Path,
        split: Literal["train", "test"] = "train",
        pairs_per_recording: int = 1,
        seed: int = 0,
        sample_rate: int = 16_000,
        duration: float = 1.0,
        n_mels: int = 40,
        mnist_split: Literal["train", "t10k"] | None = None,
        test_fraction: float = 0.2,
        pool_seed: int = 0,
    ) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if pairs_per_recording < 1:
            raise ValueError(f"pairs_per_recording must be >= 1, got {pairs_per_recording}")
        self.audio = FSDD(
            fsdd_root,
            split=split,
            sample_rate=sample_rate,
            features="log_mel",
            duration=duration,
            n_mels=n_mels,
        )
        images, labels = load_mnist(mnist_folder, mnist_split or "t10k")
        if mnist_split is None:
            pool = mnist_pools(labels, test_fraction, pool_seed)[split]
        else:
            pool = torch.arange(len(labels))

        generator = torch.Generator().manual_seed(seed)
        audio_labels = torch.tensor(self.audio.labels, dtype=torch.int64)
        recording_index: list[Tensor] = []
        image_index: list[Tensor] = []
        for digit in torch.unique(audio_labels).tolist():
            recordings = torch.nonzero(audio_labels == digit).flatten()
            candidates = pool[labels[pool] == digit]
            if len(candidates) == 0:
                raise DataError(
                    f"no MNIST image of digit {digit} in the {split!r} image pool "
                    f"({mnist_folder}) to pair with {len(recordings)} recordings"
                )
            n_pairs = len(recordings) * pairs_per_recording
            order = candidates[torch.randperm(len(candidates), generator=generator)]
            repeats = -(-n_pairs // len(order))  # ceil division
            recording_index.append(recordings.repeat_interleave(pairs_per_recording))
            image_index.append(order.repeat(repeats)[:n_pairs])
        # Interleave the digits again: order the pairs by recording.
        rec = torch.cat(recording_index)
        img = torch.cat(image_index)
        order = torch.argsort(rec, stable=True)
        self.recording_index: Tensor = rec[order]
        self.image_index: Tensor = img[order]
        self.images: Tensor = images[self.image_index]  # (N, 28, 28) uint8
        self.labels: Tensor = labels[self.image_index]  # (N,) int64
        self.split = split
        self.seed = seed
        self.mnist_split = mnist_split
        if not torch.equal(self.labels, audio_labels[self.recording_index]):
            raise AssertionError("AV-MNIST pairing produced mismatched labels")
        validate_sample(self[0])

    def __len__(self) -> int:
        return len(self.recording_index)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} pairs")
        image = self.images[index].float().div(255.0).unsqueeze(0)  # (1, 28, 28)
        return {
            "image": image,
            "audio": self.audio.load_audio(int(self.recording_index[index])),
            "label": self.labels[index].clone(),
        }

    def preload(self, progress: bool = True) -> AVMNIST:
        """Featurise every recording now (see :meth:`FSDD.preload`); returns ``self``."""
        self.audio.preload(progress)
        return self

    def __repr__(self) -> str:
        return (
            f"AVMNIST(split={self.split!r}, n={len(self)}, recordings={len(self.audio)}, "
            f"seed={self.seed}, mnist_split={self.mnist_split!r})"
        )
