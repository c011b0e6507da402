import numpy as np
import pytest
import torch
from torch.testing import assert_close

from polymodal.data.synth.noises import ENVIRONMENTAL_NOISES, environmental_noise


@pytest.mark.parametrize("kind", ENVIRONMENTAL_NOISES)
def test_environmental_noise_has_unit_power_and_is_seeded(kind):
    a = environmental_noise(kind, 3, 4000, np.random.default_rng(0))
    assert a.shape == (3, 4000) and a.dtype == np.float32
    assert_close(torch.from_numpy((a**2).mean(axis=1)), torch.ones(3), rtol=1e-4, atol=0)
    assert np.array_equal(a, environmental_noise(kind, 3, 4000, np.random.default_rng(0)))


@pytest.mark.parametrize(("kind", "low_hz", "high_hz"), [("traffic", 0, 300), ("rain", 1000, 8000)])
def test_noise_power_sits_in_its_band(kind, low_hz, high_hz):
    x = environmental_noise(kind, 4, 16000, np.random.default_rng(0))
    power = np.abs(np.fft.rfft(x, axis=1)) ** 2
    freqs = np.fft.rfftfreq(16000, 1 / 16000)
    band = (freqs >= low_hz) & (freqs <= high_hz)
    assert power[:, band].sum() / power.sum() > 0.8
