"""Real-world listening scenarios for synthetic speech, each at five severities.

A scenario turns a clean 16 kHz utterance into what a recogniser would hear in a
given place. Every one is seeded (the same wave, severity and generator give the
same clip) and gets harder with the severity ``s`` in 1..5:

- **meeting** — a corporate meeting room: room reverberation (RT60
  ``0.15 + 0.1 s`` seconds), a babble of ``1 + s`` other synthesised voices at
  ``26 - 4 s`` dB SNR, and one interrupting talker who starts before the speaker
  ends, overlapping the last ``6 s`` % of the clip at ``16 - 3 s`` dB;
- **live_stream** — a streamer over a music bed (chords and a kick drum at
  ``24 - 4 s`` dB SNR) through dynamic-range compression (threshold ``-8 - 3 s``
  dBFS, ratio ``1 + s``) and a codec that keeps the band below
  ``8000 - 1200 s`` Hz, drops spectral detail more than ``60 - 8 s`` dB below each
  frame's peak and quantises the rest in ``1.5 s`` dB steps;
- **phone** — a phone call: 300-3400 Hz band-limit, 8 kHz sampling, 8-bit
  μ-law (G.711), line noise at ``36 - 4 s`` dB SNR and 20 ms packets lost at
  random with probability ``4 s - 2`` % (a lost packet is silence);
- **street** — outdoors: traffic and crowd noise (:mod:`.noises`) at
  ``16 - 4 s`` dB SNR;
- **car** — inside a moving car: engine rumble and wind at ``12 - 4 s`` dB SNR.

The other voices of the meeting are passed in (``others``): the caller renders
them with the speech pipeline, which keeps this module free of espeak.
Waveforms are 1-D float arrays, (S,), at :data:`~.speech.SAMPLE_RATE` Hz.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.signal import butter, istft, lfilter, resample_poly, sosfilt, stft

from polymodal.data.synth.acoustics import add_noise, room_reverb
from polymodal.data.synth.noises import environmental_noise
from polymodal.data.synth.speech import SAMPLE_RATE
from polymodal.errors import ConfigError, DataError

SCENARIOS = ("meeting", "live_stream", "phone", "street", "car")
"""The scenarios :func:`degrade` knows, in the order tables list them."""

SEVERITIES = (1, 2, 3, 4, 5)
"""Severity levels, mildest first."""

_PACKET_S = 0.020  # one VoIP packet carries 20 ms
_MU = 255.0  # G.711 μ-law


def _check(wave: np.ndarray, severity: int) -> np.ndarray:
    wave = np.asarray(wave, dtype=np.float64)
    if wave.ndim != 1 or wave.size == 0:
        raise DataError(f"wave must be a non-empty 1-D waveform (S,), got shape {wave.shape}")
    if not np.all(np.isfinite(wave)):
        raise DataError("wave contains NaN or Inf")
    if not np.any(wave):
        raise DataError("wave is silent (all zeros); a scenario needs speech to degrade")
    if severity not in SEVERITIES:
        raise ConfigError(f"severity must be one of {SEVERITIES}, got {severity!r}")
    return wave


def _power(x: np.ndarray) -> float:
    return float(np.mean(x**2))


def _mix(wave: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``wave`` plus ``noise`` scaled to ``snr_db`` below it (mean powers over the clip)."""
    scale = np.sqrt(_power(wave) / (max(_power(noise), 1e-12) * 10 ** (snr_db / 10)))
    return wave + scale * noise


