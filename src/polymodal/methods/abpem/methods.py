"""Test-time adaptation objectives: none, Tent, READ and ABPEM.

Each method names the parameters it adapts by default and computes its loss from one
adaptation forward (a :class:`~polymodal.methods.abpem.model.AVFusionOutput` over the
current batch, plus cached samples for ABPEM). With p_b = softmax(logits_b) the
prediction of sample b of a batch of B:

============ ================================= ===============================================
method       adapts (default)                  loss
============ ================================= ===============================================
``none``     nothing                           —
``tent``     every normalisation layer's       mean_b H(p_b)
             affine weight and bias, encoders
             included (``params="norm"``)
``read``     fusion attention q/k/v            mean_b(−p_max,b log p_max,b) − H(softmax(Σ_b p_b))
``abpem``    fusion attention q/k/v            mean_b PEM_k(p_b) − H(mean_b p_b) + w·L_AB
                                               (+ 16 cached samples)
============ ================================= ===============================================

The balance terms keep the batch's predictions spread over the classes (against
collapse). READ's is the entropy of a *softmax of the summed probabilities*, as in
READ's official code (``p_sum = softmax(outputs).sum(0)``, ``loss_bal = H(softmax(p_sum))``;
its ``p_max (1 − log p_max + log e⁻¹)`` is −p_max log p_max); ABPEM's is the entropy of
the batch-mean prediction (the paper's L_bal). With a single sample in the adaptation
forward either would only flatten that one prediction, so it is left out then. PEM
sums −p log p over the ``k`` largest class probabilities of each sample; L_AB is
:func:`~polymodal.methods.abpem.gap.bootstrapping_loss`.

Tent adapts the affine parameters of every LayerNorm, BatchNorm and GroupNorm of the
model, the encoders' included, as in the Tent paper (Wang et al., ICLR 2021); its
update therefore back-propagates through the encoders and needs a full forward per
batch (:meth:`~polymodal.methods.abpem.adapt.TestTimeAdapter.step`). READ and ABPEM
adapt only parameters after the encoders, so their encoder output can be computed
once per batch and shared (``step_encoded``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from polymodal.errors import ConfigError
from polymodal.methods.abpem.gap import bootstrapping_loss
from polymodal.methods.abpem.model import AVFusionOutput


def entropy(logits: Tensor) -> Tensor:
    """(B, C) logits -> (B,) entropy of the softmax, in nats."""
    log_p = logits.log_softmax(dim=-1)
    return -(log_p.exp() * log_p).sum(dim=-1)


def principal_entropy(logits: Tensor, k: int) -> Tensor:
    """(B, C) logits -> (B,) the entropy terms −p log p of the ``k`` most probable classes."""
    log_p = logits.log_softmax(dim=-1)
    terms = -(log_p.exp() * log_p)  # (B, C)
    top = log_p.topk(min(k, logits.shape[-1]), dim=-1).indices
    return terms.gather(-1, top).sum(dim=-1)


def confidence_entropy(logits: Tensor) -> Tensor:
    """(B, C) logits -> (B,) READ's −p_max log p_max."""
    log_p_max = logits.log_softmax(dim=-1).max(dim=-1).values
    return -log_p_max.exp() * log_p_max


def balance(logits: Tensor) -> Tensor:
    """(B, C) logits -> scalar H(mean_b p_b), the entropy of the batch-mean prediction (ABPEM)."""
    mean = logits.softmax(dim=-1).mean(dim=0)
    return -(mean * mean.clamp_min(1e-12).log()).sum()


def summed_balance(logits: Tensor) -> Tensor:
    """(B, C) logits -> scalar H(softmax(Σ_b p_b)), READ's balance term.

    The summed probabilities (C,) go through a second softmax before the entropy, as in
    READ's official code. Like :func:`balance` it peaks (at log C) when the mean
    prediction is uniform, but its scale depends on B, since the sums lie in [0, B].
    """
    log_q = logits.softmax(dim=-1).sum(dim=0).log_softmax(dim=-1)  # (C,)
    return -(log_q.exp() * log_q).sum()


def default_top_k(num_classes: int) -> int:
    """ABPEM's k: 15 % of the classes, rounded half up, at least 2 (k = 1 is READ's term).

    10 classes give 2, 50 give 8 (the paper's Kinetics-Sounds runs use 7 and 8).
    """
    return max(2, int(0.15 * num_classes + 0.5))


