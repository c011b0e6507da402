"""Five synthesised environmental noises: traffic, crowd, rain, thunder and wind.

READ and ABPEM overlay recordings of these five sounds on the test audio. No
recording ships here, so each is built from spectrally shaped Gaussian noise (band
edges are 4th-order Butterworth magnitudes), shaped in time by a random envelope on
a 10 ms grid (every clip draws its own from the generator it is given):

- **traffic** — engine rumble of a passing vehicle: brown noise below 300 Hz plus the
  first four harmonics of a 30-60 Hz engine tone, with tyre hiss (0.5-2 kHz) at a
  third of the level, all swelling and fading with a 0.3-1 s Gaussian pass-by envelope
  over a 0.3 floor;
- **crowd** — babble of 16 talkers: speech-shaped noise (pink, 300-3400 Hz) whose level
  follows the root-sum-square of 16 independent syllable-rate (3-6 Hz) envelopes;
- **rain** — droplets on a hard surface: Poisson impacts (300-600 per second,
  exponential amplitudes), each a 3 ms burst of noise above 2 kHz, over a hiss of
  white noise above 1 kHz;
- **thunder** — a clap followed by rolling rumble: brown noise below 120 Hz with a
  30 ms attack at a random onset in the first half second and a 0.3-0.8 s
  exponential decay over a 0.2 floor, plus a 50 ms crack above 1 kHz at the onset;
- **wind** — gusts: noise below 400 Hz and a whistle band (800-1600 Hz) at 0.3 of the
  level, both scaled by a smooth gust envelope (1-3 Hz), the whistle by its square.

Every noise is returned with unit mean power per clip, so a caller sets its level.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from scipy.signal import fftconvolve

ENVIRONMENTAL_NOISES = ("traffic", "crowd", "rain", "thunder", "wind")
"""The noises :func:`environmental_noise` synthesises."""


def _shaped(
    n: int,
    length: int,
    rng: np.random.Generator,
    sr: int,
    low: float | None = None,
    high: float | None = None,
    exponent: float = 0.0,
) -> np.ndarray:
    """(n, length) Gaussian noise with power spectrum 1/f**exponent, band-limited, unit power.

    The band edges are 4th-order Butterworth magnitudes applied in the frequency domain
    (zero phase): for stationary noise this has the same distribution as filtering in
    time, at the cost of one FFT pair for all clips.
    """
    spectrum = scipy.fft.rfft(rng.standard_normal((n, length), dtype=np.float32), axis=-1)
    f = scipy.fft.rfftfreq(length, 1.0 / sr).astype(np.float32)
    gain = np.ones_like(f)
    if exponent:
        gain[1:] = (f[1:] / f[1]) ** (-exponent / 2)
    if high:
        gain /= np.sqrt(1.0 + (f / high) ** 8)
    if low:
        gain /= np.sqrt(1.0 + (low / np.maximum(f, low / 100)) ** 8)
    gain[0] = 0.0  # no offset
    return _unit_power(scipy.fft.irfft(spectrum * gain, length, axis=-1))  # float32


def _upsample(curves: np.ndarray, length: int) -> np.ndarray:
    """Linear interpolation of (n, E) curves on an even grid to (n, length)."""
    position = np.linspace(0.0, curves.shape[1] - 1, length)
    knots = np.arange(curves.shape[1])
    out = np.empty((curves.shape[0], length), dtype=np.float32)
    for row, curve in enumerate(curves):  # np.interp per row beats a 2-D gather several-fold
        out[row] = np.interp(position, knots, curve)
    return out


def _smooth(rate_hz: np.ndarray, times: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n, E) smooth random curves (unit std) at ``times``, varying at ``rate_hz`` per row.

    Gaussian control points 1 / rate apart, linearly interpolated.
    """
    u = times[None] * rate_hz[:, None]  # position in control-point units, (n, E)
    knots = rng.standard_normal((len(rate_hz), int(np.ceil(u.max())) + 2))
    left = u.astype(int)
    frac = u - left
    rows = np.arange(len(rate_hz))[:, None]
    return knots[rows, left] * (1 - frac) + knots[rows, left + 1] * frac


def _unit_power(x: np.ndarray) -> np.ndarray:
    power = np.mean(x**2, axis=-1, keepdims=True)
    return x / np.sqrt(np.where(power > 0, power, 1.0))