def _fit(x: np.ndarray, length: int) -> np.ndarray:
    """Tile or cut ``x`` to ``length`` samples."""
    return np.tile(x, -(-length // x.size))[:length]


def _peak_normalise(x: np.ndarray, peak: float = 0.9) -> np.ndarray:
    top = float(np.max(np.abs(x)))
    return x * (peak / top) if top > 0 else x


# --------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------


def music_bed(length: int, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Background music: a four-chord progression of harmonic tones over a kick drum.

    Args:
        length: samples S.
        rng: draws the key, the tempo and the chord order.
        sample_rate: samples per second.

    Returns:
        (S,) float64 with unit mean power.
    """
    t = np.arange(length) / sample_rate
    beat = 60.0 / rng.uniform(90, 130)  # seconds per beat
    root = 110.0 * 2 ** (rng.integers(0, 12) / 12)  # A2 .. G#3
    progression = rng.permutation([0, 5, 7, 9])  # I IV V vi in semitones
    chord = progression[(t // (4 * beat)).astype(int) % 4]
    out = np.zeros(length)
    for interval in (0, 4, 7):  # a major triad on each degree
        f0 = root * 2 ** ((chord + interval) / 12)
        phase = 2 * np.pi * np.cumsum(f0) / sample_rate
        for harmonic, gain in ((1, 1.0), (2, 0.5), (3, 0.25)):
            out += gain * np.sin(harmonic * phase)
    since_beat = t % beat
    kick = np.sin(2 * np.pi * 55 * since_beat) * np.exp(-since_beat / 0.06)
    out = out / np.sqrt(_power(out)) + 1.5 * kick
    return out / np.sqrt(_power(out))


def compress(
    wave: np.ndarray,
    threshold_db: float,
    ratio: float,
    sample_rate: int = SAMPLE_RATE,
    attack_s: float = 0.005,
    release_s: float = 0.1,
) -> np.ndarray:
    """Feed-forward dynamic-range compression with make-up gain to the input's peak.

    The level is a peak envelope (instant attack smoothed over ``attack_s``, decay
    over ``release_s``); above ``threshold_db`` (dBFS) the output level rises by
    1/``ratio`` dB per dB of input.

    Args:
        wave: (S,) waveform.
        threshold_db: knee in dBFS.
        ratio: compression ratio (>= 1).
        sample_rate: samples per second.
        attack_s, release_s: envelope time constants in seconds.

    Returns:
        (S,) float64 with the input's peak.
    """
    if ratio < 1:
        raise ConfigError(f"compression ratio must be >= 1, got {ratio}")
    release = np.exp(-1.0 / (release_s * sample_rate))
    envelope = _peak_envelope(np.abs(wave), release)
    attack = np.exp(-1.0 / (attack_s * sample_rate))
    envelope = lfilter([1 - attack], [1, -attack], envelope)
    level_db = 20 * np.log10(np.maximum(envelope, 1e-6))
    over = np.maximum(level_db - threshold_db, 0.0)
    gain = 10 ** (-over * (1 - 1 / ratio) / 20)
    out = wave * gain
    return _peak_normalise(out, float(np.max(np.abs(wave))))


def _peak_envelope(rectified: np.ndarray, release: float, block: int = 1024) -> np.ndarray:
    """Peak envelope with exponential release, blockwise so the powers stay finite."""
    out = np.empty_like(rectified)
    carry = 0.0
    decay = release ** np.arange(block)
    for start in range(0, rectified.size, block):
        chunk = rectified[start : start + block]
        d = decay[: chunk.size]
        held = np.maximum.accumulate(chunk / d)  # max over k<=n of x[k] release^(n-k), / release^n
        out[start : start + chunk.size] = np.maximum(held * d, carry * release * d)
        carry = out[start + chunk.size - 1]
    return out


def codec(
    wave: np.ndarray,
    cutoff_hz: float,
    floor_db: float,
    step_db: float,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """A lossy perceptual-codec stand-in on a 32 ms STFT.

    Bins above ``cutoff_hz`` and bins more than ``floor_db`` below their frame's peak
    are zeroed (what a low-bitrate codec drops); the remaining magnitudes are rounded
    to ``step_db`` steps in dB (its quantiser); phases are kept.

    Returns:
        (S,) float64.
    """
    nper = int(0.032 * sample_rate)
    freqs, _, spec = stft(wave, fs=sample_rate, nperseg=nper)
    magnitude, phase = np.abs(spec), np.angle(spec)
    db = 20 * np.log10(np.maximum(magnitude, 1e-10))
    keep = (db >= db.max(axis=0, keepdims=True) - floor_db) & (freqs[:, None] <= cutoff_hz)
    db = np.round(db / step_db) * step_db
    spec = np.where(keep, 10 ** (db / 20), 0.0) * np.exp(1j * phase)
    _, out = istft(spec, fs=sample_rate, nperseg=nper)
    return _fit(out, wave.size) if out.size < wave.size else out[: wave.size]


def mu_law(wave: np.ndarray, bits: int = 8) -> np.ndarray:
    """Encode to ``bits``-bit μ-law (μ = 255) and decode back; values clipped to [-1, 1].

    Returns:
        (S,) float64 on the 2**bits μ-law levels.
    """
    x = np.clip(wave, -1.0, 1.0)
    encoded = np.sign(x) * np.log1p(_MU * np.abs(x)) / np.log1p(_MU)
    levels = 2 ** (bits - 1) - 1
    encoded = np.round(encoded * levels) / levels
    return np.sign(encoded) * ((1 + _MU) ** np.abs(encoded) - 1) / _MU


def drop_packets(
    wave: np.ndarray, loss: float, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Silence whole 20 ms packets, each lost independently with probability ``loss``."""
    packet = int(_PACKET_S * sample_rate)
    lost = rng.random(-(-wave.size // packet)) < loss
    mask = np.repeat(~lost, packet)[: wave.size]
    return wave * mask


def band_limit(
    wave: np.ndarray, low_hz: float, high_hz: float, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """4th-order Butterworth band-pass (applied forwards, so causal like a phone line)."""
    sos = butter(4, [low_hz, high_hz], btype="bandpass", fs=sample_rate, output="sos")
    return sosfilt(sos, wave)


# --------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------


def _meeting(
    wave: np.ndarray, s: int, rng: np.random.Generator, others: Sequence[np.ndarray]
) -> np.ndarray:
    if len(others) < 2 + s:
        raise ConfigError(
            f"the meeting at severity {s} needs {2 + s} other voices (babble {1 + s} and "
            f"one interrupting talker), got {len(others)}"
        )
    picks = rng.choice(len(others), size=2 + s, replace=False)
    voices = [np.asarray(others[i], dtype=np.float64) for i in picks]
    room = room_reverb(wave, 0.15 + 0.1 * s, rng)
    babble = sum(_fit(np.roll(v, rng.integers(v.size)), wave.size) for v in voices[1:])
    out = _mix(room, babble, 26.0 - 4 * s)
    # The interrupting talker starts while the speaker still talks.
    overlap = int(round(0.06 * s * wave.size))
    talker = _fit(voices[0], overlap)
    talker = room_reverb(talker, 0.15 + 0.1 * s, rng)
    interruption = np.zeros(wave.size)
    interruption[wave.size - overlap :] = talker
    scale = np.sqrt(_power(room) / (max(_power(talker), 1e-12) * 10 ** ((16.0 - 3 * s) / 10)))
    return out + scale * interruption


def _live_stream(wave: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    out = _mix(wave, music_bed(wave.size, rng), 24.0 - 4 * s)
    out = compress(out, threshold_db=-8.0 - 3 * s, ratio=1.0 + s)
    return codec(out, cutoff_hz=8000.0 - 1200 * s, floor_db=60.0 - 8 * s, step_db=1.5 * s)


def _phone(wave: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    narrow = resample_poly(band_limit(wave, 300.0, 3400.0), 1, 2)  # 16 -> 8 kHz
    narrow = add_noise(narrow, 36.0 - 4 * s, rng, "white")
    narrow = mu_law(_peak_normalise(narrow, 0.7))
    narrow = drop_packets(narrow, (4 * s - 2) / 100, rng, SAMPLE_RATE // 2)
    return resample_poly(narrow, 2, 1)[: wave.size]


def _environment(
    wave: np.ndarray, s: int, rng: np.random.Generator, kinds: tuple[str, str], snr0: float
) -> np.ndarray:
    first, second = (environmental_noise(k, 1, wave.size, rng)[0] for k in kinds)
    return _mix(wave, first + 0.5 * second, snr0 - 4 * s)


def degrade(
    wave: np.ndarray,
    scenario: str,
    severity: int,
    rng: np.random.Generator,
    others: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """One utterance as heard in a scenario (see the module doc for every parameter).

    Args:
        wave: (S,) clean speech at 16 kHz.
        scenario: one of :data:`SCENARIOS`.
        severity: one of :data:`SEVERITIES` (5 is the hardest).
        rng: source of randomness; the same generator state gives the same clip.
        others: (S_i,) clean utterances of other speakers, for ``meeting`` (at
            least ``2 + severity``).

    Returns:
        (S,) float32 waveform, peak-normalised to 0.9.

    Raises:
        ConfigError: unknown scenario or severity, too few other voices.
        DataError: an empty, silent or non-finite wave.
    """
    wave = _check(wave, severity)
    if scenario == "meeting":
        out = _meeting(wave, severity, rng, others)
    elif scenario == "live_stream":
        out = _live_stream(wave, severity, rng)
    elif scenario == "phone":
        out = _phone(wave, severity, rng)
    elif scenario == "street":
        out = _environment(wave, severity, rng, ("traffic", "crowd"), 16.0)
    elif scenario == "car":
        out = _environment(wave, severity, rng, ("traffic", "wind"), 12.0)
    else:
        raise ConfigError(f"scenario must be one of {SCENARIOS}, got {scenario!r}")
    return _peak_normalise(out).astype(np.float32)
