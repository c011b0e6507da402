"""The 15 ImageNet-C image corruptions (values and adaptations: the package doc)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import Tensor

from polymodal.data.corrupt.spec import IMAGE_SETTINGS, check_corruption


def _gaussian(x: np.ndarray, sigma: float, mode: str = "nearest") -> np.ndarray:
    """Gaussian blur of (N, H, W) over H and W only."""
    return ndimage.gaussian_filter(x, sigma=(0, sigma, sigma), mode=mode)


def _per_plane(images: np.ndarray, fn: Any) -> np.ndarray:
    """Apply ``fn`` to (N*C, H, W) planes of (N, C, H, W) images."""
    n, c, h, w = images.shape
    return fn(images.reshape(n * c, h, w)).reshape(n, c, h, w)


def _grey(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, 1, H, W) luminance (ITU-R 601 weights for colour)."""
    if images.shape[1] == 1:
        return images
    return np.tensordot(np.array([0.299, 0.587, 0.114]), images, axes=([0], [1]))[:, None]


def plasma_fractal(n: int, size: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` diamond-square height maps on a ``size`` × ``size`` torus, scaled to [0, 1].

    Each halving of the step adds uniform noise whose amplitude falls by ``decay**2``
    (ImageNet-C's fog texture); ``size`` must be a power of two.

    Returns:
        (n, size, size) float64.
    """
    if size & (size - 1):
        raise ValueError(f"plasma size must be a power of two, got {size}")
    grid = np.zeros((n, size, size))
    step, amplitude = size, 100.0**2
    while step >= 2:
        half = step // 2
        corners = grid[:, ::step, ::step]
        # square step: a cell's centre is the mean of its four corners plus noise
        around = corners + np.roll(corners, -1, axis=1)
        around = around + np.roll(around, -1, axis=2)
        grid[:, half::step, half::step] = around / 4 + rng.uniform(-1, 1, around.shape) * amplitude
        centres = grid[:, half::step, half::step]
        # diamond step: an edge midpoint is the mean of its two corners and two centres
        row_mid = corners + np.roll(corners, -1, axis=2) + centres + np.roll(centres, 1, axis=1)
        grid[:, ::step, half::step] = row_mid / 4 + rng.uniform(-1, 1, row_mid.shape) * amplitude
        col_mid = corners + np.roll(corners, -1, axis=1) + centres + np.roll(centres, 1, axis=2)
        grid[:, half::step, ::step] = col_mid / 4 + rng.uniform(-1, 1, col_mid.shape) * amplitude
        step = half
        amplitude /= decay**2
    grid -= grid.min(axis=(1, 2), keepdims=True)
    return grid / np.maximum(grid.max(axis=(1, 2), keepdims=True), 1e-12)


def frost_texture(n: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Procedural frost: bright ridges where smooth noise crosses zero, plus fine grain.

    ``(1 - |z|)**4`` of unit-variance smooth noise ``z`` draws a network of thin bright
    lines (ice-crystal edges); a diamond-square haze and fine grain fill the rest.

    Returns:
        (n, h, w) float64 in [0, 1], mean about 0.4.
    """
    side = 1 << max(h, w, 2).__sub__(1).bit_length()  # next power of two
    smooth = _gaussian(rng.standard_normal((n, h, w)), 1.2, mode="wrap")
    smooth /= smooth.std(axis=(1, 2), keepdims=True)
    ridges = np.clip(1 - np.abs(smooth), 0, 1) ** 4
    haze = plasma_fractal(n, side, 2.0, rng)[:, :h, :w]
    grain = _gaussian(rng.standard_normal((n, h, w)), 0.5)
    return np.clip(0.15 + 0.7 * ridges + 0.3 * haze + 0.05 * grain, 0, 1)


def _clipped_zoom(x: np.ndarray, factor: float) -> np.ndarray:
    """Zoom (N, H, W) about the centre by ``factor`` >= 1, keeping H × W (bilinear)."""
    h, w = x.shape[1:]
    ch, cw = int(np.ceil(h / factor)), int(np.ceil(w / factor))
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = torch.from_numpy(np.ascontiguousarray(x[:, None, top : top + ch, left : left + cw]))
    # Bilinear with corners aligned is scipy.ndimage.zoom(order=1), many times faster.
    size = (round(ch * factor), round(cw * factor))
    zoomed = F.interpolate(crop, size=size, mode="bilinear", align_corners=True)[:, 0].numpy()
    trim_h, trim_w = (zoomed.shape[1] - h) // 2, (zoomed.shape[2] - w) // 2
    return zoomed[:, trim_h : trim_h + h, trim_w : trim_w + w]


def motion_blur_planes(
    x: np.ndarray, radius: float, sigma: float, angles: np.ndarray
) -> np.ndarray:
    """ImageMagick's motion blur of (N, H, W) planes, one angle (degrees) per plane.

    Output pixel p averages the pixels p + i·(cos a, sin a), i = 0 … 2·ceil(radius),
    with weights exp(-i² / 2σ²) (a one-sided Gaussian streak); edges are replicated.
    """
    n, h, w = x.shape
    taps = np.arange(2 * int(np.ceil(radius)) + 1)
    weights = np.exp(-(taps**2) / (2 * sigma**2))
    weights /= weights.sum()
    rad = np.deg2rad(angles)[:, None, None]
    rows, cols = np.arange(h)[None, :, None], np.arange(w)[None, None, :]
    planes = np.arange(n)[:, None, None]
    out = np.zeros_like(x)
    for i, weight in zip(taps, weights, strict=True):
        r = np.clip(rows + np.rint(i * np.sin(rad)).astype(int), 0, h - 1)
        c = np.clip(cols + np.rint(i * np.cos(rad)).astype(int), 0, w - 1)
        out += weight * x[planes, r, c]
    return out


def _disk_kernel(radius: float, alias_sigma: float) -> np.ndarray:
    """ImageNet-C's defocus kernel: a normalised disk smoothed by a 3×3 Gaussian, trimmed."""
    span = np.arange(-8, 9) if radius <= 8 else np.arange(-int(radius), int(radius) + 1)
    xx, yy = np.meshgrid(span, span)
    disk = (xx**2 + yy**2 <= radius**2).astype(np.float64)
    disk /= disk.sum()
    g = np.exp(-(np.array([-1.0, 0.0, 1.0]) ** 2) / (2 * alias_sigma**2))
    g /= g.sum()
    kernel = ndimage.correlate(disk, np.outer(g, g), mode="mirror")
    rows, cols = np.nonzero(kernel > 1e-12)
    return kernel[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


# ---------------------------------------------------------------- image corruptions


def _gaussian_noise(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    return x + rng.normal(0.0, c, x.shape)


def _shot_noise(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    return rng.poisson(x * c) / c


def _impulse_noise(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    hit = rng.random(x.shape) < c
    salt = rng.random(x.shape) < 0.5
    return np.where(hit, salt.astype(x.dtype), x)


def _defocus_blur(x: np.ndarray, c: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    kernel = _disk_kernel(c[0], c[1])
    return _per_plane(x, lambda p: ndimage.correlate(p, kernel[None], mode="mirror"))


def _glass_blur(x: np.ndarray, c: tuple[float, int, int], rng: np.random.Generator) -> np.ndarray:
    sigma, shift, passes = c
    n, _, h, w = x.shape
    y = np.moveaxis(_per_plane(x, lambda p: _gaussian(p, sigma)), 1, -1).copy()  # (N, H, W, C)
    batch = np.arange(n)
    # Locally shuffle pixels: bottom-right to top-left, swap with a random neighbour.
    for _ in range(passes):
        for row in range(h - shift, shift, -1):
            for col in range(w - shift, shift, -1):
                dy, dx = rng.integers(-shift, shift, size=(2, n))
                other = y[batch, row + dy, col + dx].copy()
                y[batch, row + dy, col + dx] = y[batch, row, col]
                y[batch, row, col] = other
    return _per_plane(np.moveaxis(y, -1, 1), lambda p: _gaussian(p, sigma))


def _motion_blur(x: np.ndarray, c: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    angles = np.repeat(rng.uniform(-45, 45, x.shape[0]), x.shape[1])
    return _per_plane(x, lambda p: motion_blur_planes(p, c[0], c[1], angles))


def _zoom_blur(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    factors = np.arange(1, c, 0.01)
    total = x.copy()
    for factor in factors:
        total += _per_plane(x, lambda p, f=factor: _clipped_zoom(p, f))
    return total / (len(factors) + 1)


def _snow(x: np.ndarray, c: tuple[float, ...], rng: np.random.Generator) -> np.ndarray:
    loc, scale, zoom, threshold, radius, sigma, keep = c
    n, _, h, w = x.shape
    flakes = _clipped_zoom(rng.normal(loc, scale, (n, h, w)), zoom)
    flakes = np.clip(np.where(flakes < threshold, 0.0, flakes), 0, 1)
    angles = np.asarray(rng.uniform(-135, -45, n))
    flakes = motion_blur_planes(flakes, radius, sigma, angles)[:, None]
    x = keep * x + (1 - keep) * np.maximum(x, _grey(x) * 1.5 + 0.5)
    return x + flakes + flakes[:, :, ::-1, ::-1]


def _frost(x: np.ndarray, c: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    n, _, h, w = x.shape
    return c[0] * x + c[1] * frost_texture(n, h, w, rng)[:, None]


def _fog(x: np.ndarray, c: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    n, _, h, w = x.shape
    side = 1 << max(h, w, 2).__sub__(1).bit_length()
    peak = x.max(axis=(1, 2, 3), keepdims=True)
    fogged = x + c[0] * plasma_fractal(n, side, c[1], rng)[:, None, :h, :w]
    return fogged * peak / (peak + c[0])


def _brightness(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    # Raising V in HSV scales a pixel's channels by V' / V (grey: simply x + c).
    value = x.max(axis=1, keepdims=True)
    lifted = np.clip(value + c, 0, 1)
    scale = np.divide(lifted, value, out=np.zeros_like(value), where=value > 0)
    return np.where(value > 0, x * scale, lifted)


def _contrast(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    mean = x.mean(axis=(2, 3), keepdims=True)
    return (x - mean) * c + mean


def _elastic(x: np.ndarray, c: tuple[float, float, float], rng: np.random.Generator) -> np.ndarray:
    n, channels, h, w = x.shape
    scale, smooth, jitter = (v * min(h, w) for v in c)
    centre = np.array([h // 2, w // 2], dtype=np.float64)
    half = min(h, w) // 3
    src = np.array([centre + half, [centre[0] + half, centre[1] - half], centre - half])
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    out = np.empty_like(x)
    for i in range(n):
        # Random affine: three anchor points move by up to ±jitter; warp maps output to input.
        dst = src + rng.uniform(-jitter, jitter, src.shape)
        solution = np.linalg.solve(np.c_[dst, np.ones(3)], src)  # (3, 2): [A^T; t]
        matrix, offset = solution[:2].T, solution[2]
        dy = _gaussian(rng.uniform(-1, 1, (1, h, w)), smooth, "reflect")[0] * scale
        dx = _gaussian(rng.uniform(-1, 1, (1, h, w)), smooth, "reflect")[0] * scale
        for ch in range(channels):
            warped = ndimage.affine_transform(x[i, ch], matrix, offset, order=1, mode="mirror")
            out[i, ch] = ndimage.map_coordinates(
                warped, [rows + dy, cols + dx], order=1, mode="reflect"
            )
    return out


def _pixelate(x: np.ndarray, c: float, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image

    n, channels, h, w = x.shape
    small = (int(w * c), int(h * c))
    out = np.empty_like(x)
    for i in range(n):
        for ch in range(channels):
            plane = Image.fromarray(x[i, ch].astype(np.float32), mode="F")
            plane = plane.resize(small, Image.Resampling.BOX).resize((w, h), Image.Resampling.BOX)
            out[i, ch] = np.asarray(plane)
    return out


def _jpeg(x: np.ndarray, c: int, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image

    out = np.empty_like(x)
    pixels = np.rint(np.moveaxis(x, 1, -1) * 255).astype(np.uint8)  # (N, H, W, C)
    for i, image in enumerate(pixels):
        buffer = io.BytesIO()
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
            buffer, "JPEG", quality=c
        )
        decoded = np.asarray(Image.open(buffer), dtype=np.float64) / 255
        out[i] = decoded[None] if decoded.ndim == 2 else np.moveaxis(decoded, -1, 0)
    return out


_IMAGE_FUNCTIONS: dict[str, Callable[[np.ndarray, Any, np.random.Generator], np.ndarray]] = {
    "gaussian_noise": _gaussian_noise,
    "shot_noise": _shot_noise,
    "impulse_noise": _impulse_noise,
    "defocus_blur": _defocus_blur,
    "glass_blur": _glass_blur,
    "motion_blur": _motion_blur,
    "zoom_blur": _zoom_blur,
    "snow": _snow,
    "frost": _frost,
    "fog": _fog,
    "brightness": _brightness,
    "contrast": _contrast,
    "elastic": _elastic,
    "pixelate": _pixelate,
    "jpeg": _jpeg,
}


def corrupt_images(images: Tensor, name: str, severity: int, seed: int = 0) -> Tensor:
    """Apply one ImageNet-C corruption (see the module doc) to a batch of images.

    Args:
        images: (N, C, H, W) with C in {1, 3}, values in [0, 1] (others are clipped).
        name: one of :data:`IMAGE_CORRUPTIONS`.
        severity: 1-5, or 0 for the clean images (returned unchanged, as a copy).
        seed: seed of every random draw; the same seed gives the same output.

    Returns:
        (N, C, H, W) float32 in [0, 1].

    Raises:
        ConfigError: unknown name or severity.
        ValueError: images that are not (N, C, H, W) with C in {1, 3}.
    """
    check_corruption("image", name, severity)
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be (N, C, H, W) with C = 1 or 3, got {tuple(images.shape)}")
    if severity == 0:
        return images.float().clone()
    x = np.clip(images.detach().cpu().double().numpy(), 0, 1)
    setting = IMAGE_SETTINGS[name][severity - 1]
    out = _IMAGE_FUNCTIONS[name](x, setting, np.random.default_rng(seed))
    return torch.from_numpy(np.clip(out, 0, 1).astype(np.float32))
