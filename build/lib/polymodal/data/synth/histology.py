"""Synthetic H&E histology tiles: pink stroma, purple nuclei, gland-like structures.

Tiles are drawn in stain space and turned into RGB by the Beer-Lambert law, as
real brightfield slides form: every pixel holds a haematoxylin and an eosin
concentration, their optical densities add up along the stain vectors of
Ruifrok & Johnston (2001), and the transmitted light is ``exp(-OD)``. Colour
variation between sites and slides is then a perturbation of the stain vectors
and strengths, as it is in real scans.

What a tile shows is set by its :class:`TileParams`:

* tumour tiles hold epithelial nuclei (ellipses whose size, elongation and
  staining vary with ``pleomorphism``) at a density around ``density``, on a pink
  cytoplasm, and, with ``gland``, a gland: a white lumen lined by a ring of small,
  regular nuclei;
* stroma tiles hold fibrous pink tissue with sparse lymphocytes (small, round,
  dark) and fibroblasts (thin, elongated);
* every tile may be blurred (out of focus) and carries a little sensor noise.

All randomness comes from one ``numpy.random.Generator``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

HEMATOXYLIN = (0.650, 0.704, 0.286)
"""Optical density of haematoxylin per unit concentration in (R, G, B) (Ruifrok & Johnston)."""

EOSIN = (0.072, 0.990, 0.105)
"""Optical density of eosin per unit concentration in (R, G, B) (Ruifrok & Johnston)."""

OD_SCALE = 2.0
"""Optical density of a unit concentration: a nucleus (haematoxylin 1) renders dark purple."""

_NUCLEUS_FIELDS = 6  # cx, cy, semi-axis a, semi-axis b, angle, stain intensity


@dataclass
class TileParams:
    """What each of T tiles shows; every field is a length-T array.

    Attributes:
        tumour: True for a tumour tile, False for a stroma tile.
        radius: mean nuclear radius in pixels.
        density: expected number of tumour nuclei in the tile.
        pleomorphism: spread of nuclear size, shape and staining (0 = uniform).
        gland: whether a tumour tile holds a gland (lumen ringed by nuclei).
        stain: (T, 2, 3) optical-density vectors of haematoxylin and eosin.
        strength: (T, 2) concentration multipliers of the two stains.
        blur: Gaussian blur sigma in pixels (0 = sharp).
    """

    tumour: np.ndarray
    radius: np.ndarray
    density: np.ndarray
    pleomorphism: np.ndarray
    gland: np.ndarray
    stain: np.ndarray
    strength: np.ndarray
    blur: np.ndarray

    def __len__(self) -> int:
        return len(self.tumour)

    def select(self, index: slice) -> TileParams:
        """The parameters of tiles ``index`` (a slice)."""
        return TileParams(**{k: v[index] for k, v in vars(self).items()})


def stain_matrix(rng: np.random.Generator, shift: float, n: int) -> np.ndarray:
    """Perturbed H&E stain vectors: ``n`` matrices (2, 3) with unit-norm rows.

    Args:
        rng: source of randomness.
        shift: size of the perturbation (0 = the reference vectors exactly).
        n: how many matrices.
    """
    base = np.array([HEMATOXYLIN, EOSIN])
    vectors = base[None] + shift * 0.08 * rng.standard_normal((n, 2, 3))
    vectors = np.clip(vectors, 0.02, None)
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def _tumour_nuclei(
    rng: np.random.Generator, size: int, radius: float, density: float, pleo: float, gland: bool
) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Nuclei of one tumour tile, (k, 6), and its lumen (cx, cy, R; R = 0 when none)."""
    n = int(rng.poisson(density))
    r = radius * np.exp(rng.normal(0.0, 0.06 + 0.6 * pleo, n))
    stretch = 1.0 + np.abs(rng.normal(0.0, 0.06 + pleo, n))
    nuclei = np.stack(
        [
            rng.uniform(-2, size + 2, n),
            rng.uniform(-2, size + 2, n),
            r * np.sqrt(stretch),
            r / np.sqrt(stretch),
            rng.uniform(0, math.pi, n),
            np.clip(0.9 * np.exp(rng.normal(0.0, 0.05 + 0.5 * pleo, n)), 0.4, 1.6),
        ],
        axis=1,
    )
    if not gland:
        return nuclei, (0.0, 0.0, 0.0)
    cx, cy = size / 2 + rng.uniform(-3, 3, 2)
    lumen = rng.uniform(0.16, 0.26) * size
    outside = np.hypot(nuclei[:, 0] - cx, nuclei[:, 1] - cy) > lumen + 3.0
    # The lining: small, regular nuclei side by side around the lumen, long axis tangent.
    count = max(6, int(2 * math.pi * (lumen + 1.3) / 3.0))
    angle = np.linspace(0, 2 * math.pi, count, endpoint=False) + rng.uniform(0, 2 * math.pi)
    lining = np.stack(
        [
            cx + (lumen + 1.3) * np.cos(angle),
            cy + (lumen + 1.3) * np.sin(angle),
            np.full(count, 1.5),
            np.full(count, 1.0),
            angle + math.pi / 2,
            np.full(count, 0.85),
        ],
        axis=1,
    )
    return np.concatenate([nuclei[outside], lining]), (float(cx), float(cy), float(lumen))


