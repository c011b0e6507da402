"""Scenes of coloured shapes: sampling and rendering (the pictures of Shapes-VQA).

A scene is a handful of non-overlapping objects, each a shape (circle, square,
triangle, diamond) in a colour, a size (small or large) and a position, on a plain
or textured background. Rendering draws each object from its signed distance
function with a one-pixel anti-aliased edge, so objects look the same at every
position and no shape is drawn from a sprite.

Two layouts place the objects:

* ``grid`` (the default): the image is cut into ``grid × grid`` cells — the
  patches of a vision transformer whose patch side is ``size / grid``. A small
  object fills one cell, a large one a 2×2 block of cells, each centred in its
  cells. Every visual token then shows at most one object, and an object always
  looks the same to the patch embedding, which is what lets a small VLM learn
  from scratch in minutes on a CPU.
* ``free``: objects anywhere (radius 5 or 8.5 pixels in a 64-pixel image), kept
  apart; an object falls across up to four patches at any offset, which a
  from-scratch model learns far more slowly.
* ``dense``: the regime of LLaVA's 576 CLIP tokens. The ``grid × grid`` patches
  (e.g. 24 × 24 at 4-pixel patches of a 96-pixel image) are grouped into object
  cells of :data:`DENSE_CELL` × :data:`DENSE_CELL` patches; a small object fills
  one cell (about 3 × 3 patches), a large one 2 × 2 cells. Most visual tokens
  then show background texture or the inside of an object: redundant, as most
  of a CLIP-ViT-L/336 image's tokens are. A scene draws its colours from a
  palette of two or three, so colour-conditioned counts vary.

Everything is numpy on the CPU and seeded by the caller's generator.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from polymodal.errors import ConfigError

SHAPES = ("circle", "square", "triangle", "diamond")
COLORS = ("red", "green", "blue", "yellow", "purple", "cyan")
SIZES = ("small", "large")

RGB = np.array(
    [
        (220, 40, 40),  # red
        (40, 180, 60),  # green
        (50, 80, 230),  # blue
        (235, 215, 40),  # yellow
        (160, 60, 210),  # purple
        (40, 210, 220),  # cyan
    ],
    dtype=np.float32,
)
"""Mean colour of each entry of :data:`COLORS`, 0-255."""

RADIUS = (5.0, 8.5)
"""Radius of small and large objects in a 64-pixel image, ``free`` layout (scaled with size)."""

GRID_RADIUS = (0.4, 0.8)
"""Radius of small and large objects in cell sides (``grid`` layout): the bounding
circle of a small object fits its cell, that of a large one its 2×2 block."""

LAYOUTS = ("grid", "free", "dense")
DENSE_CELL = 4
"""Patches per object cell side in the ``dense`` layout."""

# Objects keep this much space between their bounding circles, in pixels.
_GAP = 2.0
# Candidate positions tried per object before it is dropped.
_TRIES = 100
# Half-diagonal of the square relative to its "radius": the bounding circle.
_BOUND = 1.2

FIELDS = ("shape", "color", "size", "x", "y", "radius")
"""Columns of a scene's object table."""


@dataclass(frozen=True)
class Scene:
    """One picture's content.

    Attributes:
        objects: (n, 6) float32 table, one row per object with the columns of
            :data:`FIELDS`: shape, colour and size as indices into :data:`SHAPES`,
            :data:`COLORS`, :data:`SIZES`; x, y the centre in pixels (x to the
            right, y down); the radius in pixels.
        background: 0 plain, 1 noise, 2 stripes, 3 checkerboard.
    """

    objects: np.ndarray
    background: int

    def __len__(self) -> int:
        return int(self.objects.shape[0])

    def column(self, name: str) -> np.ndarray:
        """One column of :attr:`objects` by its name in :data:`FIELDS`."""
        return self.objects[:, FIELDS.index(name)]


BACKGROUNDS = ("plain", "noise", "stripes", "checker")


