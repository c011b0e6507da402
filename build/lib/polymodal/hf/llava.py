"""Visual-token pruning for Hugging Face LLaVA models, a small LLaVA config, and the FLOP model.

Works on any ``transformers.LlavaForConditionalGeneration`` — a real checkpoint a
user has locally, or the small models built from :class:`SmallLlavaConfig`. The
prompt holds one ``<image>`` placeholder per visual token (as the LLaVA processor
writes it). Pruning happens once, before the language model's first layer:

1. ``model.get_image_features`` gives the M visual tokens after the projector;
2. a selector (:mod:`polymodal.methods.divprune.select`) keeps K of them;
3. :func:`prune_inputs` drops the placeholders of the other M − K, embeds the
   text, writes the kept tokens into the remaining placeholders (in their original
   order) and renumbers positions contiguously;
4. the model runs (or ``generate``\\ s) on ``inputs_embeds`` without
   ``pixel_values``, so prefill and KV cache shrink in every layer.

Example::

    from polymodal.hf.llava import prune_and_generate

    out = prune_and_generate(model, input_ids, pixel_values, attention_mask,
                             keep_ratio=0.098, method="divprune", max_new_tokens=32)
    out.sequences   # (B, new tokens)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor

from polymodal.errors import ConfigError, DataError
from polymodal.methods.divprune.select import keep_count, select_tokens

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

    @property
    def num_visual_tokens(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_hf(self) -> Any:
        """The ``transformers.LlavaConfig``."""
        from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

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
    return LlavaForConditionalGeneration(config.to_hf())


# --------------------------------------------------------------------------- pruning


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


def _image_mask(model: Any, input_ids: Tensor, num_tokens: int) -> Tensor:
    """(B, T) bool, True at the ``<image>`` placeholders; checks M of them per row."""
    image_token_id = model.config.image_token_id
    mask = input_ids == image_token_id
    counts = mask.sum(dim=-1)
    if not bool((counts == num_tokens).all()):
        raise DataError(
            f"every prompt needs exactly {num_tokens} <image> placeholders (id {image_token_id}), "
            f"one per visual token; found {counts.tolist()}"
        )
    return mask


class PrunedInputs(NamedTuple):
    """Language-model inputs with only the kept visual tokens.

    Attributes:
        inputs_embeds: (B, T − M + K, D) text embeddings and kept visual tokens.
        attention_mask: (B, T − M + K) 1 for real tokens, 0 for (left) padding.
        position_ids: (B, T − M + K) contiguous positions, 0 on padding.
        kept: (B, K) sorted indices of the kept visual tokens.
    """

    inputs_embeds: Tensor
    attention_mask: Tensor
    position_ids: Tensor
    kept: Tensor


def positions_from_mask(attention_mask: Tensor) -> Tensor:
    """Contiguous positions of the real tokens (as ``generate`` numbers them): (B, T)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def prune_inputs(
    model: Any,
    input_ids: Tensor,
    attention_mask: Tensor | None,
    features: Tensor,
    kept: Tensor,
) -> PrunedInputs:
    """Build ``inputs_embeds`` holding only the kept visual tokens.

    Args:
        model: a ``LlavaForConditionalGeneration``.
        input_ids: (B, T) prompts with M ``<image>`` placeholders each.
        attention_mask: (B, T) 1 = token, 0 = padding; None means no padding.
        features: (B, M, D) visual tokens from :func:`image_features`.
        kept: (B, K) sorted indices into the M visual tokens.

    Returns:
        :class:`PrunedInputs`.
    """
    B, T = input_ids.shape
    M, K = features.shape[1], kept.shape[1]
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    is_image = _image_mask(model, input_ids, M)
    # Keep every text token and the first K placeholders; the kept tokens fill those.
    rank = is_image.long().cumsum(dim=-1) - 1
    stays = ~is_image | (rank < K)  # (B, T), T - M + K True per row
    ids = input_ids[stays].view(B, T - M + K)
    mask = attention_mask[stays].view(B, T - M + K)
    embeds = model.get_input_embeddings()(ids)  # (B, T', D)
    chosen = features.gather(1, kept[..., None].expand(-1, -1, features.shape[-1]))  # (B, K, D)
    slots = (ids == model.config.image_token_id)[..., None]  # (B, T', 1)
    embeds = embeds.masked_scatter(slots, chosen.to(embeds.dtype))
    return PrunedInputs(embeds, mask, positions_from_mask(mask), kept)


@contextlib.contextmanager
def _eager_attention(model: Any) -> Iterator[None]:
    """Run the language model with eager attention (the only kind that returns weights)."""
    language_model = model.model.language_model
    previous = language_model.config._attn_implementation
    language_model.set_attn_implementation("eager")
    try:
        yield
    finally:
        language_model.set_attn_implementation(previous)


