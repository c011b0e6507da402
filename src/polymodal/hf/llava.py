"""Hugging Face LLaVA: a small LLaVA config and builder, and helpers any LLaVA method shares.

Works on any ``transformers.LlavaForConditionalGeneration`` — a real checkpoint a
user has locally, or the small models built from :class:`SmallLlavaConfig`. The
prompt holds one ``<image>`` placeholder per visual token (as the LLaVA processor
writes it); :func:`image_features` gives the visual tokens after the projector and
:func:`image_token_mask` finds their placeholders. Methods that act on such
models build on these: visual-token pruning in :mod:`polymodal.methods.divprune.llava`,
modality-mutual attention in :mod:`polymodal.methods.aki`.

Example::

    from polymodal.hf.llava import SmallLlavaConfig, build_small_llava, image_features

    model = build_small_llava(SmallLlavaConfig(vocab_size=40, image_token_id=4))
    features = image_features(model, pixel_values)   # (B, M, D)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from polymodal.errors import ConfigError, DataError
from polymodal.modules.conv_stem import ConvStem

VISION_STEMS = ("patch", "conv")

# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class SmallLlavaConfig:
    """A LLaVA-1.5-shaped model small enough to train on a CPU.

    A CLIP-style vision tower (patch embedding, pre-norm transformer) feeds a
    two-layer GELU projector into a Llama-style language model (RMSNorm, RoPE,
    SwiGLU). The tower's last layer is used without its CLS token
    (``vision_feature_layer=-1``, ``vision_feature_select_strategy="default"``),
    so an image gives ``(image_size / patch_size)²`` visual tokens.

    Args:
        vocab_size: language-model vocabulary size.
        image_token_id: id of the ``<image>`` placeholder.
        pad_token_id, bos_token_id, eos_token_id: special ids of the tokenizer.
        image_size: input side in pixels.
        patch_size: vision patch side in pixels.
        vision_hidden: vision tower width.
        vision_layers: vision tower depth.
        text_hidden: language-model width.
        text_layers: language-model depth.
        heads: attention heads in both towers.
        mlp_ratio: MLP hidden width as a multiple of the width, both towers.
        vision_stem: ``"patch"`` (CLIP's patch embedding: each token sees its own
            patch) or ``"conv"`` (a hybrid ViT's convolutional stem,
            :class:`~polymodal.modules.conv_stem.ConvStem`: each token also sees
            its surroundings; same number of tokens).
    """

    vocab_size: int
    image_token_id: int
    pad_token_id: int = 0
    bos_token_id: int = 2
    eos_token_id: int = 3
    image_size: int = 64
    patch_size: int = 8
    vision_hidden: int = 64
    vision_layers: int = 2
    text_hidden: int = 64
    text_layers: int = 3
    heads: int = 4
    mlp_ratio: int = 2
    vision_stem: str = "patch"

    @property
    def num_visual_tokens(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_hf(self) -> Any:
        """The ``transformers.LlavaConfig``."""
        from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

        if self.vision_stem not in VISION_STEMS:
            raise ConfigError(
                f"vision_stem must be one of {VISION_STEMS}, got {self.vision_stem!r}"
            )
        if self.image_size % self.patch_size:
            raise ConfigError(
                f"image_size ({self.image_size}) must be a multiple of patch_size "
                f"({self.patch_size})"
            )
        vision = CLIPVisionConfig(
            hidden_size=self.vision_hidden,
            intermediate_size=self.mlp_ratio * self.vision_hidden,
            num_hidden_layers=self.vision_layers,
            num_attention_heads=self.heads,
            image_size=self.image_size,
            patch_size=self.patch_size,
            num_channels=3,
            projection_dim=self.vision_hidden,
        )
        text = LlamaConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.text_hidden,
            intermediate_size=self.mlp_ratio * self.text_hidden,
            num_hidden_layers=self.text_layers,
            num_attention_heads=self.heads,
            num_key_value_heads=self.heads,
            max_position_embeddings=4 * (self.num_visual_tokens + 64),
            pad_token_id=self.pad_token_id,
            bos_token_id=self.bos_token_id,
            eos_token_id=self.eos_token_id,
            tie_word_embeddings=False,
        )
        return LlavaConfig(
            vision_config=vision,
            text_config=text,
            image_token_index=self.image_token_id,
            image_seq_length=self.num_visual_tokens,
            projector_hidden_act="gelu",
            vision_feature_select_strategy="default",
            vision_feature_layer=-1,
        )


def build_small_llava(config: SmallLlavaConfig, seed: int = 0) -> Any:
    """A randomly initialised ``LlavaForConditionalGeneration`` (nothing is downloaded)."""
    from transformers import LlavaForConditionalGeneration

    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config.to_hf())
    if config.vision_stem == "conv":
        embeddings = model.model.vision_tower.embeddings
        embeddings.patch_embedding = ConvStem(3, config.vision_hidden, config.patch_size)
    return model


# --------------------------------------------------------------------------- tokens


def image_features(model: Any, pixel_values: Tensor) -> Tensor:
    """The visual tokens after the projector, as the language model would receive them.

    Args:
        model: a ``LlavaForConditionalGeneration``.
        pixel_values: (B, 3, H, W) images, preprocessed as the model expects.

    Returns:
        (B, M, D) tokens in the language model's embedding space.
    """
    output = model.get_image_features(pixel_values=pixel_values)
    features = output if isinstance(output, Tensor) else output.pooler_output
    if isinstance(features, list | tuple):
        features = torch.stack(list(features))  # one (M, D) per image -> (B, M, D)
    return features


def image_token_mask(model: Any, input_ids: Tensor, num_tokens: int) -> Tensor:
    """Where the ``<image>`` placeholders are, checking one per visual token in each row.

    Args:
        model: a ``LlavaForConditionalGeneration`` (its ``config.image_token_id``).
        input_ids: (B, T) prompts.
        num_tokens: M, the visual tokens per image.

    Returns:
        (B, T) bool, True at the placeholders (M per row).

    Raises:
        DataError: a row without exactly M placeholders.
    """
    image_token_id = model.config.image_token_id
    mask = input_ids == image_token_id
    counts = mask.sum(dim=-1)
    if not bool((counts == num_tokens).all()):
        raise DataError(
            f"every prompt needs exactly {num_tokens} <image> placeholders (id {image_token_id}), "
            f"one per visual token; found {counts.tolist()}"
        )
    return mask


def positions_from_mask(attention_mask: Tensor) -> Tensor:
    """Contiguous positions of the real tokens (as ``generate`` numbers them): (B, T)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
