"""Multi-head attention that can return its weights, and the blocks built on it.

One implementation serves two needs: a fast path through
``F.scaled_dot_product_attention`` when only the output is wanted, and an explicit
path that also returns the softmax weights and the pre-softmax logits (for token
pruning, head selection and attention analysis). Both give the same output.

Masks follow one convention throughout:

- ``key_padding_mask`` (B, K) bool, True = this key is padding, ignore it.
- ``attn_mask`` additive float, 0 = attend, ``torch.finfo(dtype).min`` (or -inf)
  = blocked; shape (Q, K), (B, 1, Q, K) or (B, H, Q, K).

Blocking uses ``torch.finfo(dtype).min`` rather than -inf, and a query whose every
key is blocked gets all-zero weights and an all-zero output instead of NaN.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from polymodal.errors import ConfigError, DataError


class AttentionOutput(NamedTuple):
    """What an attention module or block returns.

    Attributes:
        output: (B, Q, D) attended values (or the block's output).
        weights: (B, H, Q, K) softmax weights, when requested; rows sum to 1 except
            for fully masked queries, whose rows are all zero.
        logits: (B, H, Q, K) pre-softmax scores (scaled dot products plus masks),
            when requested.
    """

    output: Tensor
    weights: Tensor | None = None
    logits: Tensor | None = None


class MultiHeadAttention(nn.Module):
    """Scaled dot-product multi-head attention with separate q/k/v projections.

    The projections are separate ``nn.Linear`` layers (``q_proj``, ``k_proj``,
    ``v_proj``, ``out_proj``) so that methods adapting exactly the query, key or
    value projection (e.g. low-rank adapters) can address each one by name.

    Args:
        dim: model width D; must be divisible by ``num_heads``.
        num_heads: number of heads H.
        dropout: dropout on the attention weights (training only).
        bias: whether the projections have a bias.
    """

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ConfigError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.dim = dim
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(dim, dim, bias=bias)
        self.k_proj = nn.Linear(dim, dim, bias=bias)
        self.v_proj = nn.Linear(dim, dim, bias=bias)
        self.out_proj = nn.Linear(dim, dim, bias=bias)

    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        value: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
        return_weights: bool = False,
        return_logits: bool = False,
    ) -> AttentionOutput:
        """Attend from ``query`` to ``key``/``value``.

        Args:
            query: (B, Q, D).
            key: (B, K, D); None means self-attention (``key = query``).
            value: (B, K, D); None means ``value = key``.
            key_padding_mask: (B, K) bool, True where the key must be ignored.
            attn_mask: additive float mask, (Q, K), (B, 1, Q, K) or (B, H, Q, K).
            return_weights: also return the (B, H, Q, K) softmax weights.
            return_logits: also return the (B, H, Q, K) pre-softmax logits.

        Returns:
            :class:`AttentionOutput` with ``output`` (B, Q, D). A query whose keys are
            all blocked gets an all-zero output row and all-zero weights.
        """
        key = query if key is None else key
        value = key if value is None else value
        self._check_shapes(query, key, value, key_padding_mask)
        B, Q, _ = query.shape
        K = key.shape[1]

        # (B, L, D) -> (B, L, H, hd) -> (B, H, L, hd)
        q = self.q_proj(query).view(B, Q, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(key).view(B, K, self.num_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(value).view(B, K, self.num_heads, self.head_dim).transpose(1, 2)

        bias, dead = self._merge_masks(key_padding_mask, attn_mask, Q, K, q.dtype, q.device)
        p_drop = self.dropout if self.training else 0.0
        weights: Tensor | None = None
        logits: Tensor | None = None
        if return_weights or return_logits:
            logits = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)  # (B, H, Q, K)
            if bias is not None:
                logits = (logits + bias).clamp(min=torch.finfo(logits.dtype).min)
            weights = logits.softmax(dim=-1)
            if dead is not None:
                weights = weights.masked_fill(dead, 0.0)
            y = F.dropout(weights, p_drop, self.training) @ v  # (B, H, Q, hd)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p_drop)
            if dead is not None:
                y = y.masked_fill(dead, 0.0)

        y = y.transpose(1, 2).reshape(B, Q, self.dim)  # re-assemble heads: (B, Q, H * hd)
        y = self.out_proj(y)
        if dead is not None:
            # A query blocked in every head attends to nothing: zero it, out_proj bias included.
            y = y.masked_fill(dead.all(dim=1), 0.0)
        return AttentionOutput(
            output=y,
            weights=weights if return_weights else None,
            logits=logits if return_logits else None,
        )

    def _check_shapes(
        self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Tensor | None
    ) -> None:
        for name, t in (("query", query), ("key", key), ("value", value)):
            if t.dim() != 3 or t.shape[-1] != self.dim:
                raise DataError(f"{name} must have shape (B, L, {self.dim}), got {tuple(t.shape)}")
        if key.shape[:2] != value.shape[:2] or key.shape[0] != query.shape[0]:
            raise DataError(
                f"query {tuple(query.shape)}, key {tuple(key.shape)} and value "
                f"{tuple(value.shape)} disagree on B or K"
            )
        if key_padding_mask is not None and key_padding_mask.shape != key.shape[:2]:
            raise DataError(
                f"key_padding_mask must have shape (B, K) = {tuple(key.shape[:2])}, "
                f"got {tuple(key_padding_mask.shape)}"
            )

    def _merge_masks(
        self,
        key_padding_mask: Tensor | None,
        attn_mask: Tensor | None,
        Q: int,
        K: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> tuple[Tensor | None, Tensor | None]:
        """One additive bias broadcastable to (B, H, Q, K), and which query rows are dead.

        Returns:
            ``(bias, dead)``: ``bias`` (B or 1, H or 1, Q, K) float, ``dead``
            (B or 1, H or 1, Q, 1) bool, True where every key is blocked; both None
            when there is no mask.
        """
        if key_padding_mask is None and attn_mask is None:
            return None, None
        neg = torch.finfo(dtype).min
        bias = torch.zeros(1, 1, Q, K, dtype=dtype, device=device)
        if attn_mask is not None:
            if attn_mask.dtype == torch.bool:
                raise DataError(
                    "attn_mask must be an additive float mask (0 = attend, "
                    "torch.finfo(dtype).min = blocked); use key_padding_mask for bool padding"
                )
            if attn_mask.dim() == 2:
                attn_mask = attn_mask[None, None]  # (Q, K) -> (1, 1, Q, K)
            if attn_mask.dim() != 4 or attn_mask.shape[-2:] != (Q, K):
                raise DataError(
                    f"attn_mask must have shape (Q, K), (B, 1, Q, K) or (B, H, Q, K) "
                    f"with Q={Q}, K={K}, got {tuple(attn_mask.shape)}"
                )
            # clamp turns -inf into finfo.min so fully blocked rows stay finite
            bias = (bias + attn_mask.to(dtype)).clamp(min=neg)
        if key_padding_mask is not None:
            pad = key_padding_mask.bool()[:, None, None, :]  # (B, K) -> (B, 1, 1, K)
            bias = torch.where(pad, torch.full_like(bias, neg), bias)
        dead = (bias <= neg).all(dim=-1, keepdim=True)
        return bias, dead


class FeedForward(nn.Sequential):
    """Two-layer MLP of a transformer block: Linear → GELU → Linear → Dropout.

    Args:
        dim: input and output width D.
        hidden: hidden width.
        dropout: dropout on the output.
    """

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__(
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Linear(hidden, dim),
            nn.Dropout(dropout),
        )


class TransformerBlock(nn.Module):
    """Pre-norm transformer block: ``x + Attn(LN(x))``, then ``x + MLP(LN(x))``.

    Args:
        dim: model width D.
        num_heads: attention heads H.
        mlp_ratio: MLP hidden width as a multiple of D.
        dropout: dropout on attention weights, attention output and MLP output.
    """

    def __init__(
        self, dim: int, num_heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, num_heads, dropout=dropout)
        self.drop = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio), dropout)

    def forward(
        self,
        x: Tensor,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
        return_weights: bool = False,
        return_logits: bool = False,
    ) -> AttentionOutput:
        """Self-attention then MLP over tokens.

        Args:
            x: (B, N, D) tokens.
            key_padding_mask: (B, N) bool, True = padding token (not attended to).
            attn_mask: additive float mask, (N, N), (B, 1, N, N) or (B, H, N, N).
            return_weights: also return the (B, H, N, N) attention weights.
            return_logits: also return the (B, H, N, N) pre-softmax logits.

        Returns:
            :class:`AttentionOutput` with ``output`` (B, N, D).
        """
        a = self.attn(
            self.norm1(x),
            key_padding_mask=key_padding_mask,
            attn_mask=attn_mask,
            return_weights=return_weights,
            return_logits=return_logits,
        )
        x = x + self.drop(a.output)
        x = x + self.mlp(self.norm2(x))
        return AttentionOutput(x, a.weights, a.logits)


class CrossAttentionBlock(nn.Module):
    """Pre-norm cross-attention block: queries from one stream, keys/values from another.

    ``x = x + Attn(LN_q(x), LN_kv(context))``, then ``x = x + MLP(LN(x))``. The
    residual runs on the query stream; the context is only read.

    Args:
        dim: width D of both streams.
        num_heads: attention heads H.
        mlp_ratio: MLP hidden width as a multiple of D.
        dropout: dropout on attention weights, attention output and MLP output.
    """

    def __init__(
        self, dim: int, num_heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, num_heads, dropout=dropout)
        self.drop = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio), dropout)

    def forward(
        self,
        x: Tensor,
        context: Tensor,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
        return_weights: bool = False,
        return_logits: bool = False,
    ) -> AttentionOutput:
        """Update the query stream ``x`` by attending to ``context``.

        Args:
            x: (B, Q, D) query tokens.
            context: (B, K, D) key/value tokens.
            key_padding_mask: (B, K) bool, True = context token to ignore.
            attn_mask: additive float mask, (Q, K), (B, 1, Q, K) or (B, H, Q, K).
            return_weights: also return the (B, H, Q, K) attention weights.
            return_logits: also return the (B, H, Q, K) pre-softmax logits.

        Returns:
            :class:`AttentionOutput` with ``output`` (B, Q, D).
        """
        kv = self.norm_kv(context)
        a = self.attn(
            self.norm_q(x),
            kv,
            kv,
            key_padding_mask=key_padding_mask,
            attn_mask=attn_mask,
            return_weights=return_weights,
            return_logits=return_logits,
        )
        x = x + self.drop(a.output)
        x = x + self.mlp(self.norm2(x))
        return AttentionOutput(x, a.weights, a.logits)
