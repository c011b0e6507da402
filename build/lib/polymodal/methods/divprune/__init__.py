"""DivPrune (arXiv 2503.02175): diversity-based visual-token pruning.

Library API (selection on visual tokens of shape (B, M, D)):

- :func:`~.select.divprune` — the greedy max-min selection, sorted kept indices;
- :func:`~.select.random_tokens`, :func:`~.select.fastv_tokens`,
  :func:`~.select.uniform_tokens` — the baselines; :func:`~.select.select_tokens`
  dispatches by name;
- :func:`~.select.keep_count` — K = round(r·M).

On Hugging Face LLaVA models use :func:`polymodal.hf.llava.prune_and_generate`.
The claim check lives in :mod:`.claim` (imported by ``polymodal bench``).
"""

from polymodal.methods.divprune.select import (
    METHODS,
    cosine_distance,
    divprune,
    fastv_tokens,
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
    "fastv_tokens",
    "greedy_max_min",
    "keep_count",
    "random_tokens",
    "select_tokens",
    "uniform_tokens",
]
