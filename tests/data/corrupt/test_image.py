import numpy as np
import pytest
import torch
from torch.testing import assert_close

from polymodal.data.corrupt import (
    IMAGE_CORRUPTIONS,
    corrupt_images,
    motion_blur_planes,
    plasma_fractal,
)

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