@torch.no_grad()
def fastv_scores(
    model: Any,
    input_ids: Tensor,
    attention_mask: Tensor | None,
    features: Tensor,
    layer: int = 2,
) -> Tensor:
    """FastV's token ranking: attention from the last prompt token at one LM layer.

    The unpruned prompt runs through the language model once with eager attention;
    the score of a visual token is its attention weight from the last position in
    layer ``layer`` (0-based), averaged over heads.

    Args:
        model: a ``LlavaForConditionalGeneration``.
        input_ids: (B, T) prompts with M ``<image>`` placeholders each.
        attention_mask: (B, T) or None.
        features: (B, M, D) visual tokens.
        layer: which language-model layer's attention ranks the tokens.

    Returns:
        (B, M) scores.
    """
    num_layers = model.config.text_config.num_hidden_layers
    if not 0 <= layer < num_layers:
        raise ConfigError(f"FastV layer {layer} does not exist: the model has {num_layers} layers")
    B, M = features.shape[:2]
    everything = torch.arange(M, device=features.device).expand(B, M)
    full = prune_inputs(model, input_ids, attention_mask, features, everything)
    with _eager_attention(model):
        out = model.model.language_model(
            inputs_embeds=full.inputs_embeds,
            attention_mask=full.attention_mask,
            position_ids=full.position_ids,
            output_attentions=True,
            use_cache=False,
        )
    weights = out.attentions[layer][:, :, -1].mean(dim=1)  # (B, H, T, T) -> (B, T), last query
    return weights[_image_mask(model, input_ids, M)].view(B, M)


def select_visual_tokens(
    model: Any,
    method: str,
    input_ids: Tensor,
    attention_mask: Tensor | None,
    features: Tensor,
    keep_ratio: float,
    generator: torch.Generator | None = None,
    fastv_layer: int = 2,
) -> Tensor:
    """Which visual tokens ``method`` keeps at ``keep_ratio``: (B, K) sorted indices."""
    keep = keep_count(features.shape[1], keep_ratio)
    scores = None
    if method == "fastv":
        scores = fastv_scores(model, input_ids, attention_mask, features, fastv_layer)
    return select_tokens(method, features, keep, scores=scores, generator=generator)


class PrunedGeneration(NamedTuple):
    """What :func:`prune_and_generate` returns.

    Attributes:
        sequences: (B, N) generated token ids (the new tokens only).
        kept: (B, K) sorted indices of the kept visual tokens.
    """

    sequences: Tensor
    kept: Tensor


@torch.no_grad()
def prune_and_generate(
    model: Any,
    input_ids: Tensor,
    pixel_values: Tensor,
    attention_mask: Tensor | None = None,
    keep_ratio: float = 0.098,
    method: str = "divprune",
    generator: torch.Generator | None = None,
    **generate_kwargs: Any,
) -> PrunedGeneration:
    """Prune the visual tokens of a LLaVA prompt, then ``generate``.

    Args:
        model: a ``LlavaForConditionalGeneration``.
        input_ids: (B, T) prompts, M ``<image>`` placeholders each, left-padded.
        pixel_values: (B, 3, H, W) images.
        attention_mask: (B, T) or None.
        keep_ratio: fraction r of the M visual tokens to keep (K = round(r·M)).
        method: ``"divprune"``, ``"random"``, ``"fastv"`` or ``"uniform"``.
        generator: random source for ``"random"``.
        **generate_kwargs: passed to ``model.generate`` (e.g. ``max_new_tokens``).

    Returns:
        :class:`PrunedGeneration`.
    """
    features = image_features(model, pixel_values)
    kept = select_visual_tokens(
        model, method, input_ids, attention_mask, features, keep_ratio, generator
    )
    pruned = prune_inputs(model, input_ids, attention_mask, features, kept)
    generate_kwargs.setdefault("do_sample", False)
    generate_kwargs.pop("pixel_values", None)
    # No pixel_values: the images are already in inputs_embeds. (The key is left out
    # rather than set to None: transformers 5.2x's generate encodes any pixel_values
    # key it is given, None included.)
    sequences = model.generate(
        inputs_embeds=pruned.inputs_embeds, attention_mask=pruned.attention_mask, **generate_kwargs
    )
    return PrunedGeneration(sequences, kept)


@torch.no_grad()
def next_token_logits(model: Any, pruned: PrunedInputs) -> Tensor:
    """Logits of the token after the prompt, from pruned inputs: (B, V)."""
    out = model(
        inputs_embeds=pruned.inputs_embeds,
        attention_mask=pruned.attention_mask,
        position_ids=pruned.position_ids,
        logits_to_keep=1,
        use_cache=False,
    )
    return out.logits[:, -1]


# --------------------------------------------------------------------------- FLOPs


def layer_flops(tokens: int, hidden: int, intermediate: int) -> float:
    """FLOPs of one decoder layer on n tokens: 4nd² + 2n²d + 2ndm (FastV, DivPrune).

    4nd² counts the q/k/v/o projections, 2n²d the attention scores and the
    weighted sum, 2ndm the MLP (d = hidden width, m = MLP width).
    """
    n, d, m = tokens, hidden, intermediate
    return float(4 * n * d * d + 2 * n * n * d + 2 * n * d * m)


class PrefillFlops(NamedTuple):
    """Prefill FLOPs of the language model, unpruned and pruned (FLOP model above)."""

    full: float
    pruned: float

    @property
    def reduction(self) -> float:
        """Fraction of the FLOPs saved, 1 − pruned / full."""
        return 1.0 - self.pruned / self.full


def prefill_flops(
    text_config: Any, text_tokens: int, visual_tokens: int, kept: int
) -> PrefillFlops:
    """The language model's prefill FLOPs before and after keeping ``kept`` visual tokens.

    Args:
        text_config: the LM config (``hidden_size``, ``intermediate_size``,
            ``num_hidden_layers``), e.g. ``model.config.text_config``.
        text_tokens: prompt tokens that are not visual.
        visual_tokens: M.
        kept: K.
    """
    d = text_config.hidden_size
    m = text_config.intermediate_size
    layers = text_config.num_hidden_layers
    full = layers * layer_flops(text_tokens + visual_tokens, d, m)
    pruned = layers * layer_flops(text_tokens + kept, d, m)
    return PrefillFlops(full, pruned)
