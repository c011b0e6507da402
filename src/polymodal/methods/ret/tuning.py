"""Choosing how widely a :class:`~polymodal.methods.ret.index.TokenIndex` searches.

A search setting (``nprobe``, ``probe``, ``rerank``) trades agreement with exact
late-interaction scoring for speed. :func:`try_settings` answers validation queries
one at a time — as a server answers them — under every setting of a grid, measuring
the share of the exact top k each returns and the queries per second;
:func:`choose` then takes the *fastest* setting that returns at least a given share
(else the most agreeing one, the faster of equals).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from polymodal.errors import ConfigError
from polymodal.methods.ret.index import TokenIndex


@dataclass(frozen=True)
class Trial:
    """One search setting and what it gave on the validation queries.

    Args:
        subquantizers: PQ code bytes of the index searched.
        nprobe, probe, rerank: the search setting (see
            :class:`~polymodal.methods.ret.index.IndexSettings`).
        agreement: share of the exact top k the index returned.
        queries_per_second: one query at a time.
    """

    subquantizers: int
    nprobe: int
    probe: int
    rerank: int
    agreement: float
    queries_per_second: float


def answer(search: Callable[[Tensor], Tensor], queries: Tensor) -> tuple[Tensor, float]:
    """Rows found for each of the (B, Q, E) ``queries``, asked one at a time, and the
    seconds per query; ``search`` maps (1, Q, E) tokens to (1, k) rows."""
    started = time.perf_counter()
    rows = torch.cat([search(queries[i : i + 1]) for i in range(len(queries))])
    return rows, (time.perf_counter() - started) / len(queries)


def agreement(found: Tensor, exact: Tensor, k: int = 5) -> float:
    """Share of the exact top ``k`` that ``found``'s top ``k`` also holds.

    Args:
        found, exact: (B, ≥k) document rows, best first.
    """
    return float((found[:, :k, None] == exact[:, None, :k]).any(dim=1).float().mean())


def hits_at(found: Tensor, target: Tensor, k: int = 5) -> Tensor:
    """(B,) 1.0 where the target is among the first ``k`` of ``found`` (B, ≥k)."""
    return (found[:, :k] == target[:, None]).any(dim=1).float()


def try_settings(
    index: TokenIndex,
    queries: Tensor,
    exact: Tensor,
    nprobe: Iterable[int],
    probe: Iterable[int],
    rerank: Iterable[int],
    k: int = 5,
) -> list[Trial]:
    """Every setting of the grid ``nprobe × probe × rerank`` on the validation queries.

    Args:
        index: the index (its setting is left at the last one tried).
        queries: (B, Q, E) validation query tokens.
        exact: (B, ≥k) their exact top documents.
    """
    trials = []
    for n, p, r in itertools.product(nprobe, probe, rerank):
        index.set_search(n, p, r)
        found, seconds = answer(lambda q: index.search(q, k=k)[1], queries)
        trials.append(
            Trial(index.settings.subquantizers, n, p, r, agreement(found, exact, k), 1 / seconds)
        )
    return trials


def choose(trials: Iterable[Trial], bar: float) -> Trial:
    """The fastest trial whose agreement reaches ``bar``; if none does, the most
    agreeing one (the fastest among equals)."""
    trials = list(trials)
    if not trials:
        raise ConfigError("no index setting was tried; give at least one value per grid axis")
    passing = [t for t in trials if t.agreement >= bar]
    if passing:
        return max(passing, key=lambda t: t.queries_per_second)
    return max(trials, key=lambda t: (t.agreement, t.queries_per_second))
