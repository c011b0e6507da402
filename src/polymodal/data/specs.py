"""The registered keys of a sample: modalities, targets and metadata, with their layouts.

Two registries name what a sample may carry. :data:`MODALITIES` are model inputs
(``image``, ``audio``, ...); :data:`TARGETS` are what a model is trained to
predict (``label``, ``labels``, ``heatmap``, ``tokens``) and ``label_mask``.
Each entry is a spec: per-sample layout, accepted ranks, a dtype rule, and, for
sequences, the axis :func:`~polymodal.data.contract.collate` may pad. Two
derived key families need no registration:

- ``<name>_mask`` bool: (B,) True where a modality is present, or (B, L) True at
  the real (unpadded) positions of a padded sequence;
- ``<name>_spacing`` (3,) float > 0: voxel size along (D, H, W), in mm, for the
  volume modalities whose spec sets ``spacing`` (``ct``, ``pet``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

DType = Literal["float", "integer", "int64", "bool", "float_or_bool"]
"""How a key's dtype is checked; ``float`` keys must also be finite."""

MASK_SUFFIX = "_mask"
SPACING_SUFFIX = "_spacing"
SPACING_LAYOUT = "(3,) voxel size along (D, H, W), > 0"


@dataclass(frozen=True)
class KeySpec:
    """What one registered key looks like in a single sample.

    Args:
        layout: axis names, e.g. ``"(C, H, W)"``; alternatives joined by ``or``.
        ndims: accepted numbers of dimensions per sample (without batch).
        dtype: dtype rule (see :data:`DType`).
        length_axis: negative axis whose size may differ between samples, e.g.
            -1 for ``(L,)``, -4 for ``(T, C, H, W)``; None for fixed-shape keys.
        variable: whether :func:`~polymodal.data.contract.collate` pads
            ``length_axis`` by default (others only when the call declares them).
        pad_value: value written into padded positions.
        sizes: required sizes as ``(negative axis, size)`` pairs, e.g. ``((-3, 1),)``.
    """

    layout: str
    ndims: tuple[int, ...]
    dtype: DType = "float"
    length_axis: int | None = None
    variable: bool = False
    pad_value: float = 0.0
    sizes: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        if self.variable and self.length_axis is None:
            raise ValueError(f"{self.layout}: a variable-length key needs a length_axis")
        if self.length_axis is not None and not -min(self.ndims) <= self.length_axis < 0:
            raise ValueError(f"{self.layout}: length_axis must be negative and within every rank")


@dataclass(frozen=True)
class ModalitySpec(KeySpec):
    """A model input. ``spacing``: accepts ``<name>_spacing`` voxel-size metadata."""

    spacing: bool = False


@dataclass(frozen=True)
class TargetSpec(KeySpec):
    """A training target.

    Args:
        requires: a key every sample carrying this one must also carry.
        fill: value :func:`~polymodal.data.contract.collate` gives samples that
            lack this key; None means every sample of a batch must carry it.
    """

    requires: str | None = None
    fill: float | None = None


MODALITIES: dict[str, ModalitySpec] = {
    "image": ModalitySpec("(C, H, W)", (3,)),
    "depth": ModalitySpec("(1, H, W)", (3,), sizes=((-3, 1),)),
    "video": ModalitySpec("(T, C, H, W)", (4,), length_axis=-4),
    "audio": ModalitySpec("(S,) waveform or (F, T) log-mel", (1, 2), length_axis=-1),
    "text_ids": ModalitySpec("(L,)", (1,), "integer", length_axis=-1, variable=True),
    "genes": ModalitySpec("(G,)", (1,)),
    "tiles": ModalitySpec("(N, C, H, W)", (4,), length_axis=-4),
    "ct": ModalitySpec("(D, H, W)", (3,), spacing=True),
    "pet": ModalitySpec("(D, H, W)", (3,), spacing=True),
}
"""Known modalities. Register a new one with :func:`register_modality`."""

TARGETS: dict[str, TargetSpec] = {
    "label": TargetSpec("()", (0,), "int64"),
    "labels": TargetSpec("(K,) multi-hot", (1,), "float_or_bool"),
    "heatmap": TargetSpec("(H, W) or (D, H, W)", (2, 3)),
    # -100 is cross_entropy's default ignore_index, so padded targets drop out of the loss
    "tokens": TargetSpec("(L,)", (1,), "int64", length_axis=-1, variable=True, pad_value=-100),
    # semi-supervised: True = labelled; a sample without it counts as labelled
    "label_mask": TargetSpec("()", (0,), "bool", requires="label", fill=1.0),
    # boxes (y0, x0, y1, x1) in pixels: one per sample, or one per frame of a clip
    "boxes": TargetSpec("(4,) or (T, 4)", (1, 2)),
}
"""Known target kinds. Register a new one with :func:`register_target`."""

METADATA_KEYS = frozenset({"index", "id", "source", "question_type"})
"""Unchecked per-sample keys (provenance, bookkeeping)."""


def _refuse_taken(name: str) -> None:
    for kind, registry in (("modality", MODALITIES), ("target", TARGETS)):
        if name in registry:
            raise ValueError(f"{name!r} is already registered as a {kind} {registry[name].layout}")
    if name in METADATA_KEYS or name.endswith((MASK_SUFFIX, SPACING_SUFFIX)):
        raise ValueError(f"{name!r} is a reserved key name (metadata, *_mask or *_spacing)")


def register_modality(name: str, spec: ModalitySpec) -> None:
    """Make ``name`` a known modality.

    Raises:
        ValueError: ``name`` is already a modality, target or reserved key.
    """
    _refuse_taken(name)
    MODALITIES[name] = spec


def register_target(name: str, spec: TargetSpec) -> None:
    """Make ``name`` a known target kind.

    Raises:
        ValueError: ``name`` is already a modality, target or reserved key.
    """
    _refuse_taken(name)
    TARGETS[name] = spec


def dtype_ok(rule: DType, dtype: torch.dtype) -> bool:
    """Whether ``dtype`` satisfies ``rule``."""
    if rule == "float":
        return dtype.is_floating_point
    if rule == "integer":
        return not dtype.is_floating_point and not dtype.is_complex and dtype != torch.bool
    if rule == "int64":
        return dtype == torch.int64
    if rule == "bool":
        return dtype == torch.bool
    return dtype.is_floating_point or dtype == torch.bool


def batched_layout(layout: str) -> str:
    """Put B first in every alternative: ``"(S,) or (F, T)"`` -> ``"(B, S) or (B, F, T)"``."""
    out = layout.replace(",)", ")").replace("()", "\0")
    return out.replace("(", "(B, ").replace("\0", "(B,)")
