"""The attention gap of a fusion layer and ABPEM's attention-bootstrapping loss.

Split the fusion attention's pre-softmax logits, averaged over heads, into blocks by
query modality × key modality. Each block of one sample is summarised by a Gaussian
(the mean and the standard deviation of its entries). For every key modality ``k``
and every other query modality ``q``, the gap compares the cross block (``q`` → ``k``)
with the self block (``k`` → ``k``) over the same keys:

    gap = Σ_k Σ_{q≠k} KL( N(q→k) ‖ N(k→k) )

For audio and image this is ABPEM's
``KL(image→audio ‖ audio→audio) + KL(audio→image ‖ image→image)``. Under
distribution shift the cross-modal blocks drift away from the self blocks and the
gap grows; attention bootstrapping minimises it with the self blocks detached, so
self-attention is the target that cross-attention is pulled towards.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor


def gaussian_kl(p_mean: Tensor, p_std: Tensor, q_mean: Tensor, q_std: Tensor) -> Tensor:
    """KL(N(p_mean, p_std²) ‖ N(q_mean, q_std²)), element-wise (closed form)."""
    return torch.log(q_std / p_std) + (p_std**2 + (p_mean - q_mean) ** 2) / (2 * q_std**2) - 0.5


def block_statistics(
    attention_logits: Tensor, segments: Mapping[str, slice]
) -> dict[tuple[str, str], tuple[Tensor, Tensor]]:
    """Per-sample Gaussian of every (query modality, key modality) block.

    Args:
        attention_logits: (B, H, N, N) pre-softmax logits of the fusion attention.
        segments: ``{modality: slice}`` of each modality's tokens along N.

    Returns:
        ``{(query, key): (mean (B,), std (B,))}`` over the head-averaged block's
        entries; the std is the unbiased one, as in the reference implementation.
    """
    logits = attention_logits.mean(dim=1)  # (B, N, N), averaged over heads
    stats = {}
    for q, q_slice in segments.items():
        for k, k_slice in segments.items():
            block = logits[:, q_slice, k_slice].flatten(1)  # (B, N_q * N_k)
            stats[(q, k)] = (block.mean(dim=1), block.std(dim=1))
    return stats


def attention_gap(
    attention_logits: Tensor, segments: Mapping[str, slice], detach_self: bool = False
) -> Tensor:
    """The attention gap of every sample (see the module doc).

    Args:
        attention_logits: (B, H, N, N) pre-softmax logits of the fusion attention.
        segments: ``{modality: slice}``; at least two modalities.
        detach_self: stop gradients through the self blocks (the bootstrapping target).

    Returns:
        (B,) the summed Gaussian KL divergences.
    """
    if len(segments) < 2:
        raise ValueError(f"the attention gap needs two modalities, got {list(segments)}")
    stats = block_statistics(attention_logits, segments)
    gap = attention_logits.new_zeros(attention_logits.shape[0])
    for k in segments:
        self_mean, self_std = stats[(k, k)]
        if detach_self:
            self_mean, self_std = self_mean.detach(), self_std.detach()
        for q in segments:
            if q != k:
                gap = gap + gaussian_kl(*stats[(q, k)], self_mean, self_std)
    return gap


def bootstrapping_loss(
    attention_logits: Tensor, segments: Mapping[str, slice], complete: Tensor | None = None
) -> Tensor:
    """ABPEM's L_AB: the mean attention gap with self-attention as a detached target.

    Args:
        attention_logits: (B, H, N, N) pre-softmax logits.
        segments: ``{modality: slice}``.
        complete: (B,) bool, samples that carry every modality (the others have
            masked blocks and no gap); None means all.

    Returns:
        Scalar loss; zero when no sample is complete.
    """
    gap = attention_gap(attention_logits, segments, detach_self=True)
    if complete is not None:
        gap = gap[complete]
    return gap.mean() if gap.numel() else attention_logits.new_zeros(())