def _envelope_grid(length: int, sr: int) -> np.ndarray:
    """Times (s) of a 10 ms grid spanning the clip: envelopes are computed there, then upsampled."""
    return np.linspace(0.0, (length - 1) / sr, (length - 1) // (sr // 100) + 2)


def _traffic(n: int, length: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    t = (np.arange(length) / sr).astype(np.float32)
    rumble = _shaped(n, length, rng, sr, high=300.0, exponent=2.0)
    f0 = rng.uniform(30.0, 60.0, (n, 1)).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, (n, 4)).astype(np.float32)
    engine = sum(np.sin(2 * np.pi * k * f0 * t + phase[:, k - 1 : k]) / k for k in range(1, 5))
    hiss = _shaped(n, length, rng, sr, low=500.0, high=2000.0)
    grid = _envelope_grid(length, sr)
    centre, width = rng.uniform(0.0, t[-1], (n, 1)), rng.uniform(0.3, 1.0, (n, 1))
    passing = 0.3 + np.exp(-0.5 * ((grid - centre) / (width / 2)) ** 2)
    return _upsample(passing, length) * (rumble + _unit_power(engine) + hiss / 3)


def _crowd(n: int, length: int, rng: np.random.Generator, sr: int, talkers: int = 16) -> np.ndarray:
    babble = _shaped(n, length, rng, sr, low=300.0, high=3400.0, exponent=1.0)
    grid = _envelope_grid(length, sr)
    level = np.zeros((n, len(grid)))
    for _ in range(talkers):
        level += np.maximum(_smooth(rng.uniform(3.0, 6.0, n), grid, rng), 0.0) ** 2
    return _upsample(np.sqrt(level), length) * babble


def _rain(n: int, length: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    hiss = _shaped(n, length, rng, sr, low=1000.0)
    counts = rng.poisson(rng.uniform(300.0, 600.0, n) * length / sr)
    rows = np.repeat(np.arange(n), counts)
    hits = np.zeros((n, length), dtype=np.float32)
    np.add.at(hits, (rows, rng.integers(0, length, rows.size)), rng.exponential(1.0, rows.size))
    burst_len = int(0.003 * sr)
    burst = _shaped(1, burst_len, rng, sr, low=2000.0)[0]
    burst *= np.exp(-np.arange(burst_len) / (burst_len / 4))  # decays within the 3 ms
    drops = fftconvolve(hits, burst[None], axes=-1)[:, :length]
    return 0.5 * hiss + _unit_power(drops)


def _thunder(n: int, length: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    grid = _envelope_grid(length, sr)
    rumble = _shaped(n, length, rng, sr, high=120.0, exponent=2.0)
    onset, decay = rng.uniform(0.0, 0.5, (n, 1)), rng.uniform(0.3, 0.8, (n, 1))
    after = np.clip(grid - onset, 0.0, None)
    started = grid >= onset
    envelope = np.where(started, np.minimum(after / 0.03, 1.0) * np.exp(-after / decay), 0.0)
    crack = _shaped(n, length, rng, sr, low=1000.0)
    crack_envelope = np.where(started, np.exp(-after / 0.05), 0.0)
    return _upsample(0.2 + envelope, length) * rumble + _upsample(crack_envelope, length) * crack


def _wind(n: int, length: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    grid = _envelope_grid(length, sr)
    gust = np.maximum(1.0 + 0.5 * _smooth(rng.uniform(1.0, 3.0, n), grid, rng), 0.1)
    low = _shaped(n, length, rng, sr, high=400.0)
    whistle = _shaped(n, length, rng, sr, low=800.0, high=1600.0)
    return _upsample(gust, length) * low + 0.3 * _upsample(gust**2, length) * whistle


_MAKERS = {"traffic": _traffic, "crowd": _crowd, "rain": _rain, "thunder": _thunder, "wind": _wind}


def environmental_noise(
    kind: str, n: int, length: int, rng: np.random.Generator, sample_rate: int = 16_000
) -> np.ndarray:
    """``n`` clips of one synthesised environmental noise (see the module doc).

    Args:
        kind: one of :data:`ENVIRONMENTAL_NOISES`.
        n: number of clips.
        length: samples per clip S.
        rng: source of randomness; the same seed gives the same clips.
        sample_rate: samples per second (the filters' band edges are in Hz).

    Returns:
        (n, S) float32 noise, each clip with unit mean power.

    Raises:
        ValueError: unknown kind, or a clip shorter than 10 ms.
    """
    if kind not in _MAKERS:
        raise ValueError(f"unknown noise {kind!r}; choose one of {', '.join(ENVIRONMENTAL_NOISES)}")
    if length < sample_rate // 100:
        raise ValueError(f"noise clips need at least 10 ms ({sample_rate // 100} samples)")
    return _unit_power(_MAKERS[kind](n, length, rng, sample_rate)).astype(np.float32)
