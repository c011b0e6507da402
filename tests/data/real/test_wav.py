from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.io import wavfile

from polymodal.data.real.wav import read_wav, read_wav_native, resample, write_wav
from polymodal.errors import DataError


def _riff(path: Path, fmt_tag: int, channels: int, rate: int, bits: int, data: bytes) -> None:
    """A minimal hand-made WAV file (fmt + data chunks)."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def _wave(n: int = 800, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    wave = torch.rand(n, generator=generator) * 2 - 1
    wave[:3] = torch.tensor([-1.0, 0.0, 1.0])
    return wave


def test_write_then_read_round_trips_within_one_lsb(tmp_path: Path) -> None:
    wave = _wave()
    write_wav(tmp_path / "a.wav", wave, 8000)
    back = read_wav(tmp_path / "a.wav", sample_rate=None)
    assert back.dtype == torch.float32
    assert back.shape == wave.shape
    assert (back - wave).abs().max() <= 1 / 32768


def test_read_wav_native_reports_the_file_rate(tmp_path: Path) -> None:
    write_wav(tmp_path / "a.wav", _wave(100), 22_050)
    wave, rate = read_wav_native(tmp_path / "a.wav")
    assert rate == 22_050
    assert wave.shape == (100,)


def test_resampling_8k_to_16k_doubles_length(tmp_path: Path) -> None:
    write_wav(tmp_path / "a.wav", _wave(8000), 8000)
    assert read_wav(tmp_path / "a.wav", sample_rate=16_000).shape == (16_000,)
    assert read_wav(tmp_path / "a.wav", sample_rate=4000).shape == (4000,)


def test_resampling_keeps_a_tone_at_its_frequency() -> None:
    t8 = torch.arange(8000, dtype=torch.float64) / 8000
    tone = (0.5 * torch.sin(2 * torch.pi * 440 * t8)).float()
    up = resample(tone, 8000, 16_000)
    t16 = torch.arange(16_000, dtype=torch.float64) / 16_000
    expected = (0.5 * torch.sin(2 * torch.pi * 440 * t16)).float()
    # Compare away from the edges, where the polyphase filter sees zero padding.
    torch.testing.assert_close(up[200:-200], expected[200:-200], atol=2e-3, rtol=0)


def test_stereo_is_averaged_to_mono(tmp_path: Path) -> None:
    left = torch.full((50,), 0.5)
    right = torch.full((50,), -0.25)
    write_wav(tmp_path / "s.wav", torch.stack([left, right]), 8000)
    mono = read_wav(tmp_path / "s.wav", sample_rate=None)
    torch.testing.assert_close(mono, torch.full((50,), 0.125))


def test_8bit_unsigned_pcm_is_centred(tmp_path: Path) -> None:
    wavfile.write(tmp_path / "u8.wav", 8000, np.array([0, 128, 192, 255], dtype=np.uint8))
    wave = read_wav(tmp_path / "u8.wav", sample_rate=None)
    torch.testing.assert_close(wave, torch.tensor([-1.0, 0.0, 0.5, 127 / 128]))


def test_24bit_pcm_is_scaled_to_unit_range(tmp_path: Path) -> None:
    values = [-(2**23), 0, 2**22, 2**23 - 1]
    data = b"".join(v.to_bytes(3, "little", signed=True) for v in values)
    _riff(tmp_path / "p24.wav", 1, 1, 8000, 24, data)
    wave = read_wav(tmp_path / "p24.wav", sample_rate=None)
    torch.testing.assert_close(wave, torch.tensor([-1.0, 0.0, 0.5, (2**23 - 1) / 2**23]))


def test_32bit_int_and_float_files_are_read(tmp_path: Path) -> None:
    wavfile.write(tmp_path / "i32.wav", 8000, np.array([-(2**31), 2**30], dtype=np.int32))
    wavfile.write(tmp_path / "f32.wav", 8000, np.array([-0.75, 0.25], dtype=np.float32))
    torch.testing.assert_close(read_wav(tmp_path / "i32.wav", None), torch.tensor([-1.0, 0.5]))
    torch.testing.assert_close(read_wav(tmp_path / "f32.wav", None), torch.tensor([-0.75, 0.25]))


def test_truncated_wav_raises_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "3_jackson_7.wav"
    write_wav(path, _wave(1000), 8000)
    path.write_bytes(path.read_bytes()[:600])
    with pytest.raises(DataError, match=r"3_jackson_7\.wav is truncated"):
        read_wav(path)


def test_wav_cut_inside_its_header_raises_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.wav"
    write_wav(path, _wave(1000), 8000)
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(DataError, match=r"cut\.wav is truncated"):
        read_wav(path)


def test_text_file_renamed_wav_raises_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("these are not audio samples\n")
    with pytest.raises(DataError, match=r"notes\.wav is not a readable WAV file") as info:
        read_wav(path)
    assert "\n" not in str(info.value)


def test_empty_file_raises_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.touch()
    with pytest.raises(DataError, match=r"empty\.wav .*empty"):
        read_wav(path)


def test_zero_length_recording_raises(tmp_path: Path) -> None:
    path = tmp_path / "silent.wav"
    _riff(path, 1, 1, 8000, 16, b"")
    with pytest.raises(DataError, match=r"silent\.wav is a zero-length recording"):
        read_wav(path)


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nothere\.wav does not exist"):
        read_wav(tmp_path / "nothere.wav")


def test_real_fsdd_recording_is_8k_mono(shared_data: Path) -> None:
    path = shared_data / "fsdd" / "recordings" / "3_jackson_7.wav"
    native, rate = read_wav_native(path)
    assert rate == 8000
    assert native.dim() == 1 and native.abs().max() <= 1.0
    assert read_wav(path, 16_000).shape == (2 * native.shape[0],)
