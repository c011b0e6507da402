"""ReT's recurrent cell: one gated step of fusion per backbone layer (arXiv 2503.01980).

The cell carries a state of query tokens through the layers of two frozen backbones.
At layer l, with state ``q`` (B, Q, D) and the layer's text tokens ``T_l`` and visual
tokens ``V_l`` (already projected to width D)::

    r   = q + SelfAttn(LN q)
    t   = CrossAttn(LN r, T_l)          v = CrossAttn(LN r, V_l)
    i_t = σ(W_t t + b_t)                i_v = σ(W_v v + b_v)
    f   = σ(W_ft t + W_fv v + b_f)
    c   = r ⊙ f + t ⊙ i_t + v ⊙ i_v
    h   = c + MLP(LN c)

A sample missing a modality has that modality's ``t`` (or ``v``) and input gate set
to zero, so its tokens — whatever they hold — never reach ``c`` nor ``f``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from polymodal.errors import DataError


class CellGates(NamedTuple):
    """The gates of one step, each (B, Q, D) in [0, 1].

    Attributes:
        text: i_t, zero for samples without text.
        visual: i_v, zero for samples without an image.
        forget: f.
    """

    text: Tensor
    visual: Tensor
    forget: Tensor


class RecurrentCell(nn.Module):
    """The gated fusion step above, shared by every layer.

    Args:
        dim: token width D of the state and of the (projected) backbone tokens.
        num_heads: attention heads.
        mlp_ratio: MLP hidden width as a multiple of D.
    """

    def __init__(self, dim: int, num_heads: int = 4, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        self.norm_self = nn.LayerNorm(dim)
        self.self_attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.norm_cross = nn.LayerNorm(dim)
        self.text_attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.visual_attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.text_gate = nn.Linear(dim, dim)
        self.visual_gate = nn.Linear(dim, dim)
        self.forget_text = nn.Linear(dim, dim)
        self.forget_visual = nn.Linear(dim, dim, bias=False)  # one bias b_f is enough
        self.norm_mlp = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(
        self,
        state: Tensor,
        text: Tensor,
        text_padding: Tensor,
        visual: Tensor,
        has_text: Tensor,
        has_image: Tensor,
    ) -> tuple[Tensor, CellGates]:
        """One step.

        Args:
            state: (B, Q, D) query tokens q.
            text: (B, L, D) the layer's text tokens; padding marked in ``text_padding``.
            text_padding: (B, L) bool, True = padding.
            visual: (B, N, D) the layer's visual tokens.
            has_text: (B,) bool, False = the sample has no text (its ``text`` is ignored).
            has_image: (B,) bool, False = no image (its ``visual`` is ignored).

        Returns:
            The new state h (B, Q, D) and the step's :class:`CellGates`.
        """
        if not bool((has_text | has_image).all()):
            raise DataError("a sample has neither text nor image; give it at least one")
        x = self.norm_self(state)
        r = state + self.self_attn(x, x, x, need_weights=False)[0]
        x = self.norm_cross(r)
        # A sample without text may have every position padded: let it attend to one
        # position (no NaN) and discard the result below.
        padding = text_padding & has_text[:, None]
        t = self.text_attn(x, text, text, key_padding_mask=padding, need_weights=False)[0]
        v = self.visual_attn(x, visual, visual, need_weights=False)[0]
        # where, not multiply: an ignored input holding NaN or Inf must not leak in.
        t = torch.where(has_text[:, None, None], t, torch.zeros_like(t))
        v = torch.where(has_image[:, None, None], v, torch.zeros_like(v))
        i_t = torch.sigmoid(self.text_gate(t)) * has_text[:, None, None]
        i_v = torch.sigmoid(self.visual_gate(v)) * has_image[:, None, None]
        f = torch.sigmoid(self.forget_text(t) + self.forget_visual(v))
        c = r * f + t * i_t + v * i_v
        h = c + self.mlp(self.norm_mlp(c))
        return h, CellGates(i_t, i_v, f)
