"""Text Feature Guidance: the affordance's text steers the features and the choice of head.

Two steps, with t the affordance's text embedding projected to the feature width:

1. **Re-weighting** (training and inference): s_i = cos(f_i, t) for every patch
   feature f_i, standardised over the patches of the sample (ŝ); features become
   f_i + f_i·σ(ŝ_i), a residual that lifts the patches that look like the word.
2. **Head selection** (inference): each head h's CLS attention map, binarised at its
   mean, selects patches; the head whose selected (re-weighted) features average
   closest to t wins, per sample. The saliency is ½ the pooled activation map plus ½
   the chosen head's map, both scaled to [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def unit_range(maps: Tensor) -> Tensor:
    """(B, ...) maps scaled per sample to [0, 1] by their min and max."""
    flat = maps.flatten(1)
    low, high = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
    return ((flat - low) / (high - low).clamp_min(1e-12)).reshape(maps.shape)


class TextFeatureGuidance(nn.Module):
    """See the module doc.

    Args:
        dim: feature width D.
        text_dim: width of the text embeddings (384 for MiniLM).
    """

    def __init__(self, dim: int, text_dim: int) -> None:
        super().__init__()
        self.text_proj = nn.Linear(text_dim, dim)

    def reweight(self, features: Tensor, text: Tensor) -> Tensor:
        """(B, n, D) patch features re-weighted by their similarity to (B, T) texts."""
        t = self.text_proj(text)  # (B, D)
        s = F.cosine_similarity(features, t[:, None, :], dim=-1)  # (B, n)
        s = (s - s.mean(1, keepdim=True)) / s.std(1, keepdim=True).clamp_min(1e-6)
        return features + features * torch.sigmoid(s)[..., None]

    def choose_heads(self, features: Tensor, text: Tensor, cls_attention: Tensor) -> Tensor:
        """(B,) per sample, the head whose mean-binarised CLS map selects features most
        similar to the text.

        Args:
            features: (B, n, D) re-weighted patch features.
            text: (B, T) text embeddings.
            cls_attention: (B, H, n) CLS-to-patch attention per head.
        """
        masks = (cls_attention > cls_attention.mean(-1, keepdim=True)).to(features.dtype)
        pooled = masks @ features / masks.sum(-1, keepdim=True).clamp_min(1.0)  # (B, H, D)
        t = self.text_proj(text)[:, None, :]  # (B, 1, D)
        return F.cosine_similarity(pooled, t, dim=-1).argmax(dim=1)

    def saliency(
        self, pooled_map: Tensor, features: Tensor, text: Tensor, cls_attention: Tensor
    ) -> Tensor:
        """(B, h, w) ½ pooled map + ½ chosen head's map, each scaled to [0, 1].

        Args:
            pooled_map: (B, h, w) the head's activation map of the affordance.
            features, text, cls_attention: as :meth:`choose_heads`.
        """
        b, h, w = pooled_map.shape
        heads = self.choose_heads(features, text, cls_attention)
        chosen = cls_attention[torch.arange(b, device=heads.device), heads].reshape(b, h, w)
        return 0.5 * unit_range(pooled_map) + 0.5 * unit_range(chosen)
