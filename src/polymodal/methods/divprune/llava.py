"""DivPrune on Hugging Face LLaVA models: visual-token pruning, generation and the FLOP model.

Works on any ``transformers.LlavaForConditionalGeneration`` — a real checkpoint a
user has locally, or the small models built from
:class:`polymodal.hf.llava.SmallLlavaConfig`. The prompt holds one ``<image>``
placeholder per visual token (as the LLaVA processor writes it). Pruning happens
once, before the language model's first layer:

1. ``model.get_image_features`` gives the M visual tokens after the projector
   (:func:`polymodal.hf.llava.image_features`);
2. a selector (:mod:`polymodal.methods.divprune.select`) keeps K of them;
3. :func:`prune_inputs` drops the placeholders of the other M − K, embeds the
   text, writes the kept tokens into the remaining placeholders (in their original
   order) and renumbers positions contiguously;
4. the model runs (or ``generate``\\ s) on ``inputs_embeds`` without
   ``pixel_values``, so prefill and KV cache shrink in every layer.

Example::

    from polymodal.methods.divprune.llava import prune_and_generate

    out = prune_and_generate(model, input_ids, pixel_values, attention_mask,
                             keep_ratio=0.098, method="divprune", max_new_tokens=32)
    out.sequences   # (B, new tokens)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, NamedTuple

import torch
from torch import Tensor

from polymodal.errors import ConfigError
from polymodal.hf.llava import image_features, image_token_mask, positions_from_mask
from polymodal.methods.divprune.select import keep_count, select_tokens

# --------------------------------------------------------------------------- pruning


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
    is_image = image_token_mask(model, input_ids, M)
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
def eager_attention(model: Any) -> Iterator[None]:
    """Run the language model with eager attention (the only kind that returns weights)."""
    language_model = model.model.language_model
    previous = language_model.config._attn_implementation
    language_model.set_attn_implementation("eager")
    try:
        yield
    finally:
        language_model.set_attn_implementation(previous)


@torch.no_grad()
def last_token_attention(
    model: Any,
    input_ids: Tensor,
    attention_mask: Tensor | None,
    features: Tensor,
    layer: int = 2,
) -> Tensor:
    """Attention from the last prompt token to each visual token at one LM layer.

    The unpruned prompt runs through the language model once with eager attention;
    the score of a visual token is its attention weight from the last position in
    layer ``layer`` (0-based), averaged over heads. FastV ranks by layer K−1's
    scores *inside* the model (:mod:`polymodal.methods.divprune.fastv`); selecting
    with them before layer 0 (``method="attention"``) is a pre-filter, not FastV.

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
        raise ConfigError(
            f"attention layer {layer} does not exist: the model has {num_layers} layers"
        )
    B, M = features.shape[:2]
    everything = torch.arange(M, device=features.device).expand(B, M)
    full = prune_inputs(model, input_ids, attention_mask, features, everything)
    with eager_attention(model):
        out = model.model.language_model(
            inputs_embeds=full.inputs_embeds,
            attention_mask=full.attention_mask,
            position_ids=full.position_ids,
            output_attentions=True,
            use_cache=False,
        )
    weights = out.attentions[layer][:, :, -1].mean(dim=1)  # (B, H, T, T) -> (B, T), last query
    return weights[image_token_mask(model, input_ids, M)].view(B, M)


def select_visual_tokens(
    model: Any,
    method: str,
    input_ids: Tensor,
    attention_mask: Tensor | None,
    features: Tensor,
    keep_ratio: float,
    generator: torch.Generator | None = None,
    attention_layer: int = 2,
) -> Tensor:
    """Which visual tokens ``method`` keeps at ``keep_ratio``: (B, K) sorted indices."""
    keep = keep_count(features.shape[1], keep_ratio)
    scores = None
    if method == "attention":
        scores = last_token_attention(model, input_ids, attention_mask, features, attention_layer)
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
        method: ``"divprune"``, ``"random"``, ``"attention"``, ``"uniform"`` (pruned
            before layer 0) or ``"fastv"`` (pruned after layer 2,
            :func:`polymodal.methods.divprune.fastv.fastv_generate`).
        generator: random source for ``"random"``.
        **generate_kwargs: passed to ``model.generate`` (e.g. ``max_new_tokens``).

    Returns:
        :class:`PrunedGeneration`.
    """
    if method == "fastv":
        from polymodal.methods.divprune.fastv import fastv_generate

        return fastv_generate(
            model, input_ids, pixel_values, attention_mask, keep_ratio, **generate_kwargs
        )
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
