"""Audio corruptions of READ's protocol: Gaussian noise and five synthesised overlays."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from polymodal.data.corrupt.spec import (
    AUDIO_NOISE_STD,
    OVERLAY_GAIN_DB,
    OVERLAY_REFERENCE_RMS,
    check_corruption,
)
from polymodal.errors import DataError


def audio_noise(
    name: str, n: int, length: int, seed: int = 0, sample_rate: int = 16_000
) -> np.ndarray:
    """The noise an audio corruption adds, before its level is set.

    The same ``(name, seed)`` gives the same noise at every severity; only the level
    (:func:`audio_noise_level`) changes, so a severity sweep can draw the noise once.

    Returns:
        (n, length) float32: standard normal noise for ``gaussian_noise``, unit-power
        synthesised noise for the environmental ones.
    """
    from polymodal.data.synth.noises import environmental_noise

    check_corruption("audio", name, 1)
    rng = np.random.default_rng(seed)
    if name == "gaussian_noise":
        return rng.standard_normal((n, length), dtype=np.float32)
    return environmental_noise(name, n, length, rng, sample_rate)


def audio_noise_level(name: str, severity: int) -> float:
    """The factor on :func:`audio_noise`: σ for Gaussian noise, RMS for the overlays."""
    check_corruption("audio", name, severity)
    if severity == 0:
        return 0.0
    if name == "gaussian_noise":
        return AUDIO_NOISE_STD[severity - 1]
    return OVERLAY_REFERENCE_RMS * 10 ** (OVERLAY_GAIN_DB[severity - 1] / 20)


def corrupt_waves(
    waves: Tensor, name: str, severity: int, seed: int = 0, sample_rate: int = 16_000
) -> Tensor:
    """Apply one audio corruption (see the module doc) to a batch of waveforms.

    Args:
        waves: (N, S) float waveforms.
        name: one of :data:`AUDIO_CORRUPTIONS`.
        severity: 1-5, or 0 for the clean waves (returned as a copy).
        seed: seed of the noise.
        sample_rate: samples per second of ``waves``.

    Returns:
        (N, S) float32 (not clipped, like the clean mixtures).
    """
    check_corruption("audio", name, severity)
    if waves.dim() != 2:
        raise DataError(f"waves must be (N, S), got {tuple(waves.shape)}")
    clean = waves.detach().cpu().float()
    if severity == 0:
        return clean.clone()
    noise = audio_noise(name, clean.shape[0], clean.shape[1], seed, sample_rate)
    return clean + audio_noise_level(name, severity) * torch.from_numpy(noise)
