"""Slow, literal references for DivPrune's greedy selection (tests and benchmarks only).

:func:`divprune_python` transcribes the greedy description with Python loops over
plain lists, one sample at a time; :func:`divprune_loop` is the published code's
shape: a torch loop that recomputes every candidate's distance to the kept set
from the kept rows of the distance matrix at each pick. Both return the picks in
the order they are made; the fast batched version is
:func:`polymodal.methods.divprune.select.greedy_max_min`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from polymodal.methods.divprune.select import cosine_distance


def divprune_python(features: Tensor, keep: int) -> list[int]:
    """Greedy max-min picks of one sample with Python loops.

    Args:
        features: (M, D) visual tokens.
        keep: K.

    Returns:
        The K picked indices in pick order.
    """
    unit = F.normalize(features.double(), dim=-1)
    distance: list[list[float]] = (1.0 - unit @ unit.T).tolist()  # M lists of M
    m = len(distance)
    for i in range(m):
        distance[i][i] = 0.0

    def nearest_neighbour(j: int) -> float:
        return sorted(distance[i][j] for i in range(m))[1] if m > 1 else 0.0

    kept = [max(range(m), key=nearest_neighbour)]  # max keeps the first of equals
    while len(kept) < keep:
        best, best_score = -1, -1.0
        for j in range(m):
            if j in kept:
                continue
            score = min(distance[i][j] for i in kept)
            if score > best_score:
                best, best_score = j, score
        kept.append(best)
    return kept


def divprune_loop(features: Tensor, keep: int) -> Tensor:
    """Greedy max-min picks of one sample, the published loop's way.

    The distances are :func:`cosine_distance`'s; only the loop differs.

    Args:
        features: (M, D) visual tokens.
        keep: K.

    Returns:
        (K,) int64 picked indices in pick order.
    """
    return published_greedy(cosine_distance(features[None])[0], keep)


def published_greedy(distance: Tensor, keep: int) -> Tensor:
    """The published loop on a given (M, M) distance matrix: (K,) picks in pick order.

    Each pick recomputes every token's distance to the kept set from the kept rows.
    """
    picks = torch.empty(keep, dtype=torch.long, device=distance.device)
    for i in range(keep):
        if i == 0:
            scores = distance.topk(2, dim=0, largest=False).values[1]
        else:
            scores = distance.index_select(0, picks[:i]).min(dim=0).values
        picks[i] = scores.argmax()
    return picks
