"""Tests of additive noise, room reverberation and acoustic scenarios."""

from __future__ import annotations

import numpy as np
import pytest

from polymodal.data.synth.acoustics import (
    Scenario,
    add_noise,
    colored_noise,
    impulse_response,
    room_reverb,
)

SR = 16_000


def tone(seconds: float = 0.5, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    noise = noisy.astype(np.float64) - clean.astype(np.float64)
    return float(10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise**2)))


def band_power(x: np.ndarray, lo: float, hi: float) -> float:
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / SR)
    return float(spectrum[(freqs >= lo) & (freqs < hi)].sum())


@pytest.mark.parametrize("color", ["white", "pink", "brown"])
@pytest.mark.parametrize("target", [-5.0, 0.0, 12.5, 40.0])
def test_add_noise_hits_the_requested_snr(color: str, target: float) -> None:
    clean = tone()
    noisy = add_noise(clean, target, np.random.default_rng(0), color)
    assert noisy.dtype == np.float32 and noisy.shape == clean.shape
    assert abs(snr_db(clean, noisy) - target) < 0.01


def test_pink_noise_has_more_power_below_1khz_than_above_4khz() -> None:
    noise = colored_noise(SR, np.random.default_rng(1), "pink")
    assert band_power(noise, 20, 1000) > 2 * band_power(noise, 4000, 8000)
    white = colored_noise(SR, np.random.default_rng(1), "white")
    # white noise spreads power evenly: the 4 kHz-wide band beats the ~1 kHz-wide one
    assert band_power(white, 20, 1000) < band_power(white, 4000, 8000)


def test_brown_noise_is_darker_than_pink() -> None:
    rng = np.random.default_rng(2)
    pink, brown = colored_noise(SR, rng, "pink"), colored_noise(SR, rng, "brown")
    ratio = [band_power(x, 20, 1000) / band_power(x, 4000, 8000) for x in (pink, brown)]
    assert ratio[1] > 10 * ratio[0]


def test_colored_noise_has_unit_power_and_no_offset() -> None:
    noise = colored_noise(4000, np.random.default_rng(3), "brown")
    assert np.mean(noise**2) == pytest.approx(1.0)
    assert abs(noise.mean()) < 1e-9


def test_add_noise_rejects_silence_and_bad_input() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="silent"):
        add_noise(np.zeros(100, np.float32), 10.0, rng)
    with pytest.raises(ValueError, match="1-D"):
        add_noise(np.ones((2, 100), np.float32), 10.0, rng)
    with pytest.raises(ValueError, match="color"):
        add_noise(tone(), 10.0, rng, "purple")


def test_impulse_response_decays_60_db_over_rt60() -> None:
    h = impulse_response(0.5, np.random.default_rng(0), SR, direct_ratio=2.0)
    assert len(h) == SR // 2 and h[0] == 1.0
    assert np.sum(h[1:] ** 2) == pytest.approx(0.5)  # tail energy = direct / ratio
    # energy in the first and last 50 ms windows of the tail: ~60 dB apart
    window = SR // 20
    first, last = np.sum(h[1 : 1 + window] ** 2), np.sum(h[-window:] ** 2)
    assert 50 < 10 * np.log10(first / last) < 70


def test_reverb_lengthens_decay_and_keeps_length_and_peak() -> None:
    click = np.zeros(SR // 2, np.float32)
    click[10] = 0.8
    wet = room_reverb(click, 0.6, np.random.default_rng(0))
    quarter = len(click) // 4
    assert wet.shape == click.shape and wet.dtype == np.float32
    assert np.sum(click[-quarter:] ** 2) == 0
    assert np.sum(wet[-quarter:] ** 2) > 1e-6
    assert np.abs(wet).max() == pytest.approx(0.8)


def test_longer_rt60_leaves_more_late_energy() -> None:
    click = np.zeros(SR // 2, np.float32)
    click[0] = 1.0
    late = [
        float(np.sum(room_reverb(click, rt60, np.random.default_rng(0))[SR // 4 :] ** 2))
        for rt60 in (0.2, 0.8)
    ]
    assert late[1] > 10 * late[0]


def test_seeded_functions_reproduce() -> None:
    wave = tone()
    for make in (
        lambda rng: add_noise(wave, 5.0, rng, "pink"),
        lambda rng: room_reverb(wave, 0.3, rng),
        lambda rng: Scenario(snr_db=5.0, color="brown", rt60=0.3).apply(wave, rng),
    ):
        a = make(np.random.default_rng(11))
        b = make(np.random.default_rng(11))
        c = make(np.random.default_rng(12))
        assert np.array_equal(a, b)
        assert not np.array_equal(a, c)


def test_scenario_applies_room_then_noise() -> None:
    wave = tone()
    scenario = Scenario(snr_db=10.0, color="white", rt60=0.3)
    out = scenario.apply(wave, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    room = room_reverb(wave, 0.3, rng)
    assert np.array_equal(out, add_noise(room, 10.0, rng, "white"))
    assert abs(snr_db(room, out) - 10.0) < 0.01


def test_empty_scenario_returns_a_copy() -> None:
    wave = tone()
    out = Scenario().apply(wave, np.random.default_rng(0))
    assert np.array_equal(out, wave) and out is not wave


def test_scenario_validates_its_fields() -> None:
    with pytest.raises(ValueError, match="color"):
        Scenario(color="grey")
    with pytest.raises(ValueError, match="rt60"):
        Scenario(rt60=0.0)
