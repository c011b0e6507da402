"""Bypass prompt modules: depth tokens fused into a frozen ViT's RGB tokens, block by block.

The depth map goes through the ViT's own patch and position embedding and becomes
a prompt stream p (B, N, D) that bypasses the frozen blocks. Before block l's
attention, a small module mixes it into the RGB tokens z (B, N, D):

    P = W_p·p,  Z = W_z·z                    (both down to rank r)
    g = σ(γ)                                 (a learned gate per token)
    p' = W_up(½(P + Z) + ½(g⊙P + (1 − g)⊙Z))
    z ← z + p'

Only these modules (and the task head) train. ``W_up`` starts at zero, so the
untrained model is exactly the frozen RGB ViT and training starts from its features.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from polymodal.modules.encoders import BlockHook


class BypassPrompt(nn.Module):
    """One block's prompt module (module doc).

    Args:
        dim: token width D of the ViT.
        num_tokens: N, tokens per image (CLS included); γ has one entry per token.
        rank: r, the width of the mixing space (17 in the paper).
    """

    def __init__(self, dim: int, num_tokens: int, rank: int = 17) -> None:
        super().__init__()
        self.down_depth = nn.Linear(dim, rank)  # W_p
        self.down_rgb = nn.Linear(dim, rank)  # W_z
        self.gate = nn.Parameter(torch.zeros(num_tokens, 1))  # γ: g = 0.5 at the start
        self.up = nn.Linear(rank, dim)  # W_up
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, rgb: Tensor, depth: Tensor) -> Tensor:
        """p' (B, N, D) from RGB tokens z (B, N, D) and depth prompts p (B, N, D)."""
        p, z = self.down_depth(depth), self.down_rgb(rgb)  # (B, N, r) each
        g = torch.sigmoid(self.gate)  # (N, 1), broadcast over batch and rank
        return self.up(0.5 * (p + z) + 0.5 * (g * p + (1 - g) * z))  # type: ignore[no-any-return]


class BypassPrompts(nn.Module):
    """One :class:`BypassPrompt` per block of a ViT with ``depth`` blocks.

    Args:
        depth: number of transformer blocks L.
        dim: token width D.
        num_tokens: N tokens per image.
        rank: r of every module.
    """

    def __init__(self, depth: int, dim: int, num_tokens: int, rank: int = 17) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(BypassPrompt(dim, num_tokens, rank) for _ in range(depth))

    def hook(self, depth_tokens: Tensor) -> BlockHook:
        """The ``hook(i, tokens)`` that adds block i's prompt to its input tokens.

        Args:
            depth_tokens: (B, N, D) the depth map through the ViT's embedding.
        """

        def add_prompt(index: int, tokens: Tensor) -> Tensor:
            return tokens + self.blocks[index](tokens, depth_tokens)

        return add_prompt
