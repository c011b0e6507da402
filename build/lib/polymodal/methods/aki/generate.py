"""Greedy generation with modality-mutual attention on any ``LlavaForConditionalGeneration``.

AKI's inference: the prompt is prefilled once under the MMA mask (image tokens
see the question), filling the KV cache; every generated token then attends
causally to the cache and to the tokens generated before it. An image token's
keys and values are computed in the prefill and never again, so no image token
sees a generated token, just as no image token sees the answer in training.

``model.generate`` cannot do this: it grows a 2D mask step by step and has no
way to carry a 4D prefill mask. :func:`mma_generate` is a small greedy loop
instead; :func:`~.reference.generate_without_cache` recomputes the whole
sequence at every step under the same rule and gives the same tokens.

Example::

    from polymodal.methods.aki import mma_generate

    new_tokens = mma_generate(model, input_ids, attention_mask, pixel_values,
                              max_new_tokens=8, eos_token_id=eos)   # (B, N)
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import Tensor

from polymodal.errors import ConfigError, DataError
from polymodal.hf.llava import positions_from_mask
from polymodal.methods.aki.mask import attention_mask_4d, modality_spans


def check_left_padded(attention_mask: Tensor) -> None:
    """Generation appends tokens on the right, so prompts must end with a real token."""
    if not bool(attention_mask[:, -1].bool().all()):
        raise DataError(
            "generation needs left-padded prompts (the last column must be real tokens); "
            "pad on the left, e.g. tokenizer.padding_side = 'left'"
        )


def fill_token(eos_token_id: int | None, pad_token_id: int | None) -> int:
    """The id finished rows get: ``pad_token_id``, else the eos id (0 when neither is set)."""
    if pad_token_id is not None:
        return pad_token_id
    return eos_token_id if eos_token_id is not None else 0


def next_tokens(
    logits: Tensor, finished: Tensor, eos_token_id: int | None, pad_token_id: int
) -> tuple[Tensor, Tensor]:
    """Greedy pick; rows that already produced ``<eos>`` get padding.

    Args:
        logits: (B, V) next-token logits.
        finished: (B,) bool, rows that are done.
        eos_token_id: id that ends a row, or None to never stop early.
        pad_token_id: token given to finished rows.

    Returns:
        (B,) chosen ids and the updated (B,) ``finished``.
    """
    chosen = torch.where(finished, pad_token_id, logits.argmax(dim=-1))
    if eos_token_id is not None:
        finished = finished | (chosen == eos_token_id)
    return chosen, finished


def _cache_argument(model: Any) -> str:
    """The name ``forward`` takes the KV cache under (``cache`` from transformers 5.2x on)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _returned_cache(output: Any) -> Any:
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


@torch.no_grad()
def mma_generate(
    model: Any,
    input_ids: Tensor,
    attention_mask: Tensor | None,
    pixel_values: Tensor,
    max_new_tokens: int,
    attention: str = "mma",
    eos_token_id: int | None = None,
    pad_token_id: int | None = None,
) -> Tensor:
    """Prefill under ``attention``'s mask, then decode greedily with the KV cache.

    Args:
        model: a ``LlavaForConditionalGeneration``.
        input_ids: (B, T) left-padded prompts with the ``<image>`` placeholders.
        attention_mask: (B, T) 1 = token, 0 = padding; None means no padding.
        pixel_values: the images, as the model expects them.
        max_new_tokens: N, the most tokens to generate.
        attention: ``"mma"`` or ``"causal"`` for the prefill.
        eos_token_id: stop a row at this id (None: always N tokens).
        pad_token_id: what finished rows get (default: the eos id).

    Returns:
        (B, n) new token ids, n <= N (fewer when every row has finished).
    """
    if max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    check_left_padded(attention_mask)
    spans = modality_spans(input_ids, attention_mask, model.config.image_token_id)
    positions = positions_from_mask(attention_mask)
    out = model(
        input_ids=input_ids,
        pixel_values=pixel_values,
        attention_mask=attention_mask_4d(spans, attention, model.dtype),
        position_ids=positions,
        use_cache=True,
        logits_to_keep=1,
    )
    cache_argument = _cache_argument(model)
    pad = fill_token(eos_token_id, pad_token_id)
    finished = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
    chosen: list[Tensor] = []
    for _ in range(max_new_tokens):
        token, finished = next_tokens(out.logits[:, -1], finished, eos_token_id, pad)
        chosen.append(token)
        if bool(finished.all()) or len(chosen) == max_new_tokens:
            break
        # Decode: the new token attends causally to the cache (a plain 2D mask).
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones(len(token), 1)], -1)
        positions = positions[:, -1:] + 1
        out = model(
            input_ids=token[:, None],
            attention_mask=attention_mask,
            position_ids=positions,
            use_cache=True,
            **{cache_argument: _returned_cache(out)},
        )
    return torch.stack(chosen, dim=1)
