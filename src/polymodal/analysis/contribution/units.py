"""Occlusion units: how one modality of a sample is split into parts to occlude.

A unit spec turns a per-sample shape into **unit masks** (U, *shape) bool, True
where unit u covers the sample, and says how the U units are laid out for an
importance map (``grid``). Specs:

- :class:`Whole` — the whole modality is one unit (e.g. a 3D volume);
- :class:`Patches` — square (or rectangular) image patches over the last two
  axes, through every channel or frame;
- :class:`Tiles` — one unit per entry of the first axis (tiles of a bag, frames);
- :class:`Chunks` — contiguous chunks of the last axis: audio time chunks,
  token positions, single tabular entries (``size=1``);
- :class:`Groups` — named sets of positions on the last axis (feature groups,
  e.g. gene modules).

With ``skip_empty`` a unit whose values are all zero in a sample does not exist
for that sample (padding tiles, padding tokens): it is never occluded and
contributes nothing.

:func:`parse_units` reads the command-line form (``patches:4``, ``chunks:16``,
``entries``, ``tiles``, ``whole``) and :func:`default_units` picks a spec per
modality from its shape.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from polymodal.errors import ConfigError, DataError

FillValue = Literal["mean", "zero"] | float
"""What an occluded unit is replaced by: the sample's mean value, zero, or a constant."""


@dataclass(frozen=True)
class Units:
    """Base of the unit specs (one unit: the whole modality).

    Args:
        skip_empty: (keyword only) a unit whose values are all zero in a sample is
            absent there.
    """

    skip_empty: bool = field(default=False, kw_only=True)

    def masks(self, shape: Sequence[int]) -> Tensor:
        """(U, *shape) bool: which entries of a sample each unit covers."""
        return torch.ones(1, *shape, dtype=torch.bool)

    def grid(self, shape: Sequence[int]) -> tuple[int, ...]:
        """Layout of the U units for maps (its product is U)."""
        return (1,)

    def labels(self, shape: Sequence[int]) -> list[str]:
        """A name per unit, for tables."""
        grid = self.grid(shape)
        return [str(i) for i in range(math.prod(grid))]

    def valid(self, x: Tensor, masks: Tensor) -> Tensor:
        """Which units exist in each sample: (B, U) bool.

        Args:
            x: (B, *shape) the modality.
            masks: (U, *shape) from :meth:`masks`.
        """
        if not self.skip_empty:
            return torch.ones(x.shape[0], masks.shape[0], dtype=torch.bool, device=x.device)
        nonzero = (x != 0).flatten(1).float()  # (B, numel)
        return nonzero @ masks.flatten(1).float().T > 0  # (B, U): any nonzero entry in the unit

    def fill(self, x: Tensor, how: FillValue, valid: Tensor) -> Tensor:
        """The value each sample's occluded units take: (B,).

        Args:
            x: (B, *shape) the modality.
            how: ``"mean"`` (the sample's mean over its existing units), ``"zero"``
                or a constant.
            valid: (B, U) from :meth:`valid` (used by ``"mean"`` to leave out absent
                units, e.g. padding tiles).
        """
        if how == "zero":
            return x.new_zeros(x.shape[0])
        if how == "mean":
            if not x.is_floating_point():
                raise DataError(
                    f"fill 'mean' needs a floating-point modality, got {x.dtype}; "
                    "use a constant (e.g. a mask token id) or 'zero'"
                )
            if not self.skip_empty:
                return x.flatten(1).mean(dim=1)
            return _mean_over_units(x, self.masks(x.shape[1:]).to(x.device), valid)
        if isinstance(how, str):
            raise ConfigError(f"fill must be 'mean', 'zero' or a number, got {how!r}")
        return torch.full((x.shape[0],), float(how), dtype=x.dtype, device=x.device)


def _mean_over_units(x: Tensor, masks: Tensor, valid: Tensor) -> Tensor:
    """Mean of each sample over the entries its valid units cover: (B,)."""
    covered = (valid.float() @ masks.flatten(1).float()) > 0  # (B, numel)
    values = x.flatten(1) * covered
    return values.sum(dim=1) / covered.sum(dim=1).clamp(min=1)


@dataclass(frozen=True)
class Whole(Units):
    """The whole modality is one unit."""


@dataclass(frozen=True)
class Patches(Units):
    """Image patches over the last two axes (H, W), through all leading axes.

    Patches are ``size`` (or ``(ph, pw)``) pixels; edge patches are smaller when
    the size does not divide the image. A (1, 28, 28) image with ``size=4`` gives a
    7 x 7 grid of 49 patches.
    """

    size: int | tuple[int, int] = 4

    def _size(self) -> tuple[int, int]:
        ph, pw = (self.size, self.size) if isinstance(self.size, int) else self.size
        if ph < 1 or pw < 1:
            raise ConfigError(f"patch size must be positive, got {self.size}")
        return ph, pw

    def grid(self, shape: Sequence[int]) -> tuple[int, ...]:
        if len(shape) < 2:
            raise DataError(f"patches need a modality with (..., H, W) axes, got shape {shape}")
        ph, pw = self._size()
        return (math.ceil(shape[-2] / ph), math.ceil(shape[-1] / pw))

    def masks(self, shape: Sequence[int]) -> Tensor:
        gh, gw = self.grid(shape)
        ph, pw = self._size()
        H, W = shape[-2], shape[-1]
        rows = torch.arange(H) // ph  # patch row of every pixel row
        cols = torch.arange(W) // pw
        unit = (rows[:, None] * gw + cols[None, :]).flatten()  # (H*W,) patch index per pixel
        masks = torch.zeros(gh * gw, H * W, dtype=torch.bool)
        masks[unit, torch.arange(H * W)] = True
        masks = masks.view(gh * gw, 1, H, W).expand(-1, math.prod(shape[:-2]), H, W)
        return masks.reshape(gh * gw, *shape).clone()

    def labels(self, shape: Sequence[int]) -> list[str]:
        gh, gw = self.grid(shape)
        return [f"({r},{c})" for r in range(gh) for c in range(gw)]


