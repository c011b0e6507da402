"""Audio features: log-mel spectrograms from ``torch.stft`` and a maintained mel bank.

The mel filter bank comes from ``transformers.audio_utils.mel_filter_bank`` (Slaney
scale and norm, as librosa's default), so no audio library beyond torch is needed.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor


@lru_cache(maxsize=8)
def mel_filters(n_fft: int, n_mels: int, sample_rate: int, f_min: float, f_max: float) -> Tensor:
    """(n_fft // 2 + 1, n_mels) float32 triangular mel filters."""
    from transformers.audio_utils import mel_filter_bank

    bank = mel_filter_bank(
        num_frequency_bins=n_fft // 2 + 1,
        num_mel_filters=n_mels,
        min_frequency=f_min,
        max_frequency=f_max,
        sampling_rate=sample_rate,
        norm="slaney",
        mel_scale="slaney",
    )
    return torch.from_numpy(bank).float()


def log_mel(
    wave: Tensor,
    sample_rate: int = 16_000,
    n_fft: int = 400,
    hop_length: int = 160,
    n_mels: int = 40,
    f_min: float = 20.0,
    f_max: float | None = None,
) -> Tensor:
    """Log-mel spectrogram of a waveform.

    Args:
        wave: (..., S) float waveform.
        sample_rate: samples per second of ``wave``.
        n_fft: FFT size (25 ms at 16 kHz by default); the window is Hann.
        hop_length: hop between frames (10 ms at 16 kHz by default).
        n_mels: number of mel bands F.
        f_min, f_max: band edges in Hz; ``f_max`` defaults to Nyquist.

    Returns:
        (..., F, T) natural-log mel power, floored at 1e-10, with
        T = 1 + S // hop_length.
    """
    lead = wave.shape[:-1]
    flat = wave.reshape(-1, wave.shape[-1]).float()
    spec = torch.stft(
        flat,
        n_fft=n_fft,
        hop_length=hop_length,
        window=torch.hann_window(n_fft, device=wave.device),
        center=True,
        return_complex=True,
    )  # (N, n_fft // 2 + 1, T)
    power = spec.abs().pow(2)
    bank = mel_filters(n_fft, n_mels, sample_rate, f_min, f_max or sample_rate / 2).to(wave.device)
    mel = torch.einsum("nft,fm->nmt", power, bank)  # (N, F, T)
    return mel.clamp_min(1e-10).log().reshape(*lead, n_mels, -1)
