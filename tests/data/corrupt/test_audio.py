import pytest
import torch
from torch.testing import assert_close

from polymodal.data.corrupt import audio_noise_level, corrupt_waves


def test_audio_gaussian_noise_has_the_severity_sigma():
    clean = torch.zeros(4, 16000)
    noisy = corrupt_waves(clean, "gaussian_noise", 5, seed=0)
    assert abs(float(noisy.std()) - 0.38) < 0.004


@pytest.mark.parametrize("severity", [1, 5])
def test_overlay_rms_is_the_reference_raised_by_the_severity_gain(severity):
    clean = torch.zeros(3, 8000)
    noisy = corrupt_waves(clean, "wind", severity, seed=1)
    gain_db = {1: 1.0, 5: 8.0}[severity]
    expected = torch.full((3,), 0.1 * 10 ** (gain_db / 20))
    assert_close(noisy.pow(2).mean(dim=1).sqrt(), expected, rtol=1e-4, atol=0)


def test_audio_severities_share_one_noise_draw():
    clean = torch.zeros(2, 4000)
    low, high = (corrupt_waves(clean, "rain", s, seed=7) for s in (1, 5))
    ratio = audio_noise_level("rain", 5) / audio_noise_level("rain", 1)
    assert_close(high, low * ratio, rtol=1e-5, atol=1e-7)


def test_corrupt_waves_leaves_clean_waves_at_severity_zero():
    waves = torch.randn(2, 100)
    assert torch.equal(corrupt_waves(waves, "thunder", 0), waves)
