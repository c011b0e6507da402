"""Acoustic conditions for synthetic speech: additive coloured noise and room reverberation.

Every function takes an explicit ``numpy.random.Generator``, so a seeded generator
reproduces the same degraded clip. Waveforms are 1-D, (S,), floating point.

Example::

    rng = np.random.default_rng(0)
    noisy = Scenario(snr_db=10.0, color="pink", rt60=0.4).apply(wave, rng)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import fftconvolve

from polymodal.data.synth.speech import SAMPLE_RATE

_EXPONENTS: dict[str, float] = {"white": 0.0, "pink": 1.0, "brown": 2.0}
"""Power spectral density of each colour falls as 1 / f**exponent."""

NOISE_COLORS = tuple(_EXPONENTS)
"""The noise colours :func:`add_noise` accepts."""

_LN_1000 = float(np.log(1000.0))  # -60 dB in amplitude is a factor of 1000


def _check_wave(wave: np.ndarray) -> np.ndarray:
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise ValueError(f"wave must be a 1-D waveform (S,), got shape {wave.shape}")
    if not np.issubdtype(wave.dtype, np.floating):
        raise ValueError(f"wave must be floating point, got dtype {wave.dtype}")
    if wave.size == 0:
        raise ValueError("wave is empty")
    if not np.all(np.isfinite(wave)):
        raise ValueError("wave contains NaN or Inf")
    return wave


def colored_noise(n: int, rng: np.random.Generator, color: str = "white") -> np.ndarray:
    """Gaussian noise whose power spectrum falls as 1/f**k (white 0, pink 1, brown 2).

    White Gaussian noise is shaped in the frequency domain by 1/f**(k/2) in amplitude;
    the DC bin is set to zero so the noise has no offset.

    Args:
        n: number of samples S.
        rng: source of randomness.
        color: ``"white"``, ``"pink"`` or ``"brown"``.

    Returns:
        (S,) float64 noise with unit mean power.
    """
    if color not in _EXPONENTS:
        raise ValueError(f"noise color must be one of {sorted(_EXPONENTS)}, got {color!r}")
    if n < 1:
        raise ValueError(f"noise length must be >= 1, got {n}")
    white = rng.standard_normal(n)
    exponent = _EXPONENTS[color]
    if exponent and n > 1:
        spectrum = np.fft.rfft(white)
        freqs = np.fft.rfftfreq(n)  # cycles per sample; only ratios matter
        gain = np.zeros_like(freqs)
        gain[1:] = freqs[1:] ** (-exponent / 2)
        noise = np.fft.irfft(spectrum * gain, n)
    else:
        noise = white
    power = float(np.mean(noise**2))
    return noise / np.sqrt(power) if power > 0 else noise


def add_noise(
    wave: np.ndarray,
    snr_db: float,
    rng: np.random.Generator,
    color: str = "white",
) -> np.ndarray:
    """Add coloured Gaussian noise at an exact signal-to-noise ratio.

    The noise is scaled so that ``10 * log10(P_signal / P_noise) == snr_db``, with
    powers taken as the mean square over the whole clip. The result is not clipped
    (clipping would change the ratio), so it may leave [-1, 1] at low SNR.

    Args:
        wave: (S,) floating-point waveform.
        snr_db: signal-to-noise ratio in dB.
        rng: source of randomness.
        color: ``"white"``, ``"pink"`` or ``"brown"``.

    Returns:
        (S,) waveform of ``wave``'s dtype.

    Raises:
        ValueError: the wave is silent, empty, not 1-D or not finite, or the SNR is not finite.
    """
    wave = _check_wave(wave)
    if not np.isfinite(snr_db):
        raise ValueError(f"snr_db must be finite, got {snr_db}")
    signal_power = float(np.mean(wave.astype(np.float64) ** 2))
    if signal_power == 0:
        raise ValueError("cannot set an SNR on a silent wave (its power is zero)")
    noise = colored_noise(wave.size, rng, color)
    noise *= np.sqrt(signal_power / 10.0 ** (snr_db / 10.0))  # unit power -> target power
    return (wave + noise).astype(wave.dtype)


def impulse_response(
    rt60: float,
    rng: np.random.Generator,
    sample_rate: int = SAMPLE_RATE,
    direct_ratio: float = 1.0,
) -> np.ndarray:
    """A synthetic room impulse response: a direct impulse and a decaying noise tail.

    The tail is Gaussian noise under the envelope ``exp(-ln(1000) * t / rt60)``, which
    falls by 60 dB at ``t = rt60``, where the response ends.

    Args:
        rt60: reverberation time in seconds (> 0).
        rng: source of randomness.
        sample_rate: samples per second.
        direct_ratio: energy of the direct impulse over energy of the tail
            (1.0 = 0 dB direct-to-reverberant ratio; larger is drier).

    Returns:
        (L,) float64 response with ``L = max(2, round(rt60 * sample_rate))`` and
        ``h[0] = 1``.
    """
    if not rt60 > 0 or not np.isfinite(rt60):
        raise ValueError(f"rt60 must be a positive number of seconds, got {rt60}")
    if not direct_ratio > 0 or not np.isfinite(direct_ratio):
        raise ValueError(f"direct_ratio must be positive, got {direct_ratio}")
    length = max(2, round(rt60 * sample_rate))
    t = np.arange(1, length) / sample_rate
    tail = rng.standard_normal(length - 1) * np.exp(-_LN_1000 * t / rt60)
    tail *= np.sqrt(1.0 / (direct_ratio * float(np.sum(tail**2))))  # tail energy = 1/ratio
    return np.concatenate([[1.0], tail])


def room_reverb(
    wave: np.ndarray,
    rt60: float,
    rng: np.random.Generator,
    sample_rate: int = SAMPLE_RATE,
    direct_ratio: float = 1.0,
) -> np.ndarray:
    """Convolve a waveform with a synthetic room response (see :func:`impulse_response`).

    Args:
        wave: (S,) floating-point waveform.
        rt60: reverberation time in seconds (> 0).
        rng: source of randomness (draws the response's noise tail).
        sample_rate: samples per second of ``wave``.
        direct_ratio: direct-to-reverberant energy ratio of the response (linear).

    Returns:
        (S,) waveform of ``wave``'s dtype: the first S samples of the convolution
        (the tail beyond the clip is cut), scaled to the input's peak absolute value.
    """
    wave = _check_wave(wave)
    response = impulse_response(rt60, rng, sample_rate, direct_ratio)
    wet = fftconvolve(wave.astype(np.float64), response)[: wave.size]
    peak_in, peak_out = float(np.max(np.abs(wave))), float(np.max(np.abs(wet)))
    if peak_out > 0:
        wet *= peak_in / peak_out
    return wet.astype(wave.dtype)


@dataclass(frozen=True)
class Scenario:
    """An acoustic condition: optional reverberation, then optional additive noise.

    Args:
        snr_db: signal-to-noise ratio of the added noise in dB; None adds no noise.
        color: noise colour, ``"white"``, ``"pink"`` or ``"brown"``.
        rt60: reverberation time in seconds; None adds no reverberation.
        direct_ratio: direct-to-reverberant energy ratio of the room (linear).
    """

    snr_db: float | None = None
    color: str = "white"
    rt60: float | None = None
    direct_ratio: float = 1.0

    def __post_init__(self) -> None:
        if self.color not in _EXPONENTS:
            raise ValueError(f"noise color must be one of {sorted(_EXPONENTS)}, got {self.color!r}")
        if self.snr_db is not None and not np.isfinite(self.snr_db):
            raise ValueError(f"snr_db must be finite or None, got {self.snr_db}")
        if self.rt60 is not None and not (self.rt60 > 0 and np.isfinite(self.rt60)):
            raise ValueError(f"rt60 must be positive or None, got {self.rt60}")

    def apply(
        self, wave: np.ndarray, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE
    ) -> np.ndarray:
        """Degrade one waveform: the room first (so the noise is not reverberated), then noise.

        Args:
            wave: (S,) floating-point waveform.
            rng: source of randomness.
            sample_rate: samples per second of ``wave``.

        Returns:
            (S,) waveform of ``wave``'s dtype.
        """
        out = _check_wave(wave)
        if self.rt60 is not None:
            out = room_reverb(out, self.rt60, rng, sample_rate, self.direct_ratio)
        if self.snr_db is not None:
            out = add_noise(out, self.snr_db, rng, self.color)
        return out.copy() if out is wave else out
