"""A masked autoencoder (MAE) over images, volumes or video clips.

The encoder sees a random subset of patches; a light decoder fills the hidden ones
in with a mask token and predicts their pixel values. Images (C, H, W) are encoded
by the :class:`~polymodal.modules.encoders.ViTEncoder` a classifier fine-tunes (its
keys under ``encoder.``), ``ct``/``pet`` volumes (D, H, W) by
:class:`~polymodal.modules.vit3d.VolumeViT` and ``video`` (T, C, H, W) by
:class:`~polymodal.modules.vit3d.VideoViT`. Targets are cut from every input seen
as a (C, D, H, W) volume (an image is a one-slice volume), so one code path serves
all three.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from polymodal.errors import ConfigError
from polymodal.modules.attention import TransformerBlock
from polymodal.modules.encoders import ViTEncoder
from polymodal.modules.vit3d import VideoViT, VolumeViT, sincos_3d, unshuffle

VOLUMES = ("ct", "pet")


class ReconstructionOutput(NamedTuple):
    """What :class:`MaskedAutoencoder` returns.

    Attributes:
        prediction: (B, N, P) predicted values of every patch (P = voxels × channels).
        target: (B, N, P) true values of every patch (normalised per patch when the
            model's ``norm_pix`` is on).
        mask: (B, N) 1.0 where the patch was hidden from the encoder.
        reconstruction: the prediction folded back to the input's layout, with the
            visible patches taken from the input (for looking at, not for the loss);
            per-patch normalised values when the model's ``norm_pix`` is on.
    """

    prediction: Tensor
    target: Tensor
    mask: Tensor
    reconstruction: Tensor


def patchify(volume: Tensor, patch: Sequence[int]) -> Tensor:
    """Cut (B, C, D, H, W) into patches in the encoder's token order.

    Args:
        volume: (B, C, D, H, W).
        patch: (P_d, P_h, P_w), each dividing its axis.

    Returns:
        (B, N, P_d·P_h·P_w·C), N patches in row-major (d, h, w) order, each patch's
        values ordered (p_d, p_h, p_w, C).
    """
    b, c, d, h, w = volume.shape
    pd, ph, pw = patch
    x = volume.reshape(b, c, d // pd, pd, h // ph, ph, w // pw, pw)
    x = x.permute(0, 2, 4, 6, 3, 5, 7, 1)  # (B, d, h, w, pd, ph, pw, C)
    return x.reshape(b, (d // pd) * (h // ph) * (w // pw), pd * ph * pw * c)


def unpatchify(patches: Tensor, patch: Sequence[int], shape: Sequence[int]) -> Tensor:
    """Inverse of :func:`patchify`: (B, N, P) back to (B, C, D, H, W) of ``shape`` (C, D, H, W)."""
    c, d, h, w = shape
    pd, ph, pw = patch
    b = patches.shape[0]
    x = patches.reshape(b, d // pd, h // ph, w // pw, pd, ph, pw, c)
    x = x.permute(0, 7, 1, 4, 2, 5, 3, 6)  # (B, C, d, pd, h, ph, w, pw)
    return x.reshape(b, c, d, h, w)


class MaskedAutoencoder(nn.Module):
    """MAE on one modality.

    Args:
        modality: the batch key it reads (``image``, ``video``, ``ct``, ``pet``, ...).
        encoder: a :class:`ViTEncoder` (images), :class:`VolumeViT` or :class:`VideoViT`
            sized for the input; anything with ``encode_visible``, ``patch_embed``,
            ``grid``, ``dim``, ``in_channels`` and ``cls_token``.
        decoder_dim: decoder width (divisible by 6, for the sin-cos positions).
        decoder_depth: decoder blocks.
        num_heads: decoder attention heads.
        mask_ratio: share of patches hidden per sample.
        norm_pix: predict per-patch normalised values (MAE's better target).
    """

    def __init__(
        self,
        modality: str,
        encoder: ViTEncoder | VolumeViT,
        decoder_dim: int = 48,
        decoder_depth: int = 1,
        num_heads: int = 4,
        mask_ratio: float = 0.75,
        norm_pix: bool = False,
    ) -> None:
        super().__init__()
        self.modality = modality
        self.encoder = encoder
        self.mask_ratio = mask_ratio
        self.norm_pix = norm_pix
        conv = encoder.patch_embed
        kernel = tuple(int(k) for k in conv.kernel_size)
        self.patch = kernel if len(kernel) == 3 else (1, *kernel)  # an image: one slice deep
        grid = tuple(encoder.grid) if len(encoder.grid) == 3 else (1, *encoder.grid)
        patch_values = self.patch[0] * self.patch[1] * self.patch[2] * encoder.in_channels
        self.project = nn.Linear(encoder.dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(decoder_dim))
        self.register_buffer("pos_embed", sincos_3d(grid, decoder_dim)[None], persistent=False)
        self.blocks = nn.ModuleList(
            TransformerBlock(decoder_dim, num_heads) for _ in range(decoder_depth)
        )
        self.norm = nn.LayerNorm(decoder_dim)
        self.head = nn.Linear(decoder_dim, patch_values)
        nn.init.normal_(self.mask_token, std=0.02)

    def as_volume(self, x: Tensor) -> Tensor:
        """The input as (B, C, D, H, W), the layout patches are cut from."""
        if isinstance(self.encoder, VideoViT):
            return x.transpose(1, 2)  # (B, T, C, H, W) -> (B, C, T, H, W)
        if self.modality in VOLUMES:
            return x.unsqueeze(1)  # (B, D, H, W) -> (B, 1, D, H, W)
        return x.unsqueeze(2)  # (B, C, H, W) -> (B, C, 1, H, W)

    def _encoder_input(self, x: Tensor) -> Tensor:
        return x.unsqueeze(1) if self.modality in VOLUMES else x  # volumes gain C = 1

    def forward(self, batch: Mapping[str, Tensor]) -> ReconstructionOutput:
        """Hide patches, encode the rest, predict every patch.

        Args:
            batch: holds ``batch[modality]``; the mask is drawn from the global
                generator (the task seeds it per step).

        Returns:
            :class:`ReconstructionOutput`.
        """
        if self.modality not in batch:
            raise ConfigError(
                f"MaskedAutoencoder reads {self.modality!r}, the batch has {sorted(batch)}"
            )
        x = batch[self.modality]
        encoded = self.encoder.encode_visible(self._encoder_input(x), self.mask_ratio)
        tokens = self.project(encoded.last)
        if self.encoder.cls_token is not None:
            tokens = tokens[:, 1:]
        t = unshuffle(tokens, self.mask_token, encoded.ids_restore) + self.pos_embed
        for block in self.blocks:
            t = block(t).output
        prediction = self.head(self.norm(t))  # (B, N, P)
        volume = self.as_volume(x)
        target = patchify(volume, self.patch)
        if self.norm_pix:
            mean, var = target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1e-6).sqrt()
        mixed = torch.where(encoded.mask[..., None].bool(), prediction, target)
        folded = unpatchify(mixed, self.patch, volume.shape[1:])
        # In the input's layout; with norm_pix, in per-patch normalised values.
        return ReconstructionOutput(prediction, target, encoded.mask, self._from_volume(folded))

    def _from_volume(self, volume: Tensor) -> Tensor:
        if isinstance(self.encoder, VideoViT):
            return volume.transpose(1, 2)
        return volume.squeeze(1) if self.modality in VOLUMES else volume.squeeze(2)


def build_mae(
    fusion: str,
    modalities: Mapping[str, Mapping[str, Any]],
    dim: int = 48,
    patch_size: int = 4,
    tubelet: int = 2,
    depth: int = 2,
    num_heads: int = 4,
    decoder_dim: int = 48,
    decoder_depth: int = 1,
    mask_ratio: float = 0.75,
    norm_pix: bool = False,
) -> MaskedAutoencoder:
    """Build an MAE from config dicts (the ``masked_reconstruction`` task's default).

    Args:
        fusion: unused; one MAE encodes one modality (pair two with cross-attention
            decoders in a method that needs it).
        modalities: exactly one ``{modality: {"shape": [...]}}``.
        dim: encoder width (divisible by 6).
        patch_size: spatial patch side (and depth side for volumes).
        tubelet: frames per video tube.
        depth, num_heads: encoder blocks and heads.
        decoder_dim, decoder_depth: decoder width and blocks.
        mask_ratio: share of patches hidden.
        norm_pix: normalise each target patch.
    """
    if len(modalities) != 1:
        raise ConfigError(
            f"masked_reconstruction builds one MAE per modality; got {list(modalities)} "
            "(keep one under model.modalities)"
        )
    ((name, options),) = modalities.items()
    shape = [int(s) for s in options.get("shape", ())]
    if name == "video":
        t, c, h, w = shape
        encoder: ViTEncoder | VolumeViT = VideoViT(
            t, (h, w), tubelet, patch_size, c, dim, depth, num_heads
        )
    elif name in VOLUMES:
        encoder = VolumeViT(shape, patch_size, 1, dim, depth, num_heads)
    elif len(shape) == 3:
        c, h, w = shape
        encoder = ViTEncoder((h, w), patch_size, c, dim, depth, num_heads)
    else:
        raise ConfigError(f"masked_reconstruction cannot patch {name!r} of shape {shape}")
    return MaskedAutoencoder(
        name, encoder, decoder_dim, decoder_depth, num_heads, mask_ratio, norm_pix
    )
