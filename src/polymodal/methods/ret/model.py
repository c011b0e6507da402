"""ReT encoders, the late-interaction score and the contrastive loss (arXiv 2503.01980).

An encoder turns one side's frozen backbone features — the text and visual tokens of
every tapped layer, :class:`BackboneTokens` — into a small set of unit-length token
vectors. :class:`ReTEncoder` does it the paper's way: 32 learned query tokens step
through the layers with one shared :class:`~polymodal.methods.ret.cell.RecurrentCell`
and are projected to 128-d. :class:`PooledEncoder` is the single-vector baseline: the
last layer mean-pooled, CLIP-style.

Scores are late interaction, ``s(q, d) = Σᵢ maxⱼ qᵢ·dⱼ`` (one token each: a dot product).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from polymodal.errors import ConfigError, DataError
from polymodal.methods.ret.cell import CellGates, RecurrentCell


class BackboneTokens(NamedTuple):
    """One side's frozen features, every tapped layer.

    Attributes:
        text: (B, K, L, D_t) text tokens of K layers.
        text_padding: (B, L) bool, True = padding.
        visual: (B, K, N, D_v) visual tokens of the same K layers.
        has_text: (B,) bool; a sample without text has zeros in ``text``.
        has_image: (B,) bool; a sample without an image has zeros in ``visual``.
    """

    text: Tensor
    text_padding: Tensor
    visual: Tensor
    has_text: Tensor
    has_image: Tensor

    def to(self, device: torch.device | str) -> BackboneTokens:
        return BackboneTokens(*(x.to(device) for x in self))


class EncoderOutput(NamedTuple):
    """What an encoder returns.

    Attributes:
        tokens: (B, Q, E) unit-length token vectors.
        gates: the cell's gates at each step (empty for :class:`PooledEncoder`).
    """

    tokens: Tensor
    gates: tuple[CellGates, ...]


def _projection(width: int, dim: int) -> nn.Sequential:
    return nn.Sequential(nn.LayerNorm(width), nn.Linear(width, dim))


def _check(features: BackboneTokens, layers: Sequence[int]) -> None:
    k = features.text.shape[1]
    if features.visual.shape[1] != k or max(layers) >= k:
        raise DataError(
            f"features hold {k} text and {features.visual.shape[1]} visual layers; "
            f"the encoder reads layers {list(layers)}"
        )
    if not bool((features.has_text | features.has_image).all()):
        raise DataError("a query or document has neither text nor image; give it at least one")


class ReTEncoder(nn.Module):
    """Recurrent multi-layer fusion: learned query tokens, one cell stepped over ``layers``.

    Each tapped layer has its own LayerNorm + linear projection of the text and visual
    tokens to the cell width (layers differ in scale and meaning); the cell itself is
    shared.

    Args:
        text_dim: D_t of the text backbone.
        visual_dim: D_v of the vision backbone.
        layers: indices into the K tapped layers to step through, in order; ``(K − 1,)``
            is the last-layer-only baseline.
        dim: cell width D.
        num_queries: Q learned query tokens (32 in the paper).
        out_dim: E of the output tokens (128 in the paper).
        num_heads: attention heads of the cell.
    """

    def __init__(
        self,
        text_dim: int,
        visual_dim: int,
        layers: Sequence[int],
        dim: int = 64,
        num_queries: int = 32,
        out_dim: int = 128,
        num_heads: int = 4,
    ) -> None:
        super().__init__()
        if not layers:
            raise ConfigError("ReTEncoder needs at least one layer to read")
        self.layers = tuple(int(i) for i in layers)
        self.text_proj = nn.ModuleList(_projection(text_dim, dim) for _ in self.layers)
        self.visual_proj = nn.ModuleList(_projection(visual_dim, dim) for _ in self.layers)
        self.queries = nn.Parameter(torch.randn(1, num_queries, dim) * 0.02)
        self.cell = RecurrentCell(dim, num_heads)
        self.out = _projection(dim, out_dim)

    def forward(self, features: BackboneTokens) -> EncoderOutput:
        """Encode one side.

        Args:
            features: the side's :class:`BackboneTokens`.

        Returns:
            :class:`EncoderOutput`: tokens (B, Q, E) and the gates of every step.
        """
        _check(features, self.layers)
        state = self.queries.expand(features.text.shape[0], -1, -1)  # (B, Q, D)
        gates = []
        for step, layer in enumerate(self.layers):
            text = self.text_proj[step](features.text[:, layer])  # (B, L, D)
            visual = self.visual_proj[step](features.visual[:, layer])  # (B, N, D)
            state, step_gates = self.cell(
                state, text, features.text_padding, visual, features.has_text, features.has_image
            )
            gates.append(step_gates)
        return EncoderOutput(F.normalize(self.out(state), dim=-1), tuple(gates))


class PooledEncoder(nn.Module):
    """Single-vector baseline: mean of the last layer's text tokens and of its visual
    tokens, each projected, averaged over the modalities present, then an MLP.

    Args:
        text_dim, visual_dim: backbone widths.
        dim: hidden width; out_dim: E.
    """

    def __init__(self, text_dim: int, visual_dim: int, dim: int = 64, out_dim: int = 128) -> None:
        super().__init__()
        self.text_proj = _projection(text_dim, dim)
        self.visual_proj = _projection(visual_dim, dim)
        self.mlp = nn.Sequential(nn.GELU(), nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, out_dim))

    def forward(self, features: BackboneTokens) -> EncoderOutput:
        """Returns tokens (B, 1, E)."""
        _check(features, [features.text.shape[1] - 1])
        keep = (~features.text_padding).float()[..., None]  # (B, L, 1)
        text = (features.text[:, -1] * keep).sum(1) / keep.sum(1).clamp(min=1)  # (B, D_t)
        visual = features.visual[:, -1].mean(1)  # (B, D_v)
        w_t, w_v = features.has_text.float()[:, None], features.has_image.float()[:, None]
        pooled = (self.text_proj(text) * w_t + self.visual_proj(visual) * w_v) / (w_t + w_v)
        return EncoderOutput(F.normalize(self.mlp(pooled), dim=-1)[:, None], ())


def late_interaction(query: Tensor, document: Tensor) -> Tensor:
    """ColBERT-style score ``s(q, d) = Σᵢ maxⱼ qᵢ·dⱼ`` of every pair.

    Args:
        query: (B_q, Q, E) query tokens.
        document: (B_d, P, E) document tokens.

    Returns:
        (B_q, B_d) scores.
    """
    sim = torch.einsum("aie,bje->abij", query, document)  # (B_q, B_d, Q, P)
    return sim.amax(dim=-1).sum(dim=-1)


class Retriever(nn.Module):
    """A query encoder, a document encoder and a learned logit scale.

    Args:
        query: encoder of the query side.
        document: encoder of the document side.
        scale: initial multiplier of the scores in the loss; 1 for ReT's 32-token sums,
            32 for single vectors, so both start with the same range of logits.
    """

    def __init__(self, query: nn.Module, document: nn.Module, scale: float = 1.0) -> None:
        super().__init__()
        self.query = query
        self.document = document
        self.log_scale = nn.Parameter(torch.tensor(float(scale)).log())

    def loss(
        self, query: BackboneTokens, positive: BackboneTokens, hard_negative: BackboneTokens
    ) -> Tensor:
        """:func:`contrastive_loss` of one batch of (query, document, hard negative) rows."""
        documents = self.document(_concat(positive, hard_negative)).tokens
        b = positive.text.shape[0]
        scale = self.log_scale.clamp(max=4.6052).exp()  # at most 100, as CLIP
        return contrastive_loss(self.query(query).tokens, documents[:b], documents[b:], scale)


def _concat(a: BackboneTokens, b: BackboneTokens) -> BackboneTokens:
    """Rows of ``a`` then ``b``; the text of the shorter side is padded."""
    length = max(a.text.shape[2], b.text.shape[2])

    def pad(x: BackboneTokens) -> tuple[Tensor, Tensor]:
        extra = length - x.text.shape[2]
        return F.pad(x.text, (0, 0, 0, extra)), F.pad(x.text_padding, (0, extra), value=True)

    (ta, pa), (tb, pb) = pad(a), pad(b)
    return BackboneTokens(
        torch.cat([ta, tb]),
        torch.cat([pa, pb]),
        torch.cat([a.visual, b.visual]),
        torch.cat([a.has_text, b.has_text]),
        torch.cat([a.has_image, b.has_image]),
    )


def contrastive_loss(
    query: Tensor, positive: Tensor, hard_negative: Tensor, scale: Tensor | float = 1.0
) -> Tensor:
    """InfoNCE of each query over every document of the batch: its own, the others'
    (in-batch negatives) and every query's hard negative.

    Args:
        query: (B, Q, E) query tokens.
        positive: (B, P, E) the matching documents' tokens, row i for query i.
        hard_negative: (B, P, E) one hard negative per query.
        scale: multiplier of the late-interaction scores (inverse temperature).

    Returns:
        () mean cross-entropy of the correct document among 2B.
    """
    logits = scale * late_interaction(query, torch.cat([positive, hard_negative]))  # (B, 2B)
    return F.cross_entropy(logits, torch.arange(query.shape[0], device=query.device))
