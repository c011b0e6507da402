"""Tests of reading speech WAVs: each bad input named on one line, fixes said."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.io import wavfile

from polymodal.data.real.speech_wav import read_speech_wav
from polymodal.errors import DataError


def write(path, data: np.ndarray, rate: int):
    wavfile.write(path, rate, data)
    return path


def tone(rate: int, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def test_a_16k_mono_file_passes_unchanged(tmp_path):
    clip = read_speech_wav(write(tmp_path / "q.wav", tone(16_000), 16_000))
    assert clip.notes == ()
    assert clip.wave.dtype == np.float32 and clip.wave.shape == (8000,)
    np.testing.assert_allclose(clip.wave, tone(16_000), atol=1e-6)


def test_another_rate_is_resampled_and_said(tmp_path):
    clip = read_speech_wav(write(tmp_path / "q.wav", tone(8_000), 8_000))
    assert clip.wave.shape == (8000,)  # 0.5 s at 16 kHz
    assert clip.notes == ("q.wav is at 8000 Hz; resampled it to 16000 Hz",)


def test_stereo_is_averaged_and_said(tmp_path):
    left = tone(16_000)
    clip = read_speech_wav(write(tmp_path / "s.wav", np.stack([left, 0 * left], 1), 16_000))
    assert clip.notes == ("s.wav has 2 channels; averaged them to mono",)
    np.testing.assert_allclose(clip.wave, left / 2, atol=1e-6)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.zeros(0, np.int16), "zero-length recording"),
        (np.zeros(16_000, np.int16), "is silent"),
        (np.full(16_000, 3, np.int16), "is silent"),  # 3 / 32768: -80 dBFS
    ],
)
def test_empty_and_silent_files_are_one_line_errors(tmp_path, data, message):
    with pytest.raises(DataError, match=message) as error:
        read_speech_wav(write(tmp_path / "q.wav", data, 16_000))
    assert "\n" not in str(error.value)


def test_a_clip_longer_than_the_window_is_refused(tmp_path):
    path = write(tmp_path / "long.wav", tone(16_000, seconds=3.0), 16_000)
    with pytest.raises(DataError, match=r"is 3\.0 s long but the audio window is 2 s"):
        read_speech_wav(path, window_s=2.0)
    assert read_speech_wav(path, window_s=3.0).wave.shape == (48_000,)