def _stroma_nuclei(rng: np.random.Generator, size: int, fibre_angle: float) -> np.ndarray:
    """Lymphocytes (small, round, dark) and fibroblasts (thin, along the fibres), (k, 6)."""
    n_lymph, n_fibro = int(rng.poisson(4)), int(rng.poisson(3))
    n = n_lymph + n_fibro
    is_fibro = np.arange(n) >= n_lymph
    return np.stack(
        [
            rng.uniform(0, size, n),
            rng.uniform(0, size, n),
            np.where(is_fibro, 2.6, 1.1),
            np.where(is_fibro, 0.6, 1.1),
            np.where(is_fibro, fibre_angle + rng.normal(0, 0.15, n), 0.0),
            np.where(is_fibro, 0.8, 1.25),
        ],
        axis=1,
    )


def _smooth_noise(rng: np.random.Generator, n: int, size: int, cells: int = 6) -> Tensor:
    """(n, size, size) smooth random fields with unit-ish amplitude."""
    coarse = torch.from_numpy(rng.standard_normal((n, 1, cells, cells))).float()
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[:, 0]


_HALF_WINDOW = 7
"""Nuclei are drawn in a (15, 15) window around their centre; semi-axes are capped to fit."""


def _rasterise(nuclei: Tensor, tile: Tensor, size: int, count: int) -> tuple[Tensor, Tensor]:
    """Draw soft-edged ellipses, each in a small window around its centre.

    Args:
        nuclei: (K, 6) nuclei of all tiles together.
        tile: (K,) index of the tile each nucleus belongs to.
        size: tile side S.
        count: number of tiles T.

    Returns:
        ``(stain, coverage)``: (T, S, S) haematoxylin concentration (the darkest
        nucleus at each pixel) and (T, S, S) nuclear coverage in [0, 1].
    """
    span = torch.arange(-_HALF_WINDOW, _HALF_WINDOW + 1)
    oy, ox = (o.flatten() for o in torch.meshgrid(span, span, indexing="ij"))  # (W*W,)
    cx, cy, a, b, angle, ink = (nuclei[:, i, None] for i in range(_NUCLEUS_FIELDS))
    px = cx.floor().long() + ox  # (K, W*W) pixel columns of each window
    py = cy.floor().long() + oy
    dx, dy = px + 0.5 - cx, py + 0.5 - cy
    cos, sin = torch.cos(angle), torch.sin(angle)
    a, b = a.clamp(0.3, _HALF_WINDOW - 1.5), b.clamp(0.3, _HALF_WINDOW - 1.5)
    rho = torch.sqrt(((dx * cos + dy * sin) / a) ** 2 + ((dy * cos - dx * sin) / b) ** 2)
    blob = torch.sigmoid((1.0 - rho) * b * 3.0)  # edge about one pixel wide at any size
    inside = (px >= 0) & (px < size) & (py >= 0) & (py < size)
    flat = (tile[:, None] * size + py.clamp(0, size - 1)) * size + px.clamp(0, size - 1)
    flat, blob = flat[inside], blob[inside]
    ink = ink.expand_as(inside)[inside]
    stain = torch.zeros(count * size * size).scatter_reduce(0, flat, blob * ink, "amax")
    coverage = torch.zeros(count * size * size).scatter_reduce(0, flat, blob, "amax")
    return stain.view(count, size, size), coverage.view(count, size, size)


