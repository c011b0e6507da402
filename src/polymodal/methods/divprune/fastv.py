"""FastV as FastV does it: every token through the first K language-model layers,
then only the visual tokens the last token attends to most.

FastV (Chen et al., 2024) prunes *inside* the language model, not before it:

1. layers ``0 … K−1`` run on the whole prompt, every visual token included;
2. the visual tokens are ranked by the attention they receive from the last
   prompt token in layer ``K−1`` (the last layer that saw them all), averaged
   over heads;
3. from layer ``K`` on only the top ``k`` visual tokens (and every text token)
   remain; kept tokens keep their original positions (RoPE is not renumbered).

So the dropped tokens have already been read by the text tokens in the first K
layers, and only layers ``K … L−1`` get cheaper (:func:`fastv_prefill_flops`).
DivPrune, by contrast, prunes once before layer 0
(:mod:`polymodal.methods.divprune.llava`).

It works on any ``transformers.LlavaForConditionalGeneration`` (a local
checkpoint or our small model): hooks on the decoder layers drop the tokens as
the model's own forward runs, so nothing of the model is re-implemented.

Example::

    from polymodal.methods.divprune.fastv import fastv_next_token_logits

    out = fastv_next_token_logits(model, input_ids, attention_mask, features, keep=56, layer=2)
    out.logits    # (B, V) the next token after the prompt
    out.kept      # (B, k) visual tokens that layers >= 2 saw
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import torch
from torch import Tensor

from polymodal.errors import ConfigError
from polymodal.hf.llava import image_token_mask
from polymodal.methods.divprune.llava import (
    PrefillFlops,
    eager_attention,
    layer_flops,
    next_token_logits,
    prune_inputs,
)

DEFAULT_LAYER = 2
"""FastV's K: prune after the second layer (the FastV paper's default)."""


class FastVOutput(NamedTuple):
    """What :func:`fastv_next_token_logits` returns.

    Attributes:
        logits: (B, V) logits of the token after the prompt.
        kept: (B, k) sorted indices (into the M visual tokens) kept from layer K on.
        scores: (B, M) attention from the last prompt token in layer K−1, mean over heads.
        lengths: tokens each decoder layer saw, in layer order (T for layers < K).
    """

    logits: Tensor
    kept: Tensor
    scores: Tensor
    lengths: list[int]


def _gather(x: Tensor | None, index: Tensor, dim: int) -> Tensor | None:
    """``x`` at positions ``index`` (B, T') along ``dim``; None stays None."""
    if x is None:
        return None
    B, kept = index.shape
    x = x.expand(B, *x.shape[1:])  # a batch of one (e.g. shared RoPE) serves every row
    view = [B] + [1] * (x.dim() - 1)
    view[dim] = kept
    size = list(x.shape)
    size[dim] = kept
    return x.gather(dim, index.view(view).expand(size))


def _slice_layer_inputs(args: tuple, kwargs: dict, index: Tensor, prune_hidden: bool):
    """A decoder layer's inputs at the kept positions ``index`` (B, T')."""
    if prune_hidden:
        hidden = args[0] if args else kwargs["hidden_states"]
        hidden = _gather(hidden, index, 1)
        if args:
            args = (hidden, *args[1:])
        else:
            kwargs["hidden_states"] = hidden
    mask = kwargs.get("attention_mask")
    if isinstance(mask, Tensor) and mask.dim() == 4:  # (B, 1, T, T) additive or boolean
        mask = _gather(_gather(mask, index, 2), index, 3)
        kwargs["attention_mask"] = mask
    elif mask is not None and not isinstance(mask, Tensor):
        raise ConfigError(
            f"FastV needs a tensor attention mask, got {type(mask).__name__}; "
            "run the language model with eager or sdpa attention"
        )
    if kwargs.get("position_ids") is not None:
        kwargs["position_ids"] = _gather(kwargs["position_ids"], index, 1)
    if kwargs.get("position_embeddings") is not None:
        kwargs["position_embeddings"] = tuple(
            _gather(part, index, 1) for part in kwargs["position_embeddings"]
        )
    return args, kwargs


@contextmanager
def fastv_hooks(
    model: Any,
    is_image: Tensor,
    keep: int,
    layer: int,
    record: dict[str, Any],
    kept: Tensor | None = None,
) -> Iterator[None]:
    """Install FastV on ``model``'s language model for the forwards inside the block.

    Args:
        model: a ``LlavaForConditionalGeneration`` (eager attention at layer K−1).
        is_image: (B, T) True at the visual tokens of the prompt.
        keep: k, visual tokens kept from layer ``layer`` on.
        layer: K, in 1 … L−1.
        record: filled with ``scores`` (B, M), ``kept`` (B, k) and ``lengths``.
        kept: (B, k) a selection made earlier (decoding after FastV's prefill:
            later tokens see the visual tokens the prompt kept), or None to rank.
    """
    layers = model.model.language_model.layers
    if not 1 <= layer < len(layers):
        raise ConfigError(
            f"FastV layer K={layer} must be in 1..{len(layers) - 1}: the first K layers see "
            f"every token and at least one layer sees the pruned ones ({len(layers)} layers)"
        )
    B, M = is_image.shape[0], int(is_image[0].sum())
    state: dict[str, Tensor] = {}
    record["lengths"] = []

    def keep_attention(_module: Any, _args: Any, output: Any) -> None:
        weights = output[1] if isinstance(output, tuple) else None
        if weights is None:
            raise ConfigError("FastV needs attention weights: run with eager attention")
        state["scores"] = weights[:, :, -1].float().mean(dim=1)  # (B, T) from the last token

    def before_layer(index: int):
        def hook(_module: Any, args: tuple, kwargs: dict):
            hidden = args[0] if args else kwargs["hidden_states"]
            if index == layer:
                scores = state["scores"][is_image].view(B, M)
                chosen = scores.topk(keep, dim=-1).indices.sort(dim=-1).values  # (B, k)
                chosen = chosen if kept is None else kept
                stays = ~is_image
                rows = torch.arange(B, device=chosen.device)[:, None]
                stays[rows, _positions(is_image).gather(1, chosen)] = True
                state["index"] = stays.nonzero()[:, 1].view(B, -1)  # (B, T − M + k) in order
                record["scores"], record["kept"] = scores, chosen
            if index >= layer:
                args, kwargs = _slice_layer_inputs(args, kwargs, state["index"], index == layer)
                hidden = args[0] if args else kwargs["hidden_states"]
            record["lengths"].append(int(hidden.shape[1]))
            return args, kwargs

        return hook

    handles = [layers[layer - 1].self_attn.register_forward_hook(keep_attention)]
    handles += [
        block.register_forward_pre_hook(before_layer(i), with_kwargs=True)
        for i, block in enumerate(layers)
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _positions(is_image: Tensor) -> Tensor:
    """(B, M) sequence positions of the visual tokens, in order."""
    return is_image.nonzero()[:, 1].view(is_image.shape[0], -1)


@torch.no_grad()
def fastv_next_token_logits(
    model: Any,
    input_ids: Tensor,
    attention_mask: Tensor | None,
    features: Tensor,
    keep: int,
    layer: int = DEFAULT_LAYER,
    kept: Tensor | None = None,
) -> FastVOutput:
    """The next-token logits of a LLaVA prompt with FastV pruning at layer ``layer``.

    Args:
        model: a ``LlavaForConditionalGeneration``.
        input_ids: (B, T) prompts with M ``<image>`` placeholders each (left padding).
        attention_mask: (B, T) or None.
        features: (B, M, D) visual tokens (:func:`polymodal.hf.llava.image_features`).
        keep: k visual tokens kept from layer K on.
        layer: K.
        kept: (B, k) use this selection instead of ranking (see :func:`fastv_hooks`).

    Returns:
        :class:`FastVOutput`.
    """
    B, M = features.shape[:2]
    if not 1 <= keep <= M:
        raise ConfigError(f"FastV keeps 1..{M} visual tokens, got {keep}")
    everything = torch.arange(M, device=features.device).expand(B, M)
    full = prune_inputs(model, input_ids, attention_mask, features, everything)
    is_image = image_token_mask(model, input_ids, M)
    record: dict[str, Any] = {}
    with eager_attention(model), fastv_hooks(model, is_image, keep, layer, record, kept):
        logits = next_token_logits(model, full)  # the hooks prune as the model runs
    return FastVOutput(logits, record["kept"], record["scores"], record["lengths"])


@torch.no_grad()
def fastv_generate(
    model: Any,
    input_ids: Tensor,
    pixel_values: Tensor,
    attention_mask: Tensor | None = None,
    keep_ratio: float = 0.098,
    layer: int = DEFAULT_LAYER,
    max_new_tokens: int = 16,
    **unused: Any,
) -> Any:
    """Greedy decoding with FastV: the prompt's ranking at layer K picks the visual
    tokens that layers ≥ K see for the whole answer, as FastV's KV cache would hold.

    Each step re-runs the prompt and the answer so far (no KV cache: the layers
    before and after K hold different tokens), so this serves evaluation, not speed.

    Args:
        model: a ``LlavaForConditionalGeneration``.
        input_ids: (B, T) prompts, M ``<image>`` placeholders each, left-padded.
        pixel_values: (B, 3, H, W) images.
        attention_mask: (B, T) or None.
        keep_ratio: fraction of the M visual tokens kept from layer K on.
        layer: K.
        max_new_tokens: answer length limit (stops early when every row said EOS).
        **unused: other ``generate`` options (sampling is not supported: greedy).

    Returns:
        :class:`polymodal.methods.divprune.llava.PrunedGeneration`.
    """
    from polymodal.hf.llava import image_features
    from polymodal.methods.divprune.llava import PrunedGeneration
    from polymodal.methods.divprune.select import keep_count

    if unused.get("do_sample"):
        raise ConfigError("FastV generation is greedy: drop do_sample=True")
    features = image_features(model, pixel_values)
    keep = keep_count(features.shape[1], keep_ratio)
    ids = input_ids
    mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
    eos = model.generation_config.eos_token_id
    done = torch.zeros(len(ids), dtype=torch.bool, device=ids.device)
    kept, new = None, []
    for _ in range(max_new_tokens):
        out = fastv_next_token_logits(model, ids, mask, features, keep, layer, kept)
        kept = out.kept
        token = out.logits.argmax(dim=-1)  # (B,)
        new.append(token)
        ids = torch.cat([ids, token[:, None]], dim=1)
        mask = torch.cat([mask, torch.ones_like(token)[:, None]], dim=1)
        if eos is not None:
            done |= torch.isin(token, torch.as_tensor(eos, device=token.device))
        if bool(done.all()):
            break
    return PrunedGeneration(torch.stack(new, dim=1), kept)


def fastv_prefill_flops(
    text_config: Any, text_tokens: int, visual_tokens: int, kept: int, layer: int = DEFAULT_LAYER
) -> PrefillFlops:
    """Prefill FLOPs with FastV: K layers on every token, L − K on the kept ones.

    Args:
        text_config: the LM config (``hidden_size``, ``intermediate_size``,
            ``num_hidden_layers``).
        text_tokens: prompt tokens that are not visual.
        visual_tokens: M.
        kept: k.
        layer: K.
    """
    d, m = text_config.hidden_size, text_config.intermediate_size
    layers = text_config.num_hidden_layers
    every = layer_flops(text_tokens + visual_tokens, d, m)
    pruned = layer * every + (layers - layer) * layer_flops(text_tokens + kept, d, m)
    return PrefillFlops(layers * every, pruned)
