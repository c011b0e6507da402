"""The ``<audio>`` placeholder: one new token, its embedding row added without moving the rest."""

from __future__ import annotations

from typing import Any

import torch

AUDIO = "<audio>"
"""The placeholder token that the adapter's K audio tokens replace."""


def add_audio_token(model: Any, tokenizer: Any) -> int:
    """Add ``<audio>`` to ``tokenizer`` and grow ``model``'s embeddings (and LM head) by it.

    Every existing id keeps its id and its embedding (and output) row; the new
    row starts at the mean of the old ones, so the new token's logit is an average
    one rather than an outlier. Idempotent: a tokenizer that already has the
    token is left as it is.

    Args:
        model: a ``transformers`` model with ``resize_token_embeddings``.
        tokenizer: a ``tokenizers.Tokenizer``.

    Returns:
        The id of ``<audio>``.
    """
    existing = tokenizer.token_to_id(AUDIO)
    if existing is not None:
        return int(existing)
    tokenizer.add_special_tokens([AUDIO])
    audio_id = int(tokenizer.token_to_id(AUDIO))
    size = tokenizer.get_vocab_size()
    old = model.get_input_embeddings().weight.shape[0]
    if audio_id != old or size != old + 1:
        raise RuntimeError(f"<audio> got id {audio_id} in a tokenizer of {size}; expected {old}")
    with torch.no_grad():
        model.resize_token_embeddings(size, mean_resizing=False)
        for matrix in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
            matrix[old:] = matrix[:old].mean(0, keepdim=True)
    return audio_id
