"""Which visual tokens to keep: DivPrune's greedy max-min selection and its baselines.

Every selector returns **sorted** indices ``(B, K)`` into the M visual tokens of
each sample, so the kept tokens stay in their original order; callers gather them
and renumber positions contiguously.

DivPrune (arXiv 2503.02175) treats pruning as a max-min diversity problem: keep
the K tokens whose smallest pairwise distance is largest. The greedy solution,
on the cosine distance ``1 - cos`` between the tokens after the projector:

1. first pick the token whose nearest neighbour is farthest, i.e. the largest
   second-smallest value of its column of the distance matrix (the smallest is
   its distance 0 to itself);
2. then repeatedly add the token whose distance to its closest kept token is
   largest;
3. return the kept indices sorted into their original order.

:func:`greedy_max_min` keeps, for each token, its distance to the closest kept
token and updates it with one row of the distance matrix per pick, so the only
Python loop is over the K picks and the whole batch moves together. Ties go to
the lowest index (``torch.argmax``), so the selection is deterministic. A token
already kept is never picked again (the published loop could re-pick one when
every remaining token duplicates a kept token).

Baselines: :func:`random_tokens`, :func:`attention_tokens` (the tokens an attention
score ranks highest, e.g. FastV's ranking from
:func:`polymodal.methods.divprune.llava.last_token_attention`, applied before layer
0 — a pre-filter, not FastV, which prunes inside the language model:
:mod:`polymodal.methods.divprune.fastv`) and :func:`uniform_tokens` (strided).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from polymodal.errors import ConfigError, DataError

METHODS = ("divprune", "random", "attention", "uniform")
"""Selection methods known to :func:`select_tokens`."""


def keep_count(num_tokens: int, ratio: float) -> int:
    """K = round(ratio · M), at least 1: how many of ``num_tokens`` tokens a ratio keeps.

    Raises:
        ConfigError: a ratio outside (0, 1] or no tokens.
    """
    if not 0.0 < ratio <= 1.0 or not math.isfinite(ratio):
        raise ConfigError(f"keep ratio must be in (0, 1], got {ratio}")
    if num_tokens < 1:
        raise ConfigError(f"cannot select from {num_tokens} visual tokens")
    return max(1, min(num_tokens, round(ratio * num_tokens)))


def _check_count(num_tokens: int, keep: int) -> None:
    if not 1 <= keep <= num_tokens:
        raise ConfigError(f"cannot keep {keep} of {num_tokens} visual tokens (need 1 <= K <= M)")


def _check_finite(values: Tensor, what: str) -> None:
    """Raise for NaN/Inf: a NaN distance would overwrite a kept token's marker and the
    greedy loop would pick that token again (duplicate kept indices, no error)."""
    bad = ~torch.isfinite(values)
    if bool(bad.any()):
        sample = int(bad.flatten(1).any(dim=1).nonzero()[0])
        raise DataError(
            f"{what} contain NaN or Inf (first in sample {sample} of {values.shape[0]}); "
            "DivPrune needs finite visual-token features: check the vision tower's output"
        )


def cosine_distance(features: Tensor) -> Tensor:
    """Pairwise cosine distances ``1 - cos`` in float32, with an exact-zero diagonal.

    Features are normalised in float32; the Gram matrix is computed in float32, or
    in the features' own precision when they are 16-bit on a GPU (as a model
    running in bf16/fp16 gives them), where a float32 product of 2880 tokens of
    width 4096 would cost more than the whole greedy selection.

    Args:
        features: (B, M, D) token features (any floating dtype).

    Returns:
        (B, M, M) float32 distances in [0, 2].

    Raises:
        DataError: features not (B, M, D), or holding NaN or Inf.
    """
    if features.dim() != 3:
        raise DataError(f"features must have shape (B, M, D), got {tuple(features.shape)}")
    _check_finite(features, "features")
    unit = F.normalize(features.float(), dim=-1)
    if features.is_cuda and features.dtype in (torch.float16, torch.bfloat16):
        unit = unit.to(features.dtype)
    distance = (1.0 - (unit @ unit.transpose(1, 2)).float()).clamp_(min=0.0)  # (B, M, M)
    distance.diagonal(dim1=1, dim2=2).zero_()
    return distance


def greedy_max_min(distance: Tensor, keep: int) -> Tensor:
    """The greedy max-min picks on a distance matrix, **in the order they are made**.

    Args:
        distance: (B, M, M) symmetric distances with a zero diagonal.
        keep: K, the number of picks.

    Returns:
        (B, K) int64 token indices, the first pick first.

    Raises:
        DataError: distances holding NaN or Inf.
    """
    B, M, _ = distance.shape
    _check_count(M, keep)
    _check_finite(distance, "distances")
    rows = torch.arange(B, device=distance.device)
    order = torch.empty(B, keep, dtype=torch.long, device=distance.device)
    if M == 1:
        return order.zero_()
    # Each token's nearest neighbour: the second-smallest value of its column.
    nearest = distance.topk(2, dim=1, largest=False).values[:, 1]  # (B, M)
    pick = nearest.argmax(dim=-1)  # (B,)
    # closest[b, j]: distance from token j to its closest kept token; -inf once kept.
    closest = distance[rows, pick].clone()  # (B, M)
    for i in range(keep):
        if i > 0:
            pick = closest.argmax(dim=-1)
            closest = torch.minimum(closest, distance[rows, pick])
        order[:, i] = pick
        closest[rows, pick] = -torch.inf
    return order


def divprune(features: Tensor, keep: int, backend: str = "auto") -> Tensor:
    """DivPrune's kept tokens (see the module doc).

    Args:
        features: (B, M, D) visual tokens after the projector.
        keep: K, how many to keep (see :func:`keep_count`).
        backend: ``"torch"`` (the batched loop of :func:`greedy_max_min`),
            ``"triton"`` (one CUDA kernel for all picks, see
            :mod:`.triton_greedy`) or ``"auto"`` (Triton on CUDA when installed).
            Both give the same picks.

    Returns:
        (B, K) int64 indices, sorted ascending.
    """
    from polymodal.methods.divprune import triton_greedy

    distance = cosine_distance(features)
    if backend == "auto":
        backend = "triton" if triton_greedy.available(features.device) else "torch"
    if backend == "triton":
        _check_count(features.shape[1], keep)
        order = triton_greedy.greedy_max_min_triton(distance, keep)
    elif backend == "torch":
        order = greedy_max_min(distance, keep)
    else:
        raise ConfigError(f"unknown DivPrune backend {backend!r}; use auto, torch or triton")
    return order.sort(dim=-1).values


def random_tokens(
    batch: int,
    num_tokens: int,
    keep: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """K tokens drawn uniformly without replacement, per sample.

    Returns:
        (B, K) int64 indices, sorted ascending.
    """
    _check_count(num_tokens, keep)
    # drawn where the generator lives, so a seed picks the same tokens on any device
    source = generator.device if generator is not None else device
    noise = torch.rand(batch, num_tokens, generator=generator, device=source).to(device)
    return noise.topk(keep, dim=-1).indices.sort(dim=-1).values


def attention_tokens(scores: Tensor, keep: int) -> Tensor:
    """The K tokens with the highest score (e.g. attention from the last text token).

    Args:
        scores: (B, M) one score per visual token.
        keep: K.

    Returns:
        (B, K) int64 indices, sorted ascending.
    """
    if scores.dim() != 2:
        raise DataError(f"scores must have shape (B, M), got {tuple(scores.shape)}")
    _check_count(scores.shape[1], keep)
    return scores.topk(keep, dim=-1).indices.sort(dim=-1).values


def uniform_tokens(
    batch: int, num_tokens: int, keep: int, device: torch.device | str | None = None
) -> Tensor:
    """K tokens evenly strided over the raster order: the centre of each of K equal runs.

    Returns:
        (B, K) int64 indices, sorted ascending, the same for every sample.
    """
    _check_count(num_tokens, keep)
    centres = ((torch.arange(keep, device=device) + 0.5) * num_tokens / keep).long()
    return centres.expand(batch, keep).clone()


def select_tokens(
    method: str,
    features: Tensor,
    keep: int,
    scores: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Dispatch to one selector by name.

    Args:
        method: one of :data:`METHODS`.
        features: (B, M, D) visual tokens after the projector.
        keep: K.
        scores: (B, M) attention scores, needed by ``"attention"``.
        generator: random source for ``"random"``.

    Returns:
        (B, K) int64 indices, sorted ascending.
    """
    B, M, _ = features.shape
    if method == "divprune":
        return divprune(features, keep)
    if method == "random":
        return random_tokens(B, M, keep, generator, features.device)
    if method == "attention":
        if scores is None:
            raise ConfigError("attention selection needs attention scores (B, M)")
        return attention_tokens(scores, keep)
    if method == "uniform":
        return uniform_tokens(B, M, keep, features.device)
    raise ConfigError(f"unknown selection method {method!r}; known: {', '.join(METHODS)}")