def sample_scene(
    rng: np.random.Generator,
    size: int = 64,
    min_objects: int = 1,
    max_objects: int = 6,
    textured: float = 0.5,
    layout: str = "grid",
    grid: int = 8,
) -> Scene:
    """Draw a scene: a number of objects, their attributes and free positions.

    An object that finds no free place is dropped, so a crowded scene may hold fewer
    than the number drawn (never fewer than one).

    Args:
        rng: the generator every draw comes from.
        size: image side in pixels.
        min_objects: fewest objects to draw.
        max_objects: most objects to draw.
        textured: probability of a textured (not plain) background.
        layout: ``"grid"``, ``"free"`` or ``"dense"`` (module doc).
        grid: patches per side (``grid`` and ``dense`` layouts); ``size`` must be a
            multiple, and for ``dense`` it a multiple of :data:`DENSE_CELL`.

    Returns:
        The :class:`Scene`.
    """
    count = int(rng.integers(min_objects, max_objects + 1))
    if layout == "dense":  # a palette of two or three colours
        palette = rng.choice(len(COLORS), size=int(rng.integers(2, 4)), replace=False)
        attributes = [
            (int(rng.integers(len(SHAPES))), int(rng.choice(palette)), int(rng.integers(2)))
            for _ in range(count)
        ]
    else:
        attributes = [
            (int(rng.integers(len(SHAPES))), int(rng.integers(len(COLORS))), int(rng.integers(2)))
            for _ in range(count)
        ]
    if layout == "grid":
        rows = _place_on_grid(attributes, rng, size, grid)
    elif layout == "dense":
        if grid % DENSE_CELL:
            raise ConfigError(
                f"the dense layout groups {DENSE_CELL}×{DENSE_CELL} patches per object cell: "
                f"grid must be a multiple of {DENSE_CELL}, got {grid}"
            )
        rows = _place_on_grid(attributes, rng, size, grid // DENSE_CELL)
    elif layout == "free":
        rows = _place_freely(attributes, rng, size)
    else:
        raise ConfigError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
    background = int(rng.integers(1, len(BACKGROUNDS))) if rng.random() < textured else 0
    return Scene(np.array(rows, dtype=np.float32).reshape(-1, len(FIELDS)), background)


Attributes = list[tuple[int, int, int]]  # (shape, colour, size) of each object


def _place_freely(attributes: Attributes, rng: np.random.Generator, size: int) -> list[tuple]:
    """Rows of FIELDS: each object at the first of 100 random candidates clear of the others."""
    scale = size / 64
    rows: list[tuple] = []
    for shape, color, big in attributes:
        radius = RADIUS[big] * scale * float(rng.uniform(0.9, 1.1))
        reach = _BOUND * radius
        candidates = rng.uniform(reach + 1, size - reach - 1, (_TRIES, 2))  # (T, 2) x, y
        free = np.ones(_TRIES, dtype=bool)
        for other in rows:
            gap = np.hypot(candidates[:, 0] - other[3], candidates[:, 1] - other[4])
            free &= gap >= reach + _BOUND * other[5] + _GAP
        if free.any():
            x, y = candidates[int(np.argmax(free))]  # the first free candidate
            rows.append((shape, color, big, float(x), float(y), radius))
    return rows


def _place_on_grid(
    attributes: Attributes, rng: np.random.Generator, size: int, grid: int
) -> list[tuple]:
    """Rows of FIELDS: each object in a random free cell (small) or 2×2 block (large)."""
    if size % grid:
        raise ConfigError(f"image size {size} is not a multiple of the grid ({grid} cells)")
    cell = size / grid
    taken = np.zeros((grid, grid), dtype=bool)
    rows: list[tuple] = []
    for shape, color, big in attributes:
        span = 1 + big  # cells per side
        corners = [
            (r, c)
            for r in range(grid - span + 1)
            for c in range(grid - span + 1)
            if not taken[r : r + span, c : c + span].any()
        ]
        if not corners:
            continue
        r, c = corners[int(rng.integers(len(corners)))]
        taken[r : r + span, c : c + span] = True
        radius = GRID_RADIUS[big] * cell * float(rng.uniform(0.95, 1.05))
        x, y = (c + span / 2) * cell, (r + span / 2) * cell
        rows.append((shape, color, big, x, y, radius))
    return rows


def _signed_distance(shape: int, dx: np.ndarray, dy: np.ndarray, radius: float) -> np.ndarray:
    """Signed distance in pixels from each point to the shape's edge (< 0 inside)."""
    if SHAPES[shape] == "circle":
        return np.hypot(dx, dy) - radius
    if SHAPES[shape] == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) - 0.85 * radius
    if SHAPES[shape] == "diamond":
        return (np.abs(dx) + np.abs(dy) - 1.2 * radius) / np.sqrt(2)
    # Triangle pointing up: apex at (0, -r), base at y = 0.8 r, half-width r at the base.
    # Each side is a half-plane; the distance is the largest of the three.
    slope = np.hypot(1.8, 1.0)
    left = (-1.8 * dx - (dy + radius)) / slope
    right = (1.8 * dx - (dy + radius)) / slope
    base = dy - 0.8 * radius
    return np.maximum(np.maximum(left, right), base)