@dataclass(frozen=True)
class Method:
    """A test-time adaptation method: which parameters, what loss, how large a cache.

    Attributes:
        name: registry name.
        params: default parameter selection (see ``TestTimeAdapter``).
        needs_attention: whether the loss reads the fusion attention logits.
        cache_size: encoder outputs of this many recent samples from earlier batches
            join the adaptation forward (0: the current batch only).
    """

    name: ClassVar[str] = "none"
    params: ClassVar[str] = "none"
    needs_attention: ClassVar[bool] = False
    cache_size: int = 0

    def objective(self, out: AVFusionOutput) -> tuple[Tensor, dict[str, float]]:
        """The loss to minimise and its named terms (floats, for logging)."""
        raise NotImplementedError(f"{self.name} does not adapt")


@dataclass(frozen=True)
class NoAdaptation(Method):
    """The source model, unchanged."""


@dataclass(frozen=True)
class Tent(Method):
    """Tent (Wang et al., ICLR 2021): minimise the mean prediction entropy."""

    name: ClassVar[str] = "tent"
    params: ClassVar[str] = "norm"

    def objective(self, out: AVFusionOutput) -> tuple[Tensor, dict[str, float]]:
        loss = entropy(out.logits).mean()
        return loss, {"entropy": loss.item()}


def _balance_term(logits: Tensor, summed: bool = False) -> Tensor:
    """A balance term (:func:`summed_balance` or :func:`balance`), zero with one sample
    (where it would only flatten that prediction)."""
    if logits.shape[0] < 2:
        return logits.new_zeros(())
    return summed_balance(logits) if summed else balance(logits)


@dataclass(frozen=True)
class READ(Method):
    """READ (Yang et al., ICLR 2024): confident predictions, balanced over the batch.

    L = mean_b(−p_max,b log p_max,b) − H(softmax(Σ_b p_b)), as in READ's official code.
    """

    name: ClassVar[str] = "read"
    params: ClassVar[str] = "fusion_qkv"

    def objective(self, out: AVFusionOutput) -> tuple[Tensor, dict[str, float]]:
        confidence = confidence_entropy(out.logits).mean()
        bal = _balance_term(out.logits, summed=True)
        return confidence - bal, {"confidence": confidence.item(), "balance": bal.item()}


@dataclass(frozen=True)
class ABPEM(Method):
    """ABPEM (Zhao et al., AAAI 2025): principal entropy, balance, attention bootstrapping.

    L = mean_b PEM_k(p_b) − H(mean_b p_b) + w·L_AB, each term with its weight below.

    Attributes:
        top_k: classes in the principal entropy (None: :func:`default_top_k`).
        attention_weight: w on L_AB (1; the paper uses 5 in one setting).
        entropy_weight, balance_weight: weights on PEM and L_bal (1 each).
        cache_size: cached samples from earlier batches in the adaptation forward
            (16: with batches of 16, two batches per update, the ratio of the
            paper's VGGSound runs, a 64-sample cache at batch 32).
    """

    name: ClassVar[str] = "abpem"
    params: ClassVar[str] = "fusion_qkv"
    needs_attention: ClassVar[bool] = True
    top_k: int | None = None
    attention_weight: float = 1.0
    entropy_weight: float = 1.0
    balance_weight: float = 1.0
    cache_size: int = 16

    def objective(self, out: AVFusionOutput) -> tuple[Tensor, dict[str, float]]:
        if out.attention_logits is None or out.fused is None:
            raise ConfigError("ABPEM needs the fusion attention logits and the fused tokens")
        k = self.top_k or default_top_k(out.logits.shape[-1])
        pem = principal_entropy(out.logits, k).mean()
        bal = _balance_term(out.logits)
        complete = torch.stack(list(out.fused.present.values())).all(dim=0)
        ab = bootstrapping_loss(out.attention_logits, out.fused.segments, complete)
        loss = self.entropy_weight * pem - self.balance_weight * bal + self.attention_weight * ab
        return loss, {"pem": pem.item(), "balance": bal.item(), "bootstrap": ab.item()}


METHODS: dict[str, type[Method]] = {
    "none": NoAdaptation,
    "tent": Tent,
    "read": READ,
    "abpem": ABPEM,
}
"""Method classes by name."""


def make_method(name: str, **options: Any) -> Method:
    """A method by name with its options (e.g. ``make_method("abpem", top_k=3)``).

    Raises:
        ConfigError: unknown name or option.
    """
    if name not in METHODS:
        raise ConfigError(f"unknown adaptation method {name!r}; choose one of {', '.join(METHODS)}")
    try:
        return METHODS[name](**options)
    except TypeError as error:
        raise ConfigError(f"method {name!r}: {error}") from error


__all__ = [
    "ABPEM",
    "METHODS",
    "READ",
    "Method",
    "NoAdaptation",
    "Tent",
    "balance",
    "confidence_entropy",
    "default_top_k",
    "entropy",
    "make_method",
    "principal_entropy",
    "summed_balance",
]
