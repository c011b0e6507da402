import math

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from polymodal.data.corrupt import (
    AUDIO_CORRUPTIONS,
    IMAGE_CORRUPTIONS,
    Corruption,
    audio_noise_level,
    corrupt_images,
    corrupt_waves,
    motion_blur_planes,
    plasma_fractal,
)
from polymodal.data.synth.noises import ENVIRONMENTAL_NOISES, environmental_noise
from polymodal.errors import ConfigError

GREY = torch.full((1, 1, 28, 28), 0.5)


def digits(n: int = 2, seed: int = 0) -> torch.Tensor:
    """Smooth blobs in [0, 1], like upscaled digits."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(n, 1, 7, 7, generator=g)
    return torch.nn.functional.interpolate(small, size=(28, 28), mode="bilinear")


@pytest.mark.parametrize("name", IMAGE_CORRUPTIONS)
def test_every_image_corruption_is_seeded_and_stays_in_range(name):
    x = digits()
    first = corrupt_images(x, name, 5, seed=3)
    assert first.shape == x.shape and first.dtype == torch.float32
    assert float(first.min()) >= 0.0 and float(first.max()) <= 1.0
    assert torch.equal(first, corrupt_images(x, name, 5, seed=3))
    assert not torch.equal(first, x)


@pytest.mark.parametrize(
    "name", ["defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "pixelate", "elastic"]
)
def test_blurs_and_warps_leave_a_uniform_image_unchanged(name):
    assert_close(corrupt_images(GREY, name, 5, seed=0), GREY, atol=1e-6, rtol=0)


def test_severity_zero_returns_the_clean_images():
    x = digits()
    assert torch.equal(corrupt_images(x, "fog", 0), x)


def test_brightness_adds_to_grey_values_and_clips():
    x = torch.tensor([[[[0.2, 0.7]]]])
    assert_close(corrupt_images(x, "brightness", 3), torch.tensor([[[[0.5, 1.0]]]]))


def test_brightness_scales_colour_channels_by_the_value_ratio():
    x = torch.tensor([0.2, 0.4, 0.0]).view(1, 3, 1, 1)  # V = 0.4 -> 0.5 at severity 1
    assert_close(corrupt_images(x, "brightness", 1).flatten(), torch.tensor([0.25, 0.5, 0.0]))


def test_contrast_pulls_pixels_towards_the_image_mean():
    x = torch.tensor([[[[0.0, 1.0]]]])  # mean 0.5, factor 0.4 at severity 1
    assert_close(corrupt_images(x, "contrast", 1), torch.tensor([[[[0.3, 0.7]]]]))


def test_gaussian_noise_has_the_severity_sigma():
    noisy = corrupt_images(torch.full((4, 1, 28, 28), 0.5), "gaussian_noise", 1, seed=0)
    assert abs(float((noisy - 0.5).std()) - 0.08) < 0.004


def test_impulse_noise_sets_the_severity_share_of_pixels_to_black_or_white():
    noisy = corrupt_images(torch.full((8, 1, 28, 28), 0.5), "impulse_noise", 5, seed=0)
    hit = noisy != 0.5
    assert abs(float(hit.float().mean()) - 0.27) < 0.02
    assert set(noisy[hit].unique().tolist()) == {0.0, 1.0}


def test_jpeg_output_is_eight_bit():
    out = corrupt_images(digits(), "jpeg", 5) * 255
    assert_close(out, out.round(), atol=1e-4, rtol=0)


def test_motion_blur_streaks_an_impulse_along_the_angle():
    x = np.zeros((1, 5, 5))
    x[0, 2, 3] = 1.0
    out = motion_blur_planes(x, radius=1, sigma=1.0, angles=np.array([0.0]))
    weights = np.exp(-(np.arange(3) ** 2) / 2)
    weights /= weights.sum()
    # out(r, c) = sum_i w_i x(r, c + i): the impulse lands at columns 3, 2, 1 of row 2.
    assert_close(torch.from_numpy(out[0, 2, 1:4]), torch.from_numpy(weights[::-1].copy()))
    assert out[0].sum() == pytest.approx(1.0)


def test_plasma_fractal_spans_zero_to_one_and_is_seeded():
    a = plasma_fractal(2, 32, 2.0, np.random.default_rng(0))
    assert a.shape == (2, 32, 32)
    assert a.min() == 0.0 and a.max() == 1.0
    assert np.array_equal(a, plasma_fractal(2, 32, 2.0, np.random.default_rng(0)))


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


def test_corruption_parses_modality_name_and_severity():
    assert Corruption.parse("audio:wind:5") == Corruption("audio", "wind", 5)
    assert str(Corruption("image", "fog", 2)) == "image:fog:2"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("audio:wind", "MODALITY:NAME:SEVERITY"),
        ("video:fog:1", "'image' and 'audio'"),
        ("audio:fog:1", "unknown audio corruption 'fog'"),
        ("image:fog:6", "severity must be 0"),
    ],
)
def test_bad_corruptions_are_named(text, message):
    with pytest.raises(ConfigError, match=message):
        Corruption.parse(text)


def test_the_suites_have_fifteen_image_and_six_audio_corruptions():
    assert len(IMAGE_CORRUPTIONS) == 15 and len(AUDIO_CORRUPTIONS) == 6
    assert math.isclose(audio_noise_level("gaussian_noise", 3), 0.18)


# ---------------------------------------------------------------- data sets

TINY = {"train": 30, "val": 20, "test": 20, "voices": 20, "image_noise": 0.0, "audio_snr_db": 10.0}


@pytest.fixture
def home(tmp_path, monkeypatch):
    pytest.importorskip("espeakng_loader", reason="AV-Digits needs espeakng-loader")
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))
    return tmp_path


def test_av_digits_waveforms_reproduce_the_stored_audio_features(home):
    from polymodal.data.synth.av_digits import (
        clip_features,
        load_av_digits,
        load_av_digits_waveforms,
    )

    stored = load_av_digits("test", **TINY).tensors
    waves = load_av_digits_waveforms("test", **TINY)
    assert waves["audio"].shape == (20, 16000)
    assert torch.equal(waves["label"], stored["label"])
    assert torch.equal(clip_features(waves["audio"].numpy()).half(), stored["audio"])


def test_av_digits_c_corrupts_only_the_named_modality(home):
    from polymodal.data.corrupt import av_digits_c

    clean = av_digits_c(None, **TINY).tensors
    audio = av_digits_c("audio:crowd:5", seed=0, indices=[0, 3], **TINY).tensors
    image = av_digits_c("image:fog:5", seed=0, **TINY).tensors
    assert torch.equal(audio["image"], clean["image"][[0, 3]])
    assert not torch.allclose(audio["audio"], clean["audio"][[0, 3]].float())
    assert torch.equal(image["audio"], clean["audio"])
    assert not torch.allclose(image["image"], clean["image"].float())


def test_av_mnist_c_corrupts_audio_on_the_waveform(shared_data):
    from polymodal.data.corrupt import av_mnist_c
    from polymodal.data.real.av_mnist import AVMNIST

    folders = (shared_data / "mnist-t10k", shared_data / "fsdd")
    clean = av_mnist_c(*folders, None)
    noisy = av_mnist_c(*folders, "audio:gaussian_noise:3", seed=0)
    reference = AVMNIST(*folders, split="test")
    assert len(clean) == len(reference)
    assert_close(clean[5]["audio"], reference[5]["audio"])
    assert torch.equal(noisy[5]["image"], clean[5]["image"])
    assert not torch.allclose(noisy[5]["audio"], clean[5]["audio"])
