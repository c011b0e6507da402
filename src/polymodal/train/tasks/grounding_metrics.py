"""KLD, SIM and NSS as the affordance-grounding literature computes them (AGD20K, LOCATE).

Per sample, with P the predicted and Q the ground-truth map over N pixels:

- both maps are normalised to sum 1 (``x / (Σx + ε)``);
- ``KLD = Σ Q · log(Q / (P + ε) + ε)`` (lower is better);
- ``SIM = Σ min(P, Q)`` (in [0, 1], higher is better);
- ``NSS``: the prediction z-scored (population std) and averaged over the pixels
  where the ground truth, scaled to [0, 1] by its min and max, exceeds 0.1.

These differ from the fixation-style functions of :mod:`.saliency` in the ε inside
KLD's logarithm and in NSS's binarised ground truth; the numbers they give are the
ones affordance papers report. A ground-truth map that sums to zero is an error: its
metrics are undefined.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from polymodal.errors import DataError
from polymodal.train.tasks.saliency import similarity

EPS = 1e-12
NSS_THRESHOLD = 0.1


def _flat_pair(predicted: Tensor, truth: Tensor) -> tuple[Tensor, Tensor]:
    """(B, N) maps normalised to sum 1, after checking shapes and the truth's mass."""
    if predicted.shape != truth.shape:
        raise DataError(
            f"prediction {tuple(predicted.shape)} and ground truth {tuple(truth.shape)} "
            "maps must have the same shape (B, H, W)"
        )
    p, q = predicted.flatten(1).double(), truth.flatten(1).double()
    empty = q.sum(dim=1) <= 0
    if empty.any():
        raise DataError(
            f"ground-truth heatmap {int(empty.nonzero()[0])} of the batch sums to 0; "
            "drop it or give it a positive region"
        )
    return p / (p.sum(dim=1, keepdim=True) + EPS), q / (q.sum(dim=1, keepdim=True) + EPS)


def grounding_kld(predicted: Tensor, truth: Tensor) -> Tensor:
    """(B,) ``Σ Q log(Q / (P + ε) + ε)`` of (B, H, W) non-negative maps (module doc)."""
    p, q = _flat_pair(predicted, truth)
    return (q * torch.log(q / (p + EPS) + EPS)).sum(dim=1)


def grounding_sim(predicted: Tensor, truth: Tensor) -> Tensor:
    """(B,) ``Σ min(P, Q)`` of (B, H, W) non-negative maps."""
    p, q = _flat_pair(predicted, truth)
    return similarity(p, q)


def grounding_nss(predicted: Tensor, truth: Tensor) -> Tensor:
    """(B,) mean z-scored prediction over the pixels where min-max scaled truth > 0.1."""
    p, q = _flat_pair(predicted, truth)
    z = (p - p.mean(dim=1, keepdim=True)) / (p.std(dim=1, unbiased=False, keepdim=True) + EPS)
    low, high = q.amin(dim=1, keepdim=True), q.amax(dim=1, keepdim=True)
    fixations = ((q - low) / (high - low + EPS) > NSS_THRESHOLD).double()
    return (z * fixations).sum(dim=1) / (fixations.sum(dim=1) + EPS)


class _MeanOfSamples(Metric):
    """Mean over every sample seen of one per-sample grounding score."""

    full_state_update = False
    total: Tensor
    count: Tensor

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state(
            "total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum"
        )
        self.add_state("count", default=torch.tensor(0), dist_reduce_fx="sum")

    def score(self, predicted: Tensor, truth: Tensor) -> Tensor:
        raise NotImplementedError

    def update(self, predicted: Tensor, truth: Tensor) -> None:
        """Add a batch of (B, H, W) predicted and ground-truth maps."""
        values = self.score(predicted, truth)
        self.total += values.sum()
        self.count += values.numel()

    def compute(self) -> Tensor:
        return (self.total / self.count).float()


class KLD(_MeanOfSamples):
    """Mean :func:`grounding_kld`; lower is better."""

    higher_is_better = False

    def score(self, predicted: Tensor, truth: Tensor) -> Tensor:
        return grounding_kld(predicted, truth)


class SIM(_MeanOfSamples):
    """Mean :func:`grounding_sim`; higher is better."""

    higher_is_better = True

    def score(self, predicted: Tensor, truth: Tensor) -> Tensor:
        return grounding_sim(predicted, truth)


class NSS(_MeanOfSamples):
    """Mean :func:`grounding_nss`; higher is better."""

    higher_is_better = True

    def score(self, predicted: Tensor, truth: Tensor) -> Tensor:
        return grounding_nss(predicted, truth)
