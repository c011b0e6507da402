"""DivPrune's greedy picks as one Triton kernel (CUDA only).

The greedy loop is sequential over the K picks and each pick touches only one row
of the distance matrix, so on a GPU the batched torch loop of
:func:`polymodal.methods.divprune.select.greedy_max_min` is bound by kernel
launches (four per pick). Here one program per sample keeps the distance of every
token to the kept set in registers and makes all K picks in a single launch:
per pick one argmax over the block and one row read from memory.

It computes exactly what the torch loop computes (the same float32 distances,
the same lowest-index tie-break), which the GPU benchmark checks.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def available(device: torch.device) -> bool:
    """Whether the kernel can run on ``device`` (CUDA with Triton installed)."""
    if device.type != "cuda":
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


_KERNEL: Any = None


def _kernel() -> Any:
    """Compile-on-first-use: Triton is imported only where it is used."""
    global _KERNEL
    if _KERNEL is not None:
        return _KERNEL
    import triton
    import triton.language as tl

    # Triton reads parameter annotations, so only the block size carries one.
    @triton.jit  # type: ignore[misc]
    def greedy_kernel(  # type: ignore[no-untyped-def]
        distance_ptr,
        first_ptr,
        out_ptr,
        num_tokens,
        keep,
        stride_batch,
        stride_row,
        BLOCK: tl.constexpr,
    ):
        sample = tl.program_id(0).to(tl.int64)
        cols = tl.arange(0, BLOCK)
        inside = cols < num_tokens
        rows = distance_ptr + sample * stride_batch
        pick = tl.load(first_ptr + sample).to(tl.int64)
        tl.store(out_ptr + sample * keep, pick)
        closest = tl.load(rows + pick * stride_row + cols, mask=inside, other=float("-inf"))
        closest = tl.where(cols == pick, float("-inf"), closest)
        for i in range(1, keep):
            pick = tl.argmax(closest, axis=0).to(tl.int64)
            tl.store(out_ptr + sample * keep + i, pick)
            row = tl.load(rows + pick * stride_row + cols, mask=inside, other=float("-inf"))
            closest = tl.minimum(closest, row)
            closest = tl.where(cols == pick, float("-inf"), closest)

    _KERNEL = (triton, greedy_kernel)
    return _KERNEL


def greedy_max_min_triton(distance: Tensor, keep: int) -> Tensor:
    """The greedy max-min picks in pick order, like ``greedy_max_min``, in one launch.

    Args:
        distance: (B, M, M) float32 CUDA tensor, symmetric, zero diagonal.
        keep: K.

    Returns:
        (B, K) int64 picks, the first pick first.
    """
    B, M, _ = distance.shape
    if M == 1:
        return torch.zeros(B, keep, dtype=torch.long, device=distance.device)
    triton, kernel = _kernel()
    distance = distance.contiguous()
    # The first pick needs every column; torch's reduction uses the whole GPU for it.
    nearest = distance.topk(2, dim=1, largest=False).values[:, 1]  # (B, M)
    first = nearest.argmax(dim=-1)  # (B,)
    out = torch.empty(B, keep, dtype=torch.long, device=distance.device)
    block = max(triton.next_power_of_2(M), 128)
    warps = 4 if block <= 1024 else 8 if block <= 4096 else 16
    kernel[(B,)](
        distance,
        first,
        out,
        M,
        keep,
        distance.stride(0),
        distance.stride(1),
        BLOCK=block,
        num_warps=warps,
    )
    return out