def _blur(images: Tensor, sigma: Tensor) -> Tensor:
    """Gaussian-blur each image with its own sigma (0 = unchanged).

    Args:
        images: (T, C, S, S).
        sigma: (T,) blur in pixels.
    """
    T, C, S, _ = images.shape
    offsets = torch.arange(-2, 3, dtype=images.dtype)
    width = sigma.clamp(min=1e-3)[:, None]
    kernel = torch.exp(-0.5 * (offsets[None] / width) ** 2)  # (T, 5)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    kernel = kernel[:, :, None] * kernel[:, None, :]  # separable -> (T, 5, 5)
    weight = kernel.repeat_interleave(C, dim=0)[:, None]  # (T*C, 1, 5, 5), one per channel
    padded = F.pad(images.reshape(1, T * C, S, S), (2, 2, 2, 2), mode="replicate")
    return F.conv2d(padded, weight, groups=T * C).view(T, C, S, S)


def render_tiles(params: TileParams, size: int, rng: np.random.Generator) -> Tensor:
    """Render T tiles.

    Args:
        params: what each tile shows.
        size: tile side S in pixels.
        rng: source of randomness (nuclei, textures, noise).

    Returns:
        (T, 3, S, S) float32 RGB in [1/255, 1] (never exactly zero, so an all-zero
        tile can mark padding).
    """
    T = len(params)
    fibre_angle = rng.uniform(0, math.pi, T)
    lists: list[np.ndarray] = []
    lumens = np.zeros((T, 3))
    for t in range(T):
        if params.tumour[t]:
            drawn, lumens[t] = _tumour_nuclei(
                rng,
                size,
                float(params.radius[t]),
                float(params.density[t]),
                float(params.pleomorphism[t]),
                bool(params.gland[t]),
            )
        else:
            drawn = _stroma_nuclei(rng, size, float(fibre_angle[t]))
        lists.append(drawn)
    tile = torch.from_numpy(np.repeat(np.arange(T), [len(n) for n in lists]))
    nuclei = torch.from_numpy(np.concatenate(lists)).float()  # (K, 6), all tiles together

    coords = torch.arange(size, dtype=torch.float32) + 0.5
    grid = torch.stack(torch.meshgrid(coords, coords, indexing="xy"))  # (2, S, S): x, y
    hema, coverage = _rasterise(nuclei, tile, size, T)
    hema = hema * (1.0 + 0.25 * torch.from_numpy(rng.standard_normal(hema.shape)).float())

    # Eosin: fibrous stroma (streaks along a random direction) or cellular cytoplasm.
    tumour = torch.from_numpy(params.tumour.astype(np.float32))[:, None, None]
    angle = torch.from_numpy(fibre_angle).float()[:, None, None]
    phase = torch.from_numpy(rng.uniform(0, 2 * math.pi, T)).float()[:, None, None]
    along = grid[0] * torch.sin(angle) - grid[1] * torch.cos(angle)
    warp = 1.5 * _smooth_noise(rng, T, size, cells=3)  # wavy, not ruled, fibres
    fibres = 0.05 * torch.sin((along + warp) * 2 * math.pi / 5.0 + phase)
    texture = _smooth_noise(rng, T, size)
    eosin = torch.where(tumour > 0, 0.38 + 0.05 * texture, 0.26 + 0.1 * texture + fibres)
    eosin = eosin.clamp(min=0.03) * (1.0 - 0.5 * coverage)

    # Gland lumens: empty space, white.
    lx, ly, lr = (torch.from_numpy(lumens[:, i]).float()[:, None, None] for i in range(3))
    lumen = torch.sigmoid((lr - torch.hypot(grid[0] - lx, grid[1] - ly)) * 2.0) * (lr > 0)
    eosin = eosin * (1.0 - 0.93 * lumen)
    hema = hema * (1.0 - lumen)

    # Beer-Lambert: optical densities add along the stain vectors.
    strength = torch.from_numpy(params.strength).float()  # (T, 2)
    stain = torch.from_numpy(params.stain).float()  # (T, 2, 3)
    concentration = torch.stack([hema, eosin], dim=1) * strength[:, :, None, None]  # (T, 2, S, S)
    density = torch.einsum("tksx,tkc->tcsx", concentration, stain) * OD_SCALE  # (T, 3, S, S)
    rgb = torch.exp(-density)
    rgb = _blur(rgb, torch.from_numpy(params.blur).float())
    rgb = rgb + 0.012 * torch.from_numpy(rng.standard_normal(rgb.shape)).float()
    return rgb.clamp(1 / 255, 1.0)
