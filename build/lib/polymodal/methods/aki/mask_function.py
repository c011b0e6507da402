"""The MMA rule as a ``transformers`` mask function.

``transformers.masking_utils.create_causal_mask`` takes an ``or_mask_function``
``(batch_idx, head_idx, q_idx, kv_idx) -> bool`` that it ORs with the causal rule
before ANDing the result with the padding of the keys. The MMA opening is exactly
such an overlay: ``image[q] and question[k]``. Going through
``create_causal_mask`` gives the mask in the form the model's attention
implementation wants — additive float for ``eager``, bool for ``sdpa``, a
``BlockMask`` for ``flex_attention`` — which the tensor form of
:mod:`.mask` cannot give for flex attention.

Only padding query rows differ from :func:`~.mask.mma_mask`:
``create_causal_mask`` masks padding keys alone, so a padding query row sees the
real tokens before it (right padding) or no key at all (left padding; ``eager``
then averages the row uniformly and ``sdpa`` returns zeros). No real token reads
a padding row, so every real row and every output at a real position are the
same in both forms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from polymodal.methods.aki.mask import ModalitySpans

MaskFunction = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]


def mma_overlay(spans: ModalitySpans) -> MaskFunction:
    """The MMA opening as an ``or_mask_function`` for ``create_causal_mask``.

    Args:
        spans: the batch's :class:`~.mask.ModalitySpans`.

    Returns:
        ``f(batch_idx, head_idx, q_idx, kv_idx)``: True where an image query may
        see a question key.
    """
    image, question = spans.image, spans.question

    def opening(batch_idx: Tensor, head_idx: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        return image[batch_idx, q_idx] & question[batch_idx, kv_idx]

    return opening


def transformers_mma_mask(
    text_config: Any, spans: ModalitySpans, dtype: torch.dtype = torch.float32
) -> Any:
    """The MMA mask built by ``create_causal_mask`` for the config's attention implementation.

    Args:
        text_config: the language model's config (``model.config.text_config``);
            its ``_attn_implementation`` picks the mask form.
        spans: the batch's :class:`~.mask.ModalitySpans`.
        dtype: the model's floating dtype.

    Returns:
        A (B, 1, T, T) float (eager) or bool (sdpa) tensor, or a ``BlockMask``
        (flex_attention), to pass as the model's ``attention_mask``.
    """
    from transformers.masking_utils import create_causal_mask

    B, T = spans.valid.shape
    shape_only = torch.empty(B, T, 0, dtype=dtype, device=spans.valid.device)  # sizes and dtype
    return create_causal_mask(
        config=text_config,
        inputs_embeds=shape_only,
        attention_mask=spans.valid,
        cache=None,
        or_mask_function=mma_overlay(spans),
    )
