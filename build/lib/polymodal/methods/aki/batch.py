"""Attention masks for VQA training and evaluation batches.

Training sequences mark the answer in ``labels`` (the answer tokens and what
follows carry their ids, the prompt -100), so the answer starts at the first
labelled column. One call gives the mask for either rule; pass it as the model's
``attention_mask`` with positions from the 2D mask::

    from polymodal.hf.llava import positions_from_mask
    from polymodal.methods.aki import vlm_attention_mask

    mask = vlm_attention_mask("mma", batch.input_ids, batch.attention_mask,
                              image_token_id, labels=batch.labels, dtype=model.dtype)
    out = model(input_ids=batch.input_ids, pixel_values=batch.pixel_values,
                attention_mask=mask,
                position_ids=positions_from_mask(batch.attention_mask),
                labels=batch.labels, use_cache=False)

For evaluation on the prompt alone leave ``labels`` out: every real token is then
prompt, as in a prefill.
"""

from __future__ import annotations

import torch
from torch import Tensor

from polymodal.errors import DataError
from polymodal.methods.aki.mask import attention_mask_4d, modality_spans

IGNORE_INDEX = -100
"""Label of the tokens the loss skips (the prompt)."""


def answer_start_from_labels(labels: Tensor, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """The first labelled column of each row: (B,) long; T for a row without labels.

    A row without any label has no answer, so all of it counts as prompt; such a
    row adds nothing to the loss.

    Args:
        labels: (B, T) target ids, ``ignore_index`` where no loss is taken.
        ignore_index: the label of unscored tokens.
    """
    if labels.dim() != 2:
        raise DataError(f"labels must have shape (B, T), got {tuple(labels.shape)}")
    labelled = labels != ignore_index
    T = labels.shape[1]
    first = labelled.long().argmax(dim=-1)
    return torch.where(labelled.any(dim=-1), first, torch.full_like(first, T))


def vlm_attention_mask(
    attention: str,
    input_ids: Tensor,
    attention_mask: Tensor | None,
    image_token_id: int,
    labels: Tensor | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """The (B, 1, T, T) additive mask of a VQA batch under ``attention``.

    Args:
        attention: ``"causal"`` or ``"mma"``.
        input_ids: (B, T) sequences (left or right padded).
        attention_mask: (B, T) 1 = token, 0 = padding; None means no padding.
        image_token_id: id of the ``<image>`` placeholder
            (``model.config.image_token_id``).
        labels: (B, T) with the answer marked (not -100); None for prompts only.
            Everything from the first labelled column on counts as answer, so a
            row should hold one question: in a multi-turn row the image would see
            only the first question (later questions have attended to an answer).
        dtype: the model's floating dtype.

    Returns:
        (B, 1, T, T) float mask: 0 = attend, ``finfo(dtype).min`` = blocked.
    """
    start = None if labels is None else answer_start_from_labels(labels)
    spans = modality_spans(input_ids, attention_mask, image_token_id, answer_start=start)
    return attention_mask_4d(spans, attention, dtype)
