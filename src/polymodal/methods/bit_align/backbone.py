"""One interface over the frozen ViTs BiT-Align plugs into: ours and Hugging Face's.

A backbone embeds an image-like input with the ViT's own patch and position
embedding (:meth:`embed`, also used for the depth prompt stream) and encodes
images with a per-block hook (:meth:`encode`), optionally returning the last
block's CLS attention per head, which Text Feature Guidance ranks. Both work
through the platform's hooks: :class:`~polymodal.modules.encoders.ViTEncoder`'s
``hook`` argument and :class:`~polymodal.hf.vision_taps.VisionTaps` on
``ViTModel``, ``CLIPVisionModel`` and ``Dinov2Model``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from torch import Tensor, nn

from polymodal.errors import ConfigError
from polymodal.hf.vision_taps import VisionTaps, encoder_layers
from polymodal.modules.encoders import BlockHook, ViTEncoder


class Encoded(NamedTuple):
    """What :meth:`Backbone.encode` returns.

    Attributes:
        patches: (B, n, D) the patch tokens after the final norm (CLS removed).
        cls: (B, D) the CLS token after the final norm.
        cls_attention: (B, H, n) the last block's attention of CLS to every patch,
            per head; None unless asked for.
    """

    patches: Tensor
    cls: Tensor
    cls_attention: Tensor | None


class Backbone(nn.Module):
    """A ViT with CLS token: ``dim`` D, ``num_heads`` H, ``depth`` blocks, a
    ``grid`` (h, w) of patches, ``in_channels`` C and ``image_size`` (H, W)."""

    dim: int
    num_heads: int
    depth: int
    grid: tuple[int, int]
    in_channels: int
    image_size: tuple[int, int]

    @property
    def num_tokens(self) -> int:
        """N = CLS + h·w patches."""
        return 1 + self.grid[0] * self.grid[1]

    def embed(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, N, D): patch and position embedding, CLS first."""
        raise NotImplementedError

    def encode(self, x: Tensor, hook: BlockHook | None = None, attention: bool = False) -> Encoded:
        """Run the ViT on (B, C, H, W) images with ``hook(i, tokens)`` before block i."""
        raise NotImplementedError


class OurViT(Backbone):
    """:class:`~polymodal.modules.encoders.ViTEncoder` (with its CLS token) as a backbone."""

    def __init__(self, vit: ViTEncoder) -> None:
        super().__init__()
        if vit.cls_token is None:
            raise ConfigError("BiT-Align needs a ViTEncoder with cls_token=True")
        self.vit = vit
        self.dim, self.depth = vit.dim, len(vit.blocks)
        block: Any = vit.blocks[0]
        self.num_heads = int(block.attn.num_heads)
        self.grid, self.in_channels = vit.grid, vit.in_channels
        self.image_size = vit.image_size

    def embed(self, x: Tensor) -> Tensor:
        return self.vit.embed(x)  # type: ignore[no-any-return]

    def encode(self, x: Tensor, hook: BlockHook | None = None, attention: bool = False) -> Encoded:
        last_input: list[Tensor] = []

        def keep_last(index: int, tokens: Tensor) -> Tensor:
            tokens = tokens if hook is None else hook(index, tokens)
            if index == self.depth - 1:
                last_input.append(tokens)
            return tokens

        tokens = self.vit(x, hook=keep_last)  # (B, N, D)
        weights = None
        if attention:  # the last block once more, for its weights: (B, H, N, N)
            weights = self.vit.blocks[-1](last_input[0], return_weights=True).weights
        return Encoded(
            tokens[:, 1:], tokens[:, 0], None if weights is None else weights[:, :, 0, 1:]
        )


def _config_pair(value: Any) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[1]))


class HuggingFaceViT(Backbone):
    """A ``transformers`` ViTModel, CLIPVisionModel or Dinov2Model as a backbone.

    The model runs with the eager attention implementation so that it returns
    attention weights. CLIP's ``pre_layrnorm`` also normalises the depth stream,
    so the prompts live where the blocks' inputs do.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        encoder_layers(model)  # a clear error for a model without encoder layers
        self.model = model
        setter: Any = getattr(model, "set_attn_implementation", None)
        if setter is not None:
            setter("eager")
        config: Any = model.config
        self.vision: Any = getattr(model, "vision_model", model)
        self.dim, self.depth = int(config.hidden_size), int(config.num_hidden_layers)
        self.num_heads = int(config.num_attention_heads)
        self.image_size = _config_pair(config.image_size)
        patch = _config_pair(config.patch_size)
        self.grid = (self.image_size[0] // patch[0], self.image_size[1] // patch[1])
        self.in_channels = int(getattr(config, "num_channels", 3))

    def embed(self, x: Tensor) -> Tensor:
        tokens = self.vision.embeddings(x)
        tokens = tokens[0] if isinstance(tokens, tuple) else tokens
        pre_norm = getattr(self.vision, "pre_layrnorm", None)
        return tokens if pre_norm is None else pre_norm(tokens)  # type: ignore[no-any-return]

    def encode(self, x: Tensor, hook: BlockHook | None = None, attention: bool = False) -> Encoded:
        with VisionTaps(self.model, hook=hook):
            out = self.model(pixel_values=x, output_attentions=attention)
        tokens = out.last_hidden_state  # (B, N, D)
        weights = out.attentions[-1][:, :, 0, 1:] if attention else None
        return Encoded(tokens[:, 1:], tokens[:, 0], weights)


def as_backbone(model: nn.Module) -> Backbone:
    """``model`` wrapped as a :class:`Backbone` (a backbone is returned as it is)."""
    if isinstance(model, Backbone):
        return model
    if isinstance(model, ViTEncoder):
        return OurViT(model)
    return HuggingFaceViT(model)
