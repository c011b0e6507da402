"""Modality-mutual attention (MMA) masks for decoder-only vision-language models.

A LLaVA-style sequence puts the image before the question::

    [pad …] <bos> <image>×M  what color is the circle ?  red <eos> [pad …]
            └─ prompt text ┘ └ image ┘└──── question ─────┘ └ answer ┘

Under a causal mask the image tokens never see the question. MMA (AKI, arXiv
2503.02597) opens one block of the causal mask: every image token may also
attend to the prompt's text tokens that follow it (the question, up to and
including the last prompt token / assistant tag). Everything else stays causal:
image tokens among themselves, text, and the answer, which no image token ever
sees.

The rule, for query q and key k of one sample (``valid`` = not padding)::

    attend(q, k) = valid[k] and (k <= q  or  image[q] and question[k])

A sample may hold several images: each image token then sees the question tokens
after it (not the later images' tokens). A sample without image tokens gets the
plain causal mask.

**Padding.** Real tokens never attend to padding, and padding query rows attend to
nothing but themselves. A row with no key at all would give NaN under ``-inf``
and a meaningless uniform average under a finite minimum; the self-link keeps
every row finite, and no real token ever reads a padding row, so the choice
changes no output at a real position. Left and right padding work alike.

The masks are (B, 1, T, T) additive floats (0 = attend,
``torch.finfo(dtype).min`` = blocked): the form ``transformers`` passes
unchanged to every attention layer, where it *replaces* the causal and padding
masks, which is why both are built in. Pass ``position_ids`` too
(:func:`polymodal.hf.llava.positions_from_mask`): with a 4D mask the model
cannot derive positions from padding.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from polymodal.errors import ConfigError, DataError

ATTENTION_KINDS = ("causal", "mma")
"""Attention rules :func:`attention_mask_4d` builds."""


class ModalitySpans(NamedTuple):
    """Which tokens of a batch play which part; each field is (B, T) bool.

    Attributes:
        image: ``<image>`` placeholders (one per visual token).
        question: prompt text after the first image, up to the answer (the
            question and, where the format has one, the assistant tag).
        answer: real tokens from the answer start on (the answer and what follows).
        valid: real tokens, i.e. not padding.
    """

    image: Tensor
    question: Tensor
    answer: Tensor
    valid: Tensor


def _valid_tokens(input_ids: Tensor, attention_mask: Tensor | None) -> Tensor:
    if input_ids.dim() != 2:
        raise DataError(f"input_ids must have shape (B, T), got {tuple(input_ids.shape)}")
    if attention_mask is None:
        return torch.ones_like(input_ids, dtype=torch.bool)
    if attention_mask.shape != input_ids.shape:
        raise DataError(
            f"attention_mask has shape {tuple(attention_mask.shape)}, "
            f"input_ids {tuple(input_ids.shape)}: they must match"
        )
    return attention_mask.bool()


def _answer_start_from_lengths(valid: Tensor, prompt_lengths: Tensor) -> Tensor:
    """Column where the answer starts: the first real token plus the prompt length."""
    count = valid.sum(dim=-1)
    first = valid.long().argmax(dim=-1)
    last = valid.shape[1] - 1 - valid.flip(-1).long().argmax(dim=-1)
    if not bool(((last - first + 1 == count) | (count == 0)).all()):
        raise DataError(
            "prompt_lengths need the real tokens of each row in one run (left or right "
            "padding); pass answer_start (a column index) for other layouts"
        )
    if bool((prompt_lengths < 0).any() | (prompt_lengths > count).any()):
        raise DataError(
            f"prompt_lengths {prompt_lengths.tolist()} must lie in [0, real tokens "
            f"{count.tolist()}]"
        )
    return first + prompt_lengths


def modality_spans(
    input_ids: Tensor,
    attention_mask: Tensor | None,
    image_token_id: int,
    answer_start: Tensor | int | None = None,
    prompt_lengths: Tensor | None = None,
) -> ModalitySpans:
    """Find the image, question, answer and padding tokens of a batch.

    Give the answer's position either as ``answer_start`` (the column where the
    answer begins, per row) or as ``prompt_lengths`` (real prompt tokens per row;
    the real tokens must form one run, as with left or right padding). With
    neither, every real token is prompt: the form for a prefill before generation.

    Args:
        input_ids: (B, T) token ids.
        attention_mask: (B, T) 1 = token, 0 = padding; None means no padding.
        image_token_id: id of the ``<image>`` placeholder.
        answer_start: (B,) or a single column index in [0, T].
        prompt_lengths: (B,) number of real prompt tokens per row.

    Returns:
        :class:`ModalitySpans`.

    Raises:
        DataError: mismatched shapes, both answer arguments given, an answer start
            outside the sequence, or an image token inside the answer.
    """
    valid = _valid_tokens(input_ids, attention_mask)
    B, T = input_ids.shape
    if answer_start is not None and prompt_lengths is not None:
        raise DataError("give the answer position once: answer_start or prompt_lengths")
    if prompt_lengths is not None:
        start = _answer_start_from_lengths(valid, prompt_lengths.to(input_ids.device))
    elif answer_start is not None:
        start = torch.as_tensor(answer_start, device=input_ids.device).expand(B)
    else:
        start = torch.full((B,), T, device=input_ids.device)
    if bool((start < 0).any() | (start > T).any()):
        raise DataError(f"answer_start {start.tolist()} must lie in [0, {T}]")

    column = torch.arange(T, device=input_ids.device)
    in_answer = column[None, :] >= start[:, None]  # (B, T)
    image = (input_ids == image_token_id) & valid
    if bool((image & in_answer).any()):
        rows = torch.nonzero((image & in_answer).any(dim=-1)).flatten().tolist()
        raise DataError(
            f"rows {rows} have <image> tokens (id {image_token_id}) at or after the answer "
            "start; every image must come before the answer"
        )
    after_first_image = image.long().cumsum(dim=-1) > 0
    question = valid & ~in_answer & ~image & after_first_image
    return ModalitySpans(image, question, valid & in_answer, valid)


def allowed_pairs(spans: ModalitySpans, attention: str = "mma") -> Tensor:
    """Which keys each query may attend to: (B, T, T) bool, [b, q, k].

    Args:
        spans: the batch's :class:`ModalitySpans`.
        attention: ``"mma"`` (image tokens also see the question after them) or
            ``"causal"``.

    Returns:
        (B, T, T) bool, True = attend.
    """
    if attention not in ATTENTION_KINDS:
        raise ConfigError(f"attention must be one of {ATTENTION_KINDS}, got {attention!r}")
    valid = spans.valid
    T = valid.shape[1]
    lower = torch.ones(T, T, dtype=torch.bool, device=valid.device).tril()  # k <= q
    allowed = lower[None] & valid[:, None, :]  # keys must be real
    if attention == "mma":
        allowed = allowed | (spans.image[:, :, None] & spans.question[:, None, :])
    eye = torch.eye(T, dtype=torch.bool, device=valid.device)
    # Padding queries attend to themselves only: no row is empty (module doc).
    return torch.where(valid[:, :, None], allowed, eye[None])


def additive_mask(allowed: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """(B, Q, K) bool -> (B, 1, Q, K) additive float: 0 = attend, finfo(dtype).min = blocked."""
    blocked = torch.finfo(dtype).min
    mask = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return mask.masked_fill_(~allowed, blocked).unsqueeze(1)


def attention_mask_4d(
    spans: ModalitySpans, attention: str = "mma", dtype: torch.dtype = torch.float32
) -> Tensor:
    """The (B, 1, T, T) additive mask of one attention rule, causal and padding built in.

    Args:
        spans: the batch's :class:`ModalitySpans`.
        attention: ``"mma"`` or ``"causal"``; both go through the same code.
        dtype: the model's floating dtype (``model.dtype``).

    Returns:
        (B, 1, T, T) float mask for ``model(attention_mask=...)``.
    """
    return additive_mask(allowed_pairs(spans, attention), dtype)


def mma_mask(spans: ModalitySpans, dtype: torch.dtype = torch.float32) -> Tensor:
    """The modality-mutual mask: (B, 1, T, T), see :func:`attention_mask_4d`."""
    return attention_mask_4d(spans, "mma", dtype)


def causal_mask(spans: ModalitySpans, dtype: torch.dtype = torch.float32) -> Tensor:
    """The plain causal mask with padding, built like :func:`mma_mask`: (B, 1, T, T)."""
    return attention_mask_4d(spans, "causal", dtype)
