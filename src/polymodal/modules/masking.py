"""MAE's random patch masking: keep a random subset of tokens, restore their order.

Shared by every encoder with an ``encode_visible`` pass: the 2D
:class:`~polymodal.modules.encoders.ViTEncoder` and the 3D
:class:`~polymodal.modules.vit3d.VolumeViT` and :class:`~polymodal.modules.vit3d.VideoViT`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from polymodal.errors import ConfigError


class Masking(NamedTuple):
    """Output of :func:`random_masking`.

    Attributes:
        kept: (B, K, D) the kept tokens, in shuffled order.
        mask: (B, N) float, 1 = dropped, 0 = kept, in the original order.
        ids_restore: (B, N) long; ``gather`` with it undoes the shuffle.
        ids_keep: (B, K) long original indices of the kept tokens.
    """

    kept: Tensor
    mask: Tensor
    ids_restore: Tensor
    ids_keep: Tensor


def num_kept(n: int, ratio: float) -> int:
    """Tokens kept out of n at mask ratio ``ratio``: ``round((1 - ratio) * n)``, at least 1."""
    if not 0.0 <= ratio < 1.0:
        raise ConfigError(f"mask ratio must be in [0, 1), got {ratio}")
    return max(1, round((1.0 - ratio) * n))


def random_masking(
    tokens: Tensor, ratio: float, generator: torch.Generator | None = None
) -> Masking:
    """Keep a random subset of each sample's tokens (MAE's per-sample shuffle).

    Args:
        tokens: (B, N, D) tokens.
        ratio: fraction to drop, in [0, 1); K = :func:`num_kept` (N, ratio) survive.
        generator: source of randomness, for reproducible masks.

    Returns:
        :class:`Masking` with the kept tokens, the mask and the restoring indices.
    """
    b, n, d = tokens.shape
    keep = num_kept(n, ratio)
    noise = torch.rand(b, n, generator=generator, device=tokens.device)  # (B, N)
    ids_shuffle = noise.argsort(dim=1)  # ascending: the K smallest are kept
    ids_restore = ids_shuffle.argsort(dim=1)
    ids_keep = ids_shuffle[:, :keep]
    kept = tokens.gather(1, ids_keep[..., None].expand(-1, -1, d))  # (B, K, D)
    mask = torch.ones(b, n, device=tokens.device)
    mask[:, :keep] = 0.0
    mask = mask.gather(1, ids_restore)  # back to the original order
    return Masking(kept, mask, ids_restore, ids_keep)


def unshuffle(kept: Tensor, fill: Tensor, ids_restore: Tensor) -> Tensor:
    """Put kept tokens back in place and fill the dropped ones (the MAE decoder input).

    Args:
        kept: (B, K, D) tokens from :func:`random_masking` (or their encodings).
        fill: (D,) or (1, 1, D) token for every dropped position (a mask token).
        ids_restore: (B, N) from :func:`random_masking`.

    Returns:
        (B, N, D) tokens in the original order.
    """
    b, k, d = kept.shape
    n = ids_restore.shape[1]
    filler = fill.reshape(1, 1, d).expand(b, n - k, d).to(kept.dtype)
    full = torch.cat([kept, filler], dim=1)  # (B, N, D) in shuffled order
    return full.gather(1, ids_restore[..., None].expand(-1, -1, d))


class MaskedOutput(NamedTuple):
    """Output of :meth:`VolumeViT.encode_visible`.

    Attributes:
        last: (B, 1 + K, D) encoded visible tokens (CLS first when enabled).
        mask: (B, N) float, 1 = dropped patch.
        ids_restore: (B, N) indices for :func:`unshuffle`.
    """

    last: Tensor
    mask: Tensor
    ids_restore: Tensor
