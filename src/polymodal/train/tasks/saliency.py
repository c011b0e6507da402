"""The saliency-map metrics of the affordance and fixation literature, per sample.

Both maps are (B, N) over the N pixels of a sample. ``predicted`` must be a
distribution (non-negative, summing to 1); ``truth`` is normalised here.
"""

from __future__ import annotations

from torch import Tensor

EPS = 1e-12


def _distribution(x: Tensor) -> Tensor:
    return x / x.sum(dim=-1, keepdim=True).clamp_min(EPS)


def kld(predicted: Tensor, truth: Tensor) -> Tensor:
    """(B,) KL(truth ‖ predicted) = Σ t·log(t / p), in nats; 0 for equal maps, lower is better."""
    t, p = _distribution(truth), predicted
    return (t * ((t + EPS) / (p + EPS)).log()).sum(dim=-1)


def similarity(predicted: Tensor, truth: Tensor) -> Tensor:
    """(B,) SIM = Σ min(p, t) of the two distributions; 1 for equal maps, 0 for disjoint ones."""
    return predicted.minimum(_distribution(truth)).sum(dim=-1)


def nss(predicted: Tensor, truth: Tensor) -> Tensor:
    """(B,) normalised scanpath saliency: the mean of the standardised prediction,
    weighted by the truth map (its positive pixels count in proportion to their value).
    0 for a prediction unrelated to the truth; not bounded above."""
    z = (predicted - predicted.mean(dim=-1, keepdim=True)) / predicted.std(
        dim=-1, keepdim=True
    ).clamp_min(EPS)
    return (z * _distribution(truth)).sum(dim=-1)
