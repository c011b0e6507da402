"""Audio-source localisation: where in the clip the sound comes from.

The map is the cosine similarity between the audio embedding and each video patch
token (tube) — high where the patch looks like what is heard. The audio may be
one embedding per clip or one per time slice of the patch grid: per slice, a
patch also matches by *when* it changes with the sound (a sounding object moves
with its sound; a silent one does not). A box of a fixed side is read off the map
as the square of largest summed similarity, one per time slice, and scored
against the true box of the sounding object by IoU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def per_slice(audio: Tensor, patches: Tensor, slices: int) -> tuple[Tensor, Tensor]:
    """Unit-length audio and patch embeddings, side by side per time slice.

    Args:
        audio: (B, E) one embedding per clip, or (B, t, E) one per time slice.
        patches: (B, N, E) video patch embeddings, N = t·n in time-major order.
        slices: t.

    Returns:
        ``(a, v)``: (B, t, E) audio (a clip embedding repeated) and (B, t, n, E) patches.
    """
    a = F.normalize(audio if audio.dim() == 3 else audio[:, None], dim=-1)
    v = F.normalize(patches, dim=-1)
    return a.expand(-1, slices, -1), v.reshape(v.shape[0], slices, -1, v.shape[-1])


def similarity_map(audio: Tensor, patches: Tensor, grid: tuple[int, int, int]) -> Tensor:
    """Cosine similarity of the audio embedding with every video patch.

    Args:
        audio: (B, E) audio embeddings, or (B, t, E) one per time slice.
        patches: (B, N, E) video patch embeddings, N = t·h·w in (time, row, column) order.
        grid: (t, h, w) patch grid.

    Returns:
        (B, t, h, w) similarities in [-1, 1].
    """
    a, v = per_slice(audio, patches, grid[0])
    return torch.einsum("bse,bsne->bsn", a, v).reshape(-1, *grid)


def map_boxes(maps: Tensor, frames: int, size: int, side: int) -> Tensor:
    """Per-frame boxes of side ``side`` where the upsampled map has the largest mass.

    Args:
        maps: (B, t, h, w) localisation maps (any scale; only their order matters
            after a per-slice shift to non-negative values).
        frames: T frames; each of the t slices covers T / t consecutive frames.
        size: frame side S in pixels.
        side: box side in pixels (≤ S).

    Returns:
        (B, T, 4) float boxes ``(y0, x0, y1, x1)``, end exclusive, inside the frame.
    """
    b, t = maps.shape[:2]
    pixels = F.interpolate(maps.flatten(0, 1)[:, None], size=(size, size), mode="bilinear")
    pixels = pixels - pixels.amin(dim=(-2, -1), keepdim=True)  # (B·t, 1, S, S) ≥ 0
    mass = F.avg_pool2d(pixels, side, stride=1)  # (B·t, 1, S-side+1, S-side+1)
    best = mass.flatten(1).argmax(dim=1)
    y0, x0 = best // mass.shape[-1], best % mass.shape[-1]
    boxes = torch.stack([y0, x0, y0 + side, x0 + side], dim=-1).float().reshape(b, t, 4)
    return boxes.repeat_interleave(frames // t, dim=1)


def random_boxes(
    count: int, frames: int, size: int, side: int, generator: torch.Generator | None = None
) -> Tensor:
    """(count, T, 4) boxes of side ``side`` at a uniform position, the same in every frame."""
    corner = torch.randint(0, size - side + 1, (count, 2), generator=generator).float()
    boxes = torch.cat([corner, corner + side], dim=-1)  # (count, 4)
    return boxes[:, None].expand(count, frames, 4).clone()


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """Intersection over union of boxes ``(y0, x0, y1, x1)`` (end exclusive).

    Args:
        a, b: (..., 4) boxes of the same shape.

    Returns:
        (...) IoU in [0, 1] (0 where both boxes are empty).
    """
    low = torch.maximum(a[..., :2], b[..., :2])
    high = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (high - low).clamp_min(0).prod(dim=-1)
    area = lambda box: (box[..., 2:] - box[..., :2]).clamp_min(0).prod(dim=-1)  # noqa: E731
    union = area(a) + area(b) - inter
    return torch.where(union > 0, inter / union.clamp_min(1e-9), torch.zeros_like(union))
