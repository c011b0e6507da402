"""A slow, literal reference for MMA generation (tests and checks only).

At every step the whole sequence — prompt and the tokens generated so far — runs
through the model again without a cache, under one mask: the prompt's image
tokens see the prompt's question, and the generated tokens are the answer
(causal, never seen by an image token). :func:`~.generate.mma_generate` must
pick the same tokens with one prefill and a KV cache.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from polymodal.hf.llava import positions_from_mask
from polymodal.methods.aki.generate import check_left_padded, fill_token, next_tokens
from polymodal.methods.aki.mask import attention_mask_4d, modality_spans


@torch.no_grad()
def generate_without_cache(
    model: Any,
    input_ids: Tensor,
    attention_mask: Tensor | None,
    pixel_values: Tensor,
    max_new_tokens: int,
    attention: str = "mma",
    eos_token_id: int | None = None,
    pad_token_id: int | None = None,
) -> Tensor:
    """Greedy generation that recomputes the full sequence for each new token.

    Args:
        model: a ``LlavaForConditionalGeneration``.
        input_ids: (B, T) left-padded prompts with the ``<image>`` placeholders.
        attention_mask: (B, T) 1 = token, 0 = padding; None means no padding.
        pixel_values: the images.
        max_new_tokens: N.
        attention: ``"mma"`` or ``"causal"``.
        eos_token_id: stop a row at this id (None: always N tokens).
        pad_token_id: what finished rows get (default: the eos id).

    Returns:
        (B, n) new token ids, n <= N.
    """
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    check_left_padded(attention_mask)
    prompt_end = input_ids.shape[1]  # the answer (generated tokens) starts here
    pad = fill_token(eos_token_id, pad_token_id)
    finished = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
    sequence, mask = input_ids, attention_mask
    for _ in range(max_new_tokens):
        spans = modality_spans(sequence, mask, model.config.image_token_id, answer_start=prompt_end)
        logits = model(
            input_ids=sequence,
            pixel_values=pixel_values,
            attention_mask=attention_mask_4d(spans, attention, model.dtype),
            position_ids=positions_from_mask(mask),
            use_cache=False,
            logits_to_keep=1,
        ).logits[:, -1]
        token, finished = next_tokens(logits, finished, eos_token_id, pad)
        sequence = torch.cat([sequence, token[:, None]], dim=-1)
        mask = torch.cat([mask, mask.new_ones(len(token), 1)], dim=-1)
        if bool(finished.all()):
            break
    return sequence[:, input_ids.shape[1] :]
