"""Reading and writing WAV files as float waveforms.

Decoding is done by ``scipy.io.wavfile`` (PCM 8/16/24/32-bit integer and 32/64-bit
float, plain or WAVE_FORMAT_EXTENSIBLE, RIFF/RIFX/RF64); resampling by
``scipy.signal.resample_poly`` (both imported on first use, as ``scipy.signal``
takes a second to import). Anything that is not a complete, non-empty WAV
file raises :class:`~polymodal.errors.DataError` with a one-line message that
names the file and the problem.
"""

from __future__ import annotations

import math
import struct
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from polymodal.errors import ConfigError, DataError

__all__ = ["read_wav", "read_wav_native", "resample", "write_wav"]


def _one_line(problem: object) -> str:
    """A message (exception or warning text) squeezed onto one line."""
    text = " ".join(str(problem).split())
    return text or type(problem).__name__


def _to_float(data: np.ndarray) -> np.ndarray:
    """Integer or float PCM samples (S,) or (S, C) to float64 in [-1, 1]."""
    if data.dtype == np.uint8:  # 8-bit PCM is unsigned, centred on 128
        return (data.astype(np.float64) - 128.0) / 128.0
    if data.dtype == np.int16:
        return data.astype(np.float64) / 32768.0
    if data.dtype == np.int32:  # 32-bit PCM; scipy also left-aligns 24-bit PCM into int32
        return data.astype(np.float64) / 2147483648.0
    if data.dtype == np.int64:  # scipy's container for 40- to 64-bit PCM
        return data.astype(np.float64) / 9223372036854775808.0
    if np.issubdtype(data.dtype, np.floating):
        return data.astype(np.float64)
    raise TypeError(f"unsupported sample type {data.dtype}")


def read_wav_native(path: str | Path) -> tuple[Tensor, int]:
    """Read a WAV file at its own sample rate.

    Args:
        path: the ``.wav`` file.

    Returns:
        ``(wave, rate)``: (S,) float32 mono waveform in [-1, 1] (channels averaged)
        and the file's sample rate in Hz.

    Raises:
        DataError: missing, empty, truncated or corrupt file, a format scipy
            cannot decode, or a recording with no samples.
    """
    from scipy.io import wavfile

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist or is not a file")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is not a readable WAV file (the file is empty, 0 bytes)")
    try:
        with warnings.catch_warnings(record=True) as caught, path.open("rb") as handle:
            warnings.simplefilter("always", wavfile.WavFileWarning)
            rate, data = wavfile.read(handle)
    except (struct.error, EOFError) as error:
        raise DataError(f"{path} is truncated (header ends early: {_one_line(error)})") from error
    except Exception as error:  # scipy raises ValueError and others for foreign formats
        raise DataError(f"{path} is not a readable WAV file ({_one_line(error)})") from error
    for warning in caught:
        if "EOF" in str(warning.message) or "ncomplete" in str(warning.message):
            raise DataError(f"{path} is truncated ({_one_line(warning.message)})")
    if rate <= 0:
        raise DataError(f"{path} declares an invalid sample rate of {rate} Hz")
    if data.ndim == 2 and data.shape[1] == 0:
        raise DataError(f"{path} has no audio channels")
    if data.shape[0] == 0:
        raise DataError(f"{path} is a zero-length recording (0 samples)")
    try:
        wave = _to_float(data)
    except TypeError as error:
        raise DataError(f"{path} is not a readable WAV file ({error})") from error
    if wave.ndim == 2:  # (S, C) -> mono
        wave = wave.mean(axis=1)
    if not np.isfinite(wave).all():
        raise DataError(f"{path} contains NaN or Inf samples")
    tensor = torch.from_numpy(np.clip(wave, -1.0, 1.0).astype(np.float32))
    return tensor, int(rate)


def resample(wave: Tensor, orig_rate: int, new_rate: int) -> Tensor:
    """Polyphase resampling of a (S,) waveform by the rational factor new/orig.

    The up/down factors are ``new_rate / g`` and ``orig_rate / g`` with
    ``g = gcd(orig_rate, new_rate)``, so 8 kHz to 16 kHz exactly doubles the length.
    """
    from scipy.signal import resample_poly

    if orig_rate <= 0 or new_rate <= 0:
        raise ConfigError(f"sample rates must be positive, got {orig_rate} -> {new_rate}")
    if orig_rate == new_rate:
        return wave
    g = math.gcd(orig_rate, new_rate)
    out = resample_poly(wave.double().numpy(), new_rate // g, orig_rate // g)
    return torch.from_numpy(np.clip(out, -1.0, 1.0).astype(np.float32))


def read_wav(path: str | Path, sample_rate: int | None = 16_000) -> Tensor:
    """Read a WAV file as a mono float waveform.

    Args:
        path: the ``.wav`` file.
        sample_rate: rate to resample to, in Hz; ``None`` keeps the file's own rate
            (see :func:`read_wav_native` to learn it).

    Returns:
        (S,) float32 in [-1, 1]. Multi-channel files are averaged to mono;
        integer PCM is divided by its full scale (e.g. 32768 for 16-bit).

    Raises:
        DataError: the file is missing, empty, truncated, not a WAV file, or holds
            no samples; the message names the file.
    """
    wave, rate = read_wav_native(path)
    if sample_rate is None:
        return wave
    return resample(wave, rate, sample_rate)


def write_wav(path: str | Path, wave: Tensor, sample_rate: int) -> None:
    """Write a waveform as a 16-bit PCM WAV file.

    Args:
        path: destination file (parent folders must exist).
        wave: (S,) mono or (C, S) multi-channel float waveform in [-1, 1]; values
            outside are clipped.
        sample_rate: in Hz.
    """
    from scipy.io import wavfile

    if sample_rate <= 0:
        raise ConfigError(f"sample_rate must be positive, got {sample_rate}")
    array = wave.detach().cpu().double().numpy()
    if array.ndim not in (1, 2):
        raise DataError(f"wave must be (S,) or (C, S), got shape {tuple(array.shape)}")
    if not np.isfinite(array).all():
        raise DataError("wave contains NaN or Inf values")
    pcm = np.clip(np.round(array * 32768.0), -32768, 32767).astype(np.int16)
    if pcm.ndim == 2:
        pcm = pcm.T  # (C, S) -> (S, C), the layout scipy writes
    wavfile.write(str(path), sample_rate, np.ascontiguousarray(pcm))
