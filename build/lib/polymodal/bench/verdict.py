"""Verdicts with uncertainty: each criterion part is an effect with a 95 % interval.

A claim check compares quantities (ours vs a baseline, a statistic vs a threshold).
Each comparison is a :class:`Part`: an estimate, its 95 % bootstrap interval and
the margin the claim needs it to clear. The verdict is read off the intervals:

- **holds** when every part's interval lies entirely on the claimed side of its
  margin;
- **does not hold** when some part's interval lies entirely on the wrong side;
- **inconclusive** otherwise: the difference is inside the noise.

Intervals come from a paired bootstrap over test items, pooled across seeds
(:data:`METHOD`): a replicate resamples the items of every seed with replacement,
the same indices for the method and its baseline, computes the per-seed
statistic and averages it over seeds; the interval is the 2.5th to 97.5th
percentile of :data:`RESAMPLES` replicates. A statistic that is not a per-item
mean (Spearman ρ, a contribution m, macro-F1) is recomputed on each replicate
by :func:`bootstrap`. The bootstrap generator is seeded, so a report's intervals
are reproducible from its per-item results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

Verdict = Literal["holds", "does not hold", "inconclusive"]
VERDICTS: tuple[Verdict, ...] = ("holds", "does not hold", "inconclusive")
RESAMPLES = 2000
LEVEL = 0.95
METHOD = (
    f"{LEVEL:.0%} intervals from a paired bootstrap over test items ({RESAMPLES:,} "
    "replicates): each replicate resamples the items of every seed with replacement, "
    "the same items for the method and its baseline, and averages the per-seed "
    "statistic over seeds; statistics that are not per-item means are recomputed "
    "on each replicate."
)


@dataclass(frozen=True)
class Interval:
    """A point estimate and its two-sided interval."""

    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class Part:
    """One part of a criterion: ``estimate`` must clear ``margin`` on the claimed side.

    Args:
        name: what is compared, e.g. ``"ABPEM − READ accuracy"``.
        estimate: the measured effect or statistic.
        low: lower end of its 95 % interval.
        high: upper end of its 95 % interval.
        margin: the value the claim needs the effect to clear.
        above: True when the claim needs the effect above the margin, False below.
    """

    name: str
    estimate: float
    low: float
    high: float
    margin: float = 0.0
    above: bool = True

    @classmethod
    def of(cls, name: str, interval: Interval, margin: float = 0.0, above: bool = True) -> Part:
        """A part from an :class:`Interval`."""
        return cls(name, interval.estimate, interval.low, interval.high, margin, above)

    @property
    def verdict(self) -> Verdict:
        clears = self.low > self.margin if self.above else self.high < self.margin
        fails = self.high < self.margin if self.above else self.low > self.margin
        return "holds" if clears else "does not hold" if fails else "inconclusive"

    @property
    def clearance(self) -> float:
        """How far the interval's near end lies on the claimed side of the margin."""
        return self.low - self.margin if self.above else self.margin - self.high

    def describe(self, digits: int = 3) -> str:
        """``"name +0.012 [+0.004, +0.020] (needs > 0)"`` for tables."""
        sign = ">" if self.above else "<"
        return (
            f"{self.name} {self.estimate:+.{digits}f} "
            f"[{self.low:+.{digits}f}, {self.high:+.{digits}f}] "
            f"(needs {sign} {self.margin:+.{digits}f})"
        )


def decide(parts: Sequence[Part]) -> Verdict:
    """The verdict of a criterion made of ``parts`` (see the module doc).

    Raises:
        ValueError: no parts (a criterion must compare something).
    """
    if not parts:
        raise ValueError("a verdict needs at least one criterion part")
    verdicts = [part.verdict for part in parts]
    if "does not hold" in verdicts:
        return "does not hold"
    return "holds" if all(v == "holds" for v in verdicts) else "inconclusive"


def deciding_part(parts: Sequence[Part]) -> Part:
    """The part a reader should see beside the verdict: the first part that fails,
    else the first inconclusive one, else the one that clears its margin by least."""
    verdict = decide(parts)
    if verdict == "holds":
        return min(parts, key=lambda p: p.clearance)
    return next(p for p in parts if p.verdict == verdict)


def _as_items(values: Sequence[ArrayLike]) -> list[np.ndarray]:
    arrays = [np.asarray(v, dtype=np.float64).reshape(-1) for v in values]
    if not arrays or any(a.size == 0 for a in arrays):
        raise ValueError("every seed needs at least one test item")
    if any(not np.isfinite(a).all() for a in arrays):
        raise ValueError("per-item results contain NaN or infinite values")
    return arrays


def _percentiles(replicates: np.ndarray, estimate: float) -> Interval:
    tail = 100 * (1 - LEVEL) / 2
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return Interval(float(estimate), float(low), float(high))


def paired_difference(
    ours: Sequence[ArrayLike],
    baseline: Sequence[ArrayLike],
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Interval:
    """Mean per-item difference ``ours − baseline`` over seeds, with its interval.

    Args:
        ours: one (N_s,) array of per-item scores per seed (e.g. 1.0 = correct).
        baseline: the baseline's scores on the same items, in the same order.
        resamples: bootstrap replicates.
        seed: seed of the bootstrap generator.

    Returns:
        The mean over seeds of the per-seed mean difference, and its interval.
    """
    a, b = _as_items(ours), _as_items(baseline)
    if len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a, b, strict=True)):
        raise ValueError(
            "paired items: ours and baseline need one array per seed with equal shapes, got "
            f"{[x.shape for x in a]} vs {[y.shape for y in b]}"
        )
    rng = np.random.default_rng(seed)
    replicates = np.zeros(resamples)
    for x, y in zip(a, b, strict=True):
        diff = x - y
        # (R, N) item indices drawn with replacement: one replicate per row.
        replicates += diff[rng.integers(0, diff.size, (resamples, diff.size))].mean(axis=1)
    replicates /= len(a)
    estimate = float(np.mean([(x - y).mean() for x, y in zip(a, b, strict=True)]))
    return _percentiles(replicates, estimate)


def bootstrap(
    statistic: Callable[[list[np.ndarray]], float],
    sizes: Sequence[int],
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Interval:
    """Interval of any statistic of the items, recomputed on resampled items.

    Args:
        statistic: maps one index array per seed (into that seed's items) to a number;
            called once with every item (the estimate) and once per replicate.
        sizes: number of items of each seed.
        resamples: bootstrap replicates.
        seed: seed of the bootstrap generator.
    """
    if not sizes or min(sizes) < 1:
        raise ValueError(f"every seed needs at least one item, got sizes {list(sizes)}")
    rng = np.random.default_rng(seed)
    estimate = statistic([np.arange(n) for n in sizes])
    replicates = np.array(
        [statistic([rng.integers(0, n, n) for n in sizes]) for _ in range(resamples)]
    )
    if not np.isfinite(replicates).all():
        raise ValueError("the bootstrapped statistic is NaN or infinite on some replicates")
    return _percentiles(replicates, estimate)


def mean_over_seeds(
    values: Sequence[ArrayLike], resamples: int = RESAMPLES, seed: int = 0
) -> Interval:
    """Mean of per-item scores (mean over seeds of each seed's item mean) and its interval."""
    arrays = _as_items(values)
    return paired_difference(arrays, [np.zeros_like(a) for a in arrays], resamples, seed)
