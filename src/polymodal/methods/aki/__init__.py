"""AKI (arXiv 2503.02597): modality-mutual attention for decoder-only VLMs.

Image tokens come before the question, so under a causal mask they never see it.
Modality-mutual attention (MMA) lets every image token also attend to the
question that follows it — never to the answer — with one 4D mask and no new
parameters.

Library API:

- :func:`~polymodal.modules.masks.modality_spans` — image, question, answer and
  padding tokens of a batch; :func:`~polymodal.modules.masks.mma_mask` /
  :func:`~polymodal.modules.masks.causal_mask` /
  :func:`~polymodal.modules.masks.attention_mask_4d` — the (B, 1, T, T) additive
  masks (generic builders in :mod:`polymodal.modules.masks`, re-exported here);
- :func:`~.mask_function.mma_overlay` / :func:`~.mask_function.transformers_mma_mask`
  — the same rule as a ``transformers`` mask function;
- :func:`~polymodal.modules.masks.vlm_attention_mask` — the mask of a training or
  evaluation batch (answer marked by ``labels``);
- :func:`~.generate.mma_generate` — MMA prefill, then cached greedy decoding, on
  any ``LlavaForConditionalGeneration``.
"""

from polymodal.methods.aki.generate import mma_generate
from polymodal.methods.aki.mask_function import mma_overlay, transformers_mma_mask

# The mask builders are generic (modules layer: the VLM recipe uses them too);
# they stay part of AKI's public API.
from polymodal.modules.masks import (
    ATTENTION_KINDS,
    ModalitySpans,
    allowed_pairs,
    answer_start_from_labels,
    attention_mask_4d,
    causal_mask,
    mma_mask,
    modality_spans,
    vlm_attention_mask,
)

__all__ = [
    "ATTENTION_KINDS",
    "ModalitySpans",
    "allowed_pairs",
    "answer_start_from_labels",
    "attention_mask_4d",
    "causal_mask",
    "mma_generate",
    "mma_mask",
    "mma_overlay",
    "modality_spans",
    "transformers_mma_mask",
    "vlm_attention_mask",
]
