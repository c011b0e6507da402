"""Vision transformers for volumes and videos, with MAE-style random masking.

:class:`VolumeViT` cuts a (B, C, D, H, W) volume (CT, PET, depth stacks) into
non-overlapping 3D patches with a ``Conv3d``; :class:`VideoViT` does the same to a
(B, T, C, H, W) clip with tube patches over (T, H, W), as in VideoMAE. Both use fixed
3D sin-cos positions (:func:`sincos_3d`, the MAE table extended to three axes) and
share :class:`~polymodal.modules.encoders.ViTEncoder`'s forward: hidden states on
request and per-block hooks. :func:`random_masking` and :func:`unshuffle` are the MAE
helpers that drop and restore tokens; :meth:`VolumeViT.encode_visible` is the masked
encoder pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, overload

import torch
from torch import Tensor, nn

from polymodal.errors import ConfigError
from polymodal.modules.attention import TransformerBlock
from polymodal.modules.encoders import BlockHook, ViTOutput, _check_input, run_blocks
from polymodal.modules.masking import MaskedOutput, Masking, num_kept, random_masking, unshuffle

# ----------------------------------------------------------------------- positions


def sincos_1d(positions: Tensor, dim: int, base: float = 10000.0) -> Tensor:
    """Sin-cos embedding of scalar positions (the Transformer / MAE table).

    Channel k < dim/2 is ``sin(p * w_k)``, channel dim/2 + k is ``cos(p * w_k)``, with
    ``w_k = base ** (-k / (dim / 2))``.

    Args:
        positions: (M,) positions (float or int).
        dim: embedding width, even.
        base: wavelength base.

    Returns:
        (M, dim) float32 table.
    """
    if dim % 2:
        raise ConfigError(f"sin-cos width must be even, got {dim}")
    half = dim // 2
    omega = base ** (-torch.arange(half, dtype=torch.float64) / half)  # (dim/2,)
    angles = positions.to(torch.float64)[:, None] * omega[None]  # (M, dim/2)
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


def sincos_3d(grid: Sequence[int], dim: int) -> Tensor:
    """Fixed 3D sin-cos positions for a (d, h, w) grid of patches.

    The width is split in three equal parts, each the :func:`sincos_1d` table of one
    axis: channels ``[0, dim/3)`` encode the depth (or time) index, the next third
    the row, the last third the column.

    Args:
        grid: (d, h, w) patches per axis.
        dim: embedding width, divisible by 6.

    Returns:
        (d * h * w, dim) table, rows in row-major (d, h, w) order, as
        ``Conv3d(...).flatten(2)`` orders the patches.
    """
    if dim % 6:
        raise ConfigError(f"3D sin-cos width must be divisible by 6, got {dim}")
    d, h, w = (int(g) for g in grid)
    zz, yy, xx = torch.meshgrid(torch.arange(d), torch.arange(h), torch.arange(w), indexing="ij")
    third = dim // 3
    axes = [sincos_1d(a.flatten(), third) for a in (zz, yy, xx)]  # 3 x (d*h*w, dim/3)
    return torch.cat(axes, dim=1)


# ----------------------------------------------------------------------- masking


def _triple(v: int | Sequence[int], name: str) -> tuple[int, int, int]:
    t = (v, v, v) if isinstance(v, int) else tuple(int(x) for x in v)
    if len(t) != 3:
        raise ConfigError(f"{name} must be an int or three ints, got {v}")
    return (t[0], t[1], t[2])


class VolumeViT(nn.Module):
    """ViT over 3D volumes: ``Conv3d`` patches, fixed 3D sin-cos positions, pre-norm blocks.

    Args:
        volume_size: (D, H, W) input size, or an int for a cube.
        patch_size: (P_d, P_h, P_w) patch, or an int; must divide ``volume_size``.
        in_channels: channels C.
        dim: token width D, divisible by 6 (three sin-cos tables).
        depth: number of transformer blocks.
        num_heads: attention heads per block.
        cls_token: prepend a learned CLS token (position zero, as in MAE).
        mlp_ratio: MLP width of the blocks as a multiple of D.
        dropout: dropout inside the blocks.
    """

    def __init__(
        self,
        volume_size: int | Sequence[int] = 16,
        patch_size: int | Sequence[int] = 4,
        in_channels: int = 1,
        dim: int = 48,
        depth: int = 2,
        num_heads: int = 4,
        cls_token: bool = True,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        size = _triple(volume_size, "volume_size")
        patch = _triple(patch_size, "patch_size")
        if any(s % p for s, p in zip(size, patch, strict=True)):
            raise ConfigError(f"patch_size {patch} must divide volume_size {size}")
        self.volume_size = size
        self.in_channels = in_channels
        self.dim = dim
        self.grid = (size[0] // patch[0], size[1] // patch[1], size[2] // patch[2])
        self.patch_embed = nn.Conv3d(in_channels, dim, patch, stride=patch)
        # Fixed, not learned (as MAE): masked pre-training then cannot fit positions.
        self.register_buffer("pos_embed", sincos_3d(self.grid, dim)[None], persistent=False)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if cls_token else None
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, num_heads, mlp_ratio, dropout) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self._init_weights()

    def _init_weights(self) -> None:
        # As ViTEncoder (MAE recipe): Xavier on the flattened patch projection,
        # truncated normal (0.02) on CLS and linear layers, zero biases.
        if self.cls_token is not None:
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        w = self.patch_embed.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        for m in self.blocks.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @property
    def num_patches(self) -> int:
        """Number of patch tokens N (without CLS)."""
        return self.grid[0] * self.grid[1] * self.grid[2]

    def num_tokens(self, shape: Sequence[int] | None = None) -> int:
        """Number of output tokens (patches plus CLS); fixed by the input size."""
        return self.num_patches + int(self.cls_token is not None)

    def _to_volume(self, x: Tensor) -> Tensor:
        """Check the input and return it as (B, C, D, H, W); a one-channel model also
        reads (B, D, H, W), the batch layout of the ``ct`` and ``pet`` modalities."""
        if self.in_channels == 1 and x.dim() == 4:
            x = x.unsqueeze(1)
        _check_input(type(self).__name__, x, (self.in_channels, *self.volume_size))
        return x

    def patch_tokens(self, x: Tensor) -> Tensor:
        """Patch embedding plus positions, without CLS.

        Args:
            x: the model's input (see :meth:`forward`).

        Returns:
            (B, N, D) tokens in row-major (d, h, w) patch order.
        """
        t = self.patch_embed(self._to_volume(x))  # (B, D, d, h, w)
        return t.flatten(2).transpose(1, 2) + self.pos_embed  # (B, d*h*w, D)

    def _with_cls(self, t: Tensor) -> Tensor:
        if self.cls_token is None:
            return t
        return torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], dim=1)

    def embed(self, x: Tensor) -> Tensor:
        """The input of the first block: (B, N + 1, D) with CLS, else (B, N, D)."""
        return self._with_cls(self.patch_tokens(x))

    @overload
    def forward(
        self,
        x: Tensor,
        output_hidden_states: Literal[False] = False,
        hook: BlockHook | None = None,
    ) -> Tensor: ...

    @overload
    def forward(
        self, x: Tensor, output_hidden_states: Literal[True], hook: BlockHook | None = None
    ) -> ViTOutput: ...

    def forward(
        self, x: Tensor, output_hidden_states: bool = False, hook: BlockHook | None = None
    ) -> Tensor | ViTOutput:
        """Encode every patch.

        Args:
            x: (B, C, D, H, W) volumes of size ``volume_size`` ((B, D, H, W) when C = 1).
            output_hidden_states: return a :class:`~polymodal.modules.encoders.ViTOutput`.
            hook: ``hook(layer_index, tokens) -> tokens`` before each block, as in
                :meth:`~polymodal.modules.encoders.ViTEncoder.forward`.

        Returns:
            (B, N (+1), D) tokens after the final LayerNorm, or a ViTOutput.
        """
        out = run_blocks(self.embed(x), self.blocks, self.norm, hook)
        return out if output_hidden_states else out.last

    def encode_visible(
        self, x: Tensor, ratio: float, generator: torch.Generator | None = None
    ) -> MaskedOutput:
        """MAE encoder pass: drop a random ``ratio`` of patches, encode the rest.

        Args:
            x: the model's input, as for :meth:`forward`.
            ratio: fraction of patches dropped per sample.
            generator: source of randomness for the mask.

        Returns:
            :class:`MaskedOutput`; ``last`` is (B, K (+1), D).
        """
        m = random_masking(self.patch_tokens(x), ratio, generator)
        out = run_blocks(self._with_cls(m.kept), self.blocks, self.norm)
        return MaskedOutput(out.last, m.mask, m.ids_restore)


class VideoViT(VolumeViT):
    """ViT over video clips: tube patches (T_p × P × P) by ``Conv3d`` over (T, H, W).

    Input is (B, T, C, H, W), the batch layout of the ``video`` modality; the tokens
    are ordered by (time, row, column) of the tubes.

    Args:
        frames: clip length T.
        image_size: frame side, an int or (H, W).
        tubelet: frames per tube T_p (VideoMAE uses 2); must divide T.
        patch_size: spatial patch side P; must divide H and W.
        in_channels: channels C.
        dim, depth, num_heads, cls_token, mlp_ratio, dropout: as :class:`VolumeViT`.
    """

    def __init__(
        self,
        frames: int = 8,
        image_size: int | Sequence[int] = 16,
        tubelet: int = 2,
        patch_size: int = 4,
        in_channels: int = 3,
        dim: int = 48,
        depth: int = 2,
        num_heads: int = 4,
        cls_token: bool = False,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
    ) -> None:
        hw = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        super().__init__(
            (frames, hw[0], hw[1]),
            (tubelet, patch_size, patch_size),
            in_channels,
            dim,
            depth,
            num_heads,
            cls_token,
            mlp_ratio,
            dropout,
        )

    def _to_volume(self, x: Tensor) -> Tensor:
        t, h, w = self.volume_size
        _check_input("VideoViT", x, (t, self.in_channels, h, w))
        return x.transpose(1, 2)  # (B, T, C, H, W) -> (B, C, T, H, W)


__all__ = [
    "ConvStemVideoViT",
    "MaskedOutput",
    "Masking",
    "VideoViT",
    "VolumeViT",
    "num_kept",
    "random_masking",
    "sincos_1d",
    "sincos_3d",
    "unshuffle",
]


class ConvStemVideoViT(VideoViT):
    """:class:`VideoViT` whose tube embedding is a small convolutional stem.

    Per frame, two stride-2 stages of (3 × 3 convolution, BatchNorm, ReLU), then a
    convolution of (tubelet, P/4, P/4) with the same stride: the same token grid as
    the plain tube embedding. A plain ViT trained from scratch on a few thousand
    small clips barely learns to see digits; this one does (the point of Xiao et
    al., "Early convolutions help transformers see better").

    Args: as :class:`VideoViT`; ``patch_size`` must be a multiple of 4.
        stem_width: channels of the first stage (the second has twice as many).
    """

    def __init__(self, *args: Any, stem_width: int = 8, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tubelet, patch_h, patch_w = (
            s // g for s, g in zip(self.volume_size, self.grid, strict=True)
        )
        if patch_h % 4 or patch_w % 4:
            raise ConfigError(f"a conv stem needs a patch side divisible by 4, got {patch_h}")
        width = stem_width
        last = (tubelet, patch_h // 4, patch_w // 4)

        def stage(c_in: int, c_out: int) -> list[nn.Module]:
            conv = nn.Conv3d(c_in, c_out, (1, 3, 3), (1, 2, 2), (0, 1, 1), bias=False)
            return [conv, nn.BatchNorm3d(c_out), nn.ReLU(inplace=True)]

        self.patch_embed = nn.Sequential(  # type: ignore[assignment]
            *stage(self.in_channels, width),
            *stage(width, 2 * width),
            nn.Conv3d(2 * width, self.dim, last, stride=last),
        )
