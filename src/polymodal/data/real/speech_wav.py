"""Reading a spoken question or utterance from a WAV file, with every problem named.

Speech models here take 16 kHz mono audio no longer than their window. A file at
another rate is resampled and a note says so; a stereo file is averaged to mono
and a note says so; an empty, silent or too long file is a :class:`DataError`
with one line that names the file, the problem and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from polymodal.data.real.wav import read_wav_native, resample
from polymodal.errors import DataError

SPEECH_RATE = 16_000
"""Sample rate (Hz) speech is read at."""

SILENCE_PEAK = 1e-3
"""A clip whose peak magnitude is below this (-60 dBFS) holds no speech."""


class SpeechClip(NamedTuple):
    """A clip ready for a recogniser.

    Attributes:
        wave: (S,) float32 at :data:`SPEECH_RATE` Hz in [-1, 1].
        notes: one line per fix applied on reading (resampling, down-mixing).
    """

    wave: np.ndarray
    notes: tuple[str, ...]


def _channels(path: Path) -> int:
    from scipy.io import wavfile

    try:
        _, data = wavfile.read(path, mmap=True)
    except Exception:  # read_wav_native reports unreadable files with the right message
        return 1
    return 1 if data.ndim == 1 else int(data.shape[1])


def read_speech_wav(path: str | Path, window_s: float | None = None) -> SpeechClip:
    """Read ``path`` as 16 kHz mono speech.

    Args:
        path: a WAV file (integer or float PCM, any rate, mono or multi-channel).
        window_s: the longest clip the caller can take, in seconds; None: no limit.

    Returns:
        The clip and the notes on what was fixed.

    Raises:
        DataError: missing, unreadable or empty file, silence, or a clip longer
            than ``window_s``.
    """
    path = Path(path)
    wave, rate = read_wav_native(path)
    notes = []
    channels = _channels(path)
    if channels > 1:
        notes.append(f"{path.name} has {channels} channels; averaged them to mono")
    if rate != SPEECH_RATE:
        wave = resample(wave, rate, SPEECH_RATE)
        notes.append(f"{path.name} is at {rate} Hz; resampled it to {SPEECH_RATE} Hz")
    array = wave.numpy().astype(np.float32)
    if array.size == 0:
        raise DataError(f"{path} holds no samples; record the question again")
    if float(np.max(np.abs(array))) < SILENCE_PEAK:
        raise DataError(
            f"{path} is silent (peak below -60 dBFS); check the microphone and record again"
        )
    seconds = array.size / SPEECH_RATE
    if window_s is not None and seconds > window_s:
        raise DataError(
            f"{path} is {seconds:.1f} s long but the audio window is {window_s:g} s; "
            "trim the silence or ask a shorter question"
        )
    return SpeechClip(array, tuple(notes))