@functools.cache
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(size, size) float32 row and column coordinates of the pixel centres (read-only)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    yy.flags.writeable = xx.flags.writeable = False
    return yy, xx


def _background(kind: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size, 3) float32 background in 0-255: a muted base colour plus a texture."""
    grey = rng.uniform(50, 190)
    tint = rng.uniform(-12, 12, 3)  # low saturation, so objects keep their colour
    image = np.full((size, size, 3), grey, dtype=np.float32) + tint.astype(np.float32)
    name = BACKGROUNDS[kind]
    if name == "plain":
        return image
    if name == "noise":
        texture = rng.normal(0.0, 14.0, (size, size))
    else:
        yy, xx = _grid(size)
        period = rng.uniform(4, 10)
        if name == "stripes":
            angle = rng.uniform(0, np.pi)
            phase = (xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period
            texture = 18.0 * np.sin(phase)
        else:
            texture = 16.0 * np.where((xx // period + yy // period) % 2 == 0, 1.0, -1.0)
    return image + texture[..., None].astype(np.float32)


def coverage(scene: Scene, size: int) -> np.ndarray:
    """Where the scene's objects are: (size, size) float32 in [0, 1], each pixel's
    anti-aliased coverage by the objects (the largest over objects), as :func:`render`
    draws them. A segmentation target."""
    yy, xx = _grid(size)
    out = np.zeros((size, size), dtype=np.float32)
    for shape, _, _, x, y, radius in scene.objects:
        distance = _signed_distance(int(shape), xx - x, yy - y, float(radius))
        out = np.maximum(out, np.clip(0.5 - distance, 0.0, 1.0).astype(np.float32))
    return out


def render(scene: Scene, size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw a scene.

    Args:
        scene: what to draw.
        size: image side in pixels.
        rng: draws the background tint and texture and each object's colour jitter.

    Returns:
        (3, size, size) uint8 image.
    """
    image = _background(scene.background, size, rng)
    for shape, color, _, x, y, radius in scene.objects:
        # Draw only inside the object's bounding box (plus the anti-aliased edge).
        reach = _BOUND * radius + 1
        top, bottom = max(0, int(y - reach)), min(size, int(np.ceil(y + reach)) + 1)
        left, right = max(0, int(x - reach)), min(size, int(np.ceil(x + reach)) + 1)
        yy, xx = (g[top:bottom, left:right] for g in _grid(size))
        distance = _signed_distance(int(shape), xx - x, yy - y, float(radius))
        alpha = np.clip(0.5 - distance, 0.0, 1.0)[..., None]  # (h, w, 1) coverage
        rgb = RGB[int(color)] + rng.uniform(-15, 15, 3).astype(np.float32)
        patch = image[top:bottom, left:right]
        image[top:bottom, left:right] = patch * (1 - alpha) + rgb * alpha
    return np.clip(image, 0, 255).round().astype(np.uint8).transpose(2, 0, 1)  # (3, H, W)
