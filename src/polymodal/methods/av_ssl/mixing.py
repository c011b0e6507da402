"""Mixing two clips by a region, with labels mixed by the region's area.

Three ways to choose the region of clip *a* pasted into clip *b* (CutMix-style,
the same coordinates in both):

- ``guided``: the box the audio localises (:func:`~.localisation.map_boxes`),
  so the pasted pixels hold what sounds in *a*;
- ``box``: a box of the same side at a random place (plain mixup);
- ``tube``: a random set of patch columns kept through all frames (SVFormer's tube
  token mix), for video-only learning.

The mixed target is ``λ y_a + (1 − λ) y_b`` with λ the pasted share of the clip's
pixels; the audio tracks are mixed with the same λ. As in SVFormer's official code,
a clip's target ``y`` is the teacher's one-hot pseudo-label where the teacher is
confident and its softmax prediction where it is not (:func:`teacher_targets`), so
a mixed clip still has a target while the teacher is unsure.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class Mixed:
    """Clips of *a* pasted into *b*.

    Attributes:
        batch: the mixed modality tensors (``video``, and ``audio`` when given).
        area: (B,) λ, the share of each clip's pixels that comes from *a*.
    """

    batch: dict[str, Tensor]
    area: Tensor


def box_masks(boxes: Tensor, size: int) -> Tensor:
    """(B, T, 1, S, S) bool masks, True inside the per-frame boxes (B, T, 4) (end exclusive)."""
    rows = torch.arange(size, device=boxes.device)
    y0, x0, y1, x1 = (boxes[..., i, None] for i in range(4))  # (B, T, 1) each
    inside_y = (rows >= y0) & (rows < y1)  # (B, T, S)
    inside_x = (rows >= x0) & (rows < x1)
    return (inside_y[..., :, None] & inside_x[..., None, :])[:, :, None]


def tube_masks(
    count: int,
    frames: int,
    size: int,
    patch: int,
    share: Tensor,
    generator: torch.Generator | None = None,
) -> Tensor:
    """(count, T, 1, S, S) bool masks of random patch columns kept through every frame.

    Args:
        count: B clips.
        frames: T.
        size: frame side S, a multiple of ``patch``.
        patch: token side P in pixels.
        share: (B,) share of the (S/P)² patch columns to take from clip *a*.
        generator: source of randomness.
    """
    cells = (size // patch) ** 2
    ranks = torch.rand(count, cells, generator=generator).argsort(dim=1).argsort(dim=1)
    chosen = ranks < (share[:, None] * cells).round()  # (B, cells): the lowest-ranked ones
    grid = chosen.reshape(count, 1, 1, size // patch, size // patch).float()
    pixels = F.interpolate(grid.flatten(0, 1), scale_factor=patch, mode="nearest") > 0.5
    return pixels.reshape(count, 1, 1, size, size).expand(count, frames, 1, size, size)


def paste(a: dict[str, Tensor], b: dict[str, Tensor], masks: Tensor) -> Mixed:
    """Paste the masked pixels of clips ``a`` into clips ``b``.

    Args:
        a, b: batches with ``video`` (B, T, C, S, S) and optionally ``audio``.
        masks: (B, T, 1, S, S) bool, True where the pixel comes from ``a``.

    Returns:
        :class:`Mixed`; ``audio`` (if present) is ``λ a + (1 − λ) b`` per clip.
    """
    area = masks.flatten(1).float().mean(dim=1)  # (B,)
    batch = {"video": torch.where(masks, a["video"], b["video"])}
    if "audio" in a and "audio" in b:
        weight = area.reshape(-1, *([1] * (a["audio"].dim() - 1)))
        batch["audio"] = weight * a["audio"] + (1 - weight) * b["audio"]
    return Mixed(batch, area)


def teacher_targets(probs: Tensor, confident: Tensor) -> Tensor:
    """(B, C) per-clip targets: one-hot of the teacher's class where ``confident`` (B,)
    is True, the teacher's probabilities ``probs`` (B, C) themselves elsewhere."""
    hard = F.one_hot(probs.argmax(dim=-1), probs.shape[-1]).to(probs.dtype)
    return torch.where(confident[:, None], hard, probs)


def mixed_targets(targets_a: Tensor, targets_b: Tensor, area: Tensor) -> Tensor:
    """(B, C) targets ``λ y_a + (1 − λ) y_b`` of (B, C) per-clip targets, λ = ``area`` (B,)."""
    return area[:, None] * targets_a + (1 - area[:, None]) * targets_b


def soft_cross_entropy(logits: Tensor, targets: Tensor, weight: Tensor | None = None) -> Tensor:
    """Mean over the batch of ``weight · H(targets, softmax(logits))``; (B, C), (B, C),
    (B,) (None: every clip weighs 1)."""
    per_clip = -(targets * logits.log_softmax(dim=-1)).sum(dim=-1)
    return per_clip.mean() if weight is None else (per_clip * weight).mean()