@dataclass(frozen=True)
class Tiles(Units):
    """One unit per entry of the first axis, e.g. the tiles (N, C, H, W) of a bag.

    ``skip_empty`` defaults to True: all-zero tiles are padding.
    """

    skip_empty: bool = field(default=True, kw_only=True)

    def grid(self, shape: Sequence[int]) -> tuple[int, ...]:
        return (int(shape[0]),)

    def masks(self, shape: Sequence[int]) -> Tensor:
        N = int(shape[0])
        eye = torch.eye(N, dtype=torch.bool).view(N, N, *([1] * (len(shape) - 1)))
        return eye.expand(N, *shape).clone()

    def valid(self, x: Tensor, masks: Tensor) -> Tensor:
        if not self.skip_empty:
            return super().valid(x, masks)
        return x.flatten(2).abs().amax(dim=2) > 0  # (B, N)


@dataclass(frozen=True)
class Chunks(Units):
    """Contiguous chunks of the last axis: ``count`` near-equal chunks, or ``size`` each.

    ``Chunks(count=16)`` cuts a (40, 101) log-mel into 16 time chunks (as
    ``numpy.array_split`` does); ``Chunks(size=1)`` makes every entry of a vector
    (tabular features, token positions) a unit.
    """

    count: int | None = None
    size: int | None = None

    def _bounds(self, length: int) -> list[tuple[int, int]]:
        if (self.count is None) == (self.size is None):
            raise ConfigError("Chunks needs exactly one of count and size")
        if self.count is not None:
            if not 1 <= self.count <= length:
                raise ConfigError(f"cannot cut an axis of {length} into {self.count} chunks")
            edges = [round(i * length / self.count) for i in range(self.count + 1)]
        else:
            assert self.size is not None
            if self.size < 1:
                raise ConfigError(f"chunk size must be positive, got {self.size}")
            edges = [*range(0, length, self.size), length]
        return list(zip(edges[:-1], edges[1:], strict=True))

    def grid(self, shape: Sequence[int]) -> tuple[int, ...]:
        return (len(self._bounds(int(shape[-1]))),)

    def masks(self, shape: Sequence[int]) -> Tensor:
        bounds = self._bounds(int(shape[-1]))
        masks = torch.zeros(len(bounds), *shape, dtype=torch.bool)
        for u, (start, stop) in enumerate(bounds):
            masks[u, ..., start:stop] = True
        return masks


@dataclass(frozen=True)
class Groups(Units):
    """Named sets of positions on the last axis (feature groups).

    Args:
        groups: ``{name: positions}``; positions may overlap, and positions in no
            group are never occluded.
    """

    groups: Mapping[str, Sequence[int]] = field(default_factory=dict)

    def grid(self, shape: Sequence[int]) -> tuple[int, ...]:
        if not self.groups:
            raise ConfigError("Groups needs at least one group")
        return (len(self.groups),)

    def labels(self, shape: Sequence[int]) -> list[str]:
        return list(self.groups)

    def masks(self, shape: Sequence[int]) -> Tensor:
        self.grid(shape)
        masks = torch.zeros(len(self.groups), *shape, dtype=torch.bool)
        for u, positions in enumerate(self.groups.values()):
            index = torch.as_tensor(list(positions), dtype=torch.long)
            if len(index) and (index.min() < 0 or index.max() >= shape[-1]):
                raise ConfigError(f"group positions must lie in [0, {shape[-1]}), got {positions}")
            masks[u, ..., index] = True
        return masks


def parse_units(text: str) -> Units:
    """Read a unit spec from the command line.

    ``whole``, ``patches:S`` or ``patches:HxW``, ``tiles``, ``chunks:N`` (N chunks of
    the last axis), ``size:S`` (chunks of S entries), ``entries`` (every entry).

    Raises:
        ValueError: an unknown or malformed spec.
    """
    kind, _, arg = text.strip().partition(":")
    try:
        if kind == "whole" and not arg:
            return Whole()
        if kind == "tiles" and not arg:
            return Tiles()
        if kind == "entries" and not arg:
            return Chunks(size=1)
        if kind == "patches":
            h, _, w = arg.partition("x")
            return Patches((int(h), int(w or h)))
        if kind == "chunks":
            return Chunks(count=int(arg))
        if kind == "size":
            return Chunks(size=int(arg))
    except ValueError:
        pass
    raise ConfigError(
        f"bad unit spec {text!r}; use whole, patches:S, patches:HxW, tiles, chunks:N, "
        "size:S or entries"
    )


def default_units(name: str, shape: Sequence[int]) -> Units:
    """A sensible unit spec for modality ``name`` with per-sample ``shape``.

    Images and depth: a 7 x 7 grid of patches; video: the same patches through all
    frames; tiles: one unit per tile; audio: 16 time chunks (fewer if shorter);
    genes: 32 chunks of the vector; token ids: every position (zeros = padding);
    volumes (ct, pet): the whole volume.
    """
    if name in ("image", "depth", "video"):
        return Patches((max(1, math.ceil(shape[-2] / 7)), max(1, math.ceil(shape[-1] / 7))))
    if name == "tiles":
        return Tiles()
    if name == "audio":
        return Chunks(count=min(16, int(shape[-1])))
    if name == "genes":
        return Chunks(count=min(32, int(shape[-1])))
    if name == "text_ids":
        return Chunks(size=1, skip_empty=True)
    return Whole()
