"""Tests of the listening scenarios: each building block on hand-checked signals."""

from __future__ import annotations

import numpy as np
import pytest

from polymodal.data.synth.scenarios import (
    SCENARIOS,
    SEVERITIES,
    band_limit,
    codec,
    compress,
    degrade,
    drop_packets,
    mu_law,
    music_bed,
)
from polymodal.errors import ConfigError, DataError

SR = 16_000


def tone(seconds: float = 0.5, hz: float = 440.0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return amplitude * np.sin(2 * np.pi * hz * t)


def band_power(x: np.ndarray, lo: float, hi: float) -> float:
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / SR)
    return float(spectrum[(f >= lo) & (f < hi)].sum())


def speechlike(seed: int = 0, seconds: float = 1.0) -> np.ndarray:
    """Pink-ish noise bursts at a syllable rate: enough structure for every scenario."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    envelope = np.abs(np.sin(2 * np.pi * 4 * np.arange(n) / SR))
    return 0.3 * envelope * rng.standard_normal(n)


def test_mu_law_round_trip_is_close_and_on_256_levels():
    x = np.linspace(-1, 1, 5001)
    y = mu_law(x)
    assert np.unique(y).size <= 255  # 2 * 127 + 1 levels
    # Near full scale one code step spans 256 ln(256) / 255 / 127 = 0.044; error <= half.
    assert np.max(np.abs(y - x)) <= 0.0220
    small = mu_law(np.array([0.001]))[0]
    assert abs(small - 0.001) < 2e-4  # fine steps near zero: the point of μ-law


def test_band_limit_keeps_the_phone_band_and_cuts_outside():
    x = tone(1.0, 100) + tone(1.0, 1000) + tone(1.0, 6000)
    y = band_limit(x, 300, 3400)
    assert band_power(y, 900, 1100) > 0.8 * band_power(x, 900, 1100)
    assert band_power(y, 90, 110) < 0.01 * band_power(x, 90, 110)
    assert band_power(y, 5900, 6100) < 0.01 * band_power(x, 5900, 6100)


def test_drop_packets_silences_whole_20ms_packets_at_the_rate():
    x = np.ones(SR * 10)
    y = drop_packets(x, 0.2, np.random.default_rng(0))
    packets = y.reshape(-1, 320)
    assert set(np.unique(packets.min(1) == packets.max(1))) == {True}  # all or nothing
    assert abs((packets[:, 0] == 0).mean() - 0.2) < 0.05


def test_compress_reduces_the_loud_part_relative_to_the_quiet():
    x = np.concatenate([tone(0.5, amplitude=0.05), tone(0.5, amplitude=0.8)])
    y = compress(x, threshold_db=-20, ratio=4)
    before = np.abs(x[-2000:]).max() / np.abs(x[2000:4000]).max()
    after = np.abs(y[-2000:]).max() / np.abs(y[2000:4000]).max()
    assert before == pytest.approx(16, rel=0.01)
    assert after < before / 2
    assert np.abs(y).max() == pytest.approx(0.8)  # make-up gain to the input peak


def test_codec_cuts_the_band_above_the_cutoff():
    x = tone(1.0, 1000) + tone(1.0, 6000)
    y = codec(x, cutoff_hz=3000, floor_db=60, step_db=1.5)
    assert y.shape == x.shape
    assert band_power(y, 5900, 6100) < 1e-3 * band_power(x, 5900, 6100)
    assert band_power(y, 900, 1100) > 0.8 * band_power(x, 900, 1100)


def test_music_bed_has_unit_power_and_follows_its_seed():
    a = music_bed(SR, np.random.default_rng(1))
    assert np.mean(a**2) == pytest.approx(1.0)
    assert np.array_equal(a, music_bed(SR, np.random.default_rng(1)))
    assert not np.array_equal(a, music_bed(SR, np.random.default_rng(2)))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_scenario_is_seeded_shaped_and_worse_at_higher_severity(scenario):
    clean = speechlike()
    others = [speechlike(seed) for seed in range(1, 9)]

    def run(severity: int, seed: int = 0) -> np.ndarray:
        return degrade(clean, scenario, severity, np.random.default_rng(seed), others)

    mild, harsh = run(1), run(5)
    assert mild.shape == clean.shape and mild.dtype == np.float32
    assert np.abs(mild).max() == pytest.approx(0.9, rel=1e-5)
    assert np.array_equal(mild, run(1))
    assert not np.array_equal(mild, run(1, seed=1))

    def fidelity(x: np.ndarray) -> float:  # correlation with the clean speech
        return float(np.corrcoef(x, clean)[0, 1])

    assert fidelity(harsh) < fidelity(mild)


def test_bad_inputs_get_one_line_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(DataError, match="silent"):
        degrade(np.zeros(100), "street", 1, rng)
    with pytest.raises(DataError, match="non-empty 1-D"):
        degrade(np.zeros((2, 100)), "street", 1, rng)
    with pytest.raises(ConfigError, match="severity must be one of"):
        degrade(speechlike(), "street", 6, rng)
    with pytest.raises(ConfigError, match="scenario must be one of"):
        degrade(speechlike(), "airport", 1, rng)
    with pytest.raises(ConfigError, match="needs 7 other voices"):
        degrade(speechlike(), "meeting", 5, rng, others=[speechlike()])
    assert SEVERITIES == (1, 2, 3, 4, 5)
