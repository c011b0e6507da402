"""DivPrune (arXiv 2503.02175): diversity-based visual-token pruning.

Library API (selection on visual tokens of shape (B, M, D)):

- :func:`~.select.divprune` — the greedy max-min selection, sorted kept indices;
- :func:`~.select.random_tokens`, :func:`~.select.attention_tokens`,
  :func:`~.select.uniform_tokens` — the baselines; :func:`~.select.select_tokens`
  dispatches by name;
- :func:`~.select.keep_count` — K = round(r·M).

On Hugging Face LLaVA models use :func:`~.llava.prune_and_generate` (and the FLOP
model :func:`~.llava.prefill_flops`). FastV, which prunes inside the language
model after layer K, is :mod:`.fastv` (``method="fastv"`` in ``prune_and_generate``).
The claim check lives in :mod:`.claim` (imported by ``polymodal bench``).
"""

from polymodal.methods.divprune.select import (
    METHODS,
    attention_tokens,
    cosine_distance,
    divprune,
    greedy_max_min,
    keep_count,
    random_tokens,
    select_tokens,
    uniform_tokens,
)

__all__ = [
    "METHODS",
    "cosine_distance",
    "divprune",
    "attention_tokens",
    "greedy_max_min",
    "keep_count",
    "random_tokens",
    "select_tokens",
    "uniform_tokens",
]
