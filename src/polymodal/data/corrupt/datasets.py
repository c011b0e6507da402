"""Corrupted test splits: AV-Digits-C and AV-MNIST-C."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor

from polymodal.data.corrupt.audio import corrupt_waves
from polymodal.data.corrupt.image import corrupt_images
from polymodal.data.corrupt.spec import Corruption
from polymodal.errors import ConfigError


@lru_cache(maxsize=2)
def _av_digits_waves(split: str, options_json: str) -> dict[str, Tensor]:
    from polymodal.data.synth.av_digits import load_av_digits_waveforms

    return load_av_digits_waveforms(split, **json.loads(options_json))


def av_digits_c(
    corruption: Corruption | str | None,
    seed: int = 0,
    split: str = "test",
    indices: Any = None,
    **options: Any,
) -> Any:
    """AV-Digits-C: one split of AV-Digits with one modality corrupted.

    Audio corruptions act on the waveform: the split's clips are drawn again from
    their seeds (:func:`~polymodal.data.synth.av_digits.load_av_digits_waveforms`),
    corrupted, and turned into log-mel features as in the build.

    Args:
        corruption: a :class:`Corruption`, ``"MODALITY:NAME:SEVERITY"``, or None for
            the clean data.
        seed: seed of the corruption.
        split: the AV-Digits split.
        indices: optional sample indices to keep (before corrupting; cheaper).
        **options: the AV-Digits build options.

    Returns:
        An :class:`~polymodal.data.synth.av_digits.AVDigits` with ``image`` (N, 1, 28, 28),
        ``audio`` (N, 40, 101), ``label`` and ``index``.
    """
    from polymodal.data.synth.av_digits import AVDigits, clip_features, load_av_digits

    spec = Corruption.parse(corruption) if isinstance(corruption, str) else corruption
    keep = slice(None) if indices is None else torch.as_tensor(indices, dtype=torch.long)
    stored = cast(AVDigits, load_av_digits(split, **options))
    tensors = {k: v[keep] for k, v in stored.tensors.items()}
    if spec is None or spec.severity == 0:
        return AVDigits(tensors)
    if spec.modality == "image":
        tensors["image"] = corrupt_images(tensors["image"].float(), spec.name, spec.severity, seed)
    else:
        waves = _av_digits_waves(split, json.dumps(options, sort_keys=True))["audio"][keep]
        noisy = corrupt_waves(waves, spec.name, spec.severity, seed)
        tensors["audio"] = clip_features(noisy.numpy())
    return AVDigits(tensors)


@lru_cache(maxsize=2)
def _av_mnist_clean(mnist_folder: str, fsdd_root: str, options_json: str) -> dict[str, Any]:
    """The clean AV-MNIST test pairs, built once per folder pair and options.

    Returns:
        ``{"image": (N, 1, 28, 28) in [0, 1], "label": (N,), "recording": (N,) index
        into the next two, "waves": (R, S) the split's recordings as resampled and
        cropped by :class:`~polymodal.data.real.fsdd.FSDD`, "features": (R, F, T) their
        log-mel, "sample_rate": int, "n_mels": int}``. Recordings repeat across pairs
        (``pairs_per_recording``), so each is read and featurised once.
    """
    from polymodal.data.real.av_mnist import AVMNIST
    from polymodal.data.real.fsdd import FSDD

    pairs = AVMNIST(mnist_folder, fsdd_root, split="test", **json.loads(options_json))
    audio = pairs.audio
    if audio.duration is None:
        raise ConfigError("AV-MNIST-C needs a fixed clip length: pass duration (seconds)")
    recordings = FSDD(
        fsdd_root, "test", audio.sample_rate, "waveform", audio.duration, audio.n_mels
    )
    waves = torch.stack([recordings.load_audio(i) for i in range(len(recordings))])
    return {
        "image": pairs.images[:, None],
        "label": pairs.labels,
        "recording": pairs.recording_index,
        "waves": waves,
        "features": _fsdd_log_mel(waves, audio.sample_rate, audio.n_mels),
        "sample_rate": audio.sample_rate,
        "n_mels": audio.n_mels,
    }


def _fsdd_log_mel(waves: Tensor, sample_rate: int, n_mels: int) -> Tensor:
    """(N, S) waveforms to (N, n_mels, T) log-mel, with FSDD's 25 ms window and 10 ms hop."""
    from polymodal.data.features import log_mel

    return log_mel(
        waves,
        sample_rate=sample_rate,
        n_fft=round(0.025 * sample_rate),
        hop_length=round(0.010 * sample_rate),
        n_mels=n_mels,
    )


def av_mnist_c(
    mnist_folder: str | Path,
    fsdd_root: str | Path,
    corruption: Corruption | str | None,
    seed: int = 0,
    indices: Any = None,
    **options: Any,
) -> Any:
    """AV-MNIST-C: the AV-MNIST test split with one modality corrupted.

    Audio corruptions act on each pair's copy of its FSDD recording's waveform
    (resampled and cropped as :class:`~polymodal.data.real.fsdd.FSDD` does) before its
    log-mel features, so pairs that share a recording get their own noise draws. The
    clean pairs are kept in memory (two option sets), so repeated calls only corrupt.

    Args:
        mnist_folder: folder with the MNIST IDX files.
        fsdd_root: FSDD recordings folder.
        corruption: a :class:`Corruption`, ``"MODALITY:NAME:SEVERITY"``, or None.
        seed: seed of the corruption.
        indices: optional pair indices to keep (before corrupting; cheaper).
        **options: :class:`~polymodal.data.real.av_mnist.AVMNIST` options.

    Returns:
        A dataset of ``{"image": (1, 28, 28), "audio": (F, T), "label"}`` samples.
    """
    from polymodal.data.dataset import TensorDictDataset

    spec = Corruption.parse(corruption) if isinstance(corruption, str) else corruption
    clean = _av_mnist_clean(str(mnist_folder), str(fsdd_root), json.dumps(options, sort_keys=True))
    # Index tensors copy, so nothing below can change the cached clean pairs.
    keep = torch.arange(len(clean["label"])) if indices is None else torch.as_tensor(indices)
    recording = clean["recording"][keep]
    images = clean["image"][keep]
    features = clean["features"][recording]  # (N, F, T)
    if spec is not None and spec.severity > 0 and spec.modality == "image":
        images = corrupt_images(images, spec.name, spec.severity, seed)
    elif spec is not None and spec.severity > 0:
        waves = corrupt_waves(
            clean["waves"][recording], spec.name, spec.severity, seed, clean["sample_rate"]
        )
        features = _fsdd_log_mel(waves, clean["sample_rate"], clean["n_mels"])
    return TensorDictDataset({"image": images, "audio": features, "label": clean["label"][keep]})
