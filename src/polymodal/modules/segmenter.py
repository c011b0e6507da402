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

from polymodal.errors import ConfigError
from polymodal.modules.encoders import ViTEncoder


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


def build_segmenter(
    fusion: str,
    modalities: Mapping[str, Mapping[str, Any]],
    dim: int = 48,
    **vit_options: Any,
) -> PatchSegmenter:
    """Build a :class:`PatchSegmenter` (the ``dense_prediction`` task's default).

    Args:
        fusion: unused.
        modalities: exactly one image-like ``{modality: {"shape": [C, H, W]}}``.
        dim: token width.
        **vit_options: :class:`ViTEncoder` options (``patch_size``, ``depth``, ...).
    """
    if len(modalities) != 1:
        raise ConfigError(f"the default segmenter reads one image modality, got {list(modalities)}")
    ((name, options),) = modalities.items()
    shape = [int(s) for s in options.get("shape", ())]
    if len(shape) != 3:
        raise ConfigError(f"the default segmenter needs a (C, H, W) modality, {name!r} is {shape}")
    vit_options.setdefault("patch_size", 4)
    encoder = ViTEncoder(
        image_size=(shape[1], shape[2]), in_channels=shape[0], dim=dim, **vit_options
    )
    return PatchSegmenter(name, encoder)
