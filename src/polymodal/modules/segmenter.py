"""Dense prediction from a ViT: every patch token predicts its own patch of the map.

The head is SETR's "naive" decoder at its simplest: a linear layer from each token
to the P_h × P_w values of its patch, folded back into an (H, W) map of logits. Other
modalities of the sample can join through per-block hooks on the ViT (BiT-Align's
bypass prompts) without changing this head.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from torch import Tensor, nn

from polymodal.data.contract import present
from polymodal.errors import ConfigError, DataError
from polymodal.modules.encoders import ViTEncoder
from polymodal.modules.mae import unpatchify
from polymodal.modules.vit3d import VolumeViT


class DenseOutput(NamedTuple):
    """What :class:`PatchSegmenter` returns.

    Attributes:
        heatmap: (B, H, W) logits, one per pixel.
    """

    heatmap: Tensor


class PatchSegmenter(nn.Module):
    """A :class:`ViTEncoder` and a linear per-patch head.

    Args:
        modality: the batch key of the image (C, H, W).
        encoder: the ViT; its patch tokens are mapped to pixels.
    """

    def __init__(self, modality: str, encoder: ViTEncoder) -> None:
        super().__init__()
        self.modality = modality
        self.encoder = encoder
        self.patch = tuple(int(k) for k in encoder.patch_embed.kernel_size)  # (P_h, P_w)
        self.head = nn.Linear(encoder.dim, self.patch[0] * self.patch[1])

    def forward(self, batch: Mapping[str, Tensor]) -> DenseOutput:
        x = batch[self.modality]
        tokens = self.encoder(x)  # (B, N (+1), D)
        tokens = tokens[:, -self.encoder.num_patches :]  # patch tokens only
        (ph, pw), (gh, gw) = self.patch, self.encoder.grid
        values = self.head(tokens).reshape(x.shape[0], gh, gw, ph, pw)
        heatmap = values.permute(0, 1, 3, 2, 4).reshape(x.shape[0], gh * ph, gw * pw)
        return DenseOutput(heatmap)


class VolumeSegmenter(nn.Module):
    """3D dense prediction from one or more co-registered volumes (PET and CT).

    Each modality has its own :class:`~polymodal.modules.vit3d.VolumeViT` on the same
    grid; their patch tokens are summed over the modalities a sample has, and a
    linear head maps each token to the voxels of its patch.

    Args:
        encoders: ``{modality: VolumeViT}`` with equal grids and widths.
    """

    def __init__(self, encoders: Mapping[str, VolumeViT]) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict(encoders)
        first = next(iter(encoders.values()))
        self.patch = tuple(int(k) for k in first.patch_embed.kernel_size)  # (P_d, P_h, P_w)
        self.grid = first.grid
        self.head = nn.Linear(first.dim, self.patch[0] * self.patch[1] * self.patch[2])

    def forward(self, batch: Mapping[str, Tensor]) -> DenseOutput:
        total: Tensor | None = None
        for name, encoder in self.encoders.items():
            here = present(batch, name)
            if here is None:
                continue
            tokens = encoder(batch[name])[:, -encoder.num_patches :]  # (B, N, D)
            tokens = tokens * here[:, None, None].to(tokens.dtype)
            total = tokens if total is None else total + tokens
        if total is None:
            raise DataError(f"batch has none of {list(self.encoders)}; got keys {sorted(batch)}")
        values = self.head(total)  # (B, N, P)
        shape = (1, *(g * p for g, p in zip(self.grid, self.patch, strict=True)))
        return DenseOutput(unpatchify(values, self.patch, shape)[:, 0])  # (B, D, H, W)


VOLUMES = ("ct", "pet")


def build_segmenter(
    fusion: str,
    modalities: Mapping[str, Mapping[str, Any]],
    dim: int = 48,
    **vit_options: Any,
) -> PatchSegmenter | VolumeSegmenter:
    """Build a segmenter (the ``dense_prediction`` task's default): a
    :class:`VolumeSegmenter` over volume modalities (``ct``, ``pet``), else a
    :class:`PatchSegmenter` over one image.

    Args:
        fusion: unused.
        modalities: ``{modality: {"shape": [...]}}``: volumes (D, H, W), or exactly
            one image-like (C, H, W).
        dim: token width.
        **vit_options: :class:`ViTEncoder` / :class:`VolumeViT` options
            (``patch_size``, ``depth``, ...).
    """
    vit_options.setdefault("patch_size", 4)
    if modalities and all(name in VOLUMES for name in modalities):
        try:
            encoders = {
                name: VolumeViT(tuple(int(s) for s in options["shape"]), dim=dim, **vit_options)
                for name, options in modalities.items()
            }
        except TypeError as error:
            raise ConfigError(f"bad options for the volume segmenter: {error}") from error
        return VolumeSegmenter(encoders)
    if len(modalities) != 1:
        raise ConfigError(f"the default segmenter reads one image modality, got {list(modalities)}")
    ((name, options),) = modalities.items()
    shape = [int(s) for s in options.get("shape", ())]
    if len(shape) != 3:
        raise ConfigError(f"the default segmenter needs a (C, H, W) modality, {name!r} is {shape}")
    encoder = ViTEncoder(
        image_size=(shape[1], shape[2]), in_channels=shape[0], dim=dim, **vit_options
    )
    return PatchSegmenter(name, encoder)
