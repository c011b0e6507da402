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

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

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


SIDES = ("query", "document", "negative")
"""The sides of a training row: the query, its document and its hard negative."""


def side_keys(side: str) -> tuple[str, str]:
    """The batch keys of one side's features: ``<side>_text_layers`` (B, K, L, D_t) and
    ``<side>_visual_layers`` (B, K, N, D_v)."""
    return f"{side}_text_layers", f"{side}_visual_layers"


class RetrievalTokens(NamedTuple):
    """What :class:`Retriever` returns for a batch of training rows.

    Attributes:
        query: (B, Q, E) query tokens.
        document: (B, P, E) tokens of each query's document.
        hard_negative: (B, P, E) tokens of each query's hard negative, or None.
        logit_scale: () multiplier of the scores in the loss.
    """

    query: Tensor
    document: Tensor
    hard_negative: Tensor | None
    logit_scale: Tensor


def side_features(batch: dict[str, Tensor], side: str) -> BackboneTokens | None:
    """One side's :class:`BackboneTokens` out of a collated batch (None when absent).

    A row without text has an all-False ``<side>_text_layers_mask`` row; one without
    an image has ``<side>_visual_layers_mask`` False.
    """
    text_key, visual_key = side_keys(side)
    if text_key not in batch or visual_key not in batch:
        return None
    text, visual = batch[text_key], batch[visual_key]
    real = batch.get(f"{text_key}_mask")
    if real is None:
        real = torch.ones(text.shape[0], text.shape[2], dtype=torch.bool, device=text.device)
    has_image = batch.get(f"{visual_key}_mask")
    if has_image is None:
        has_image = torch.ones(visual.shape[0], dtype=torch.bool, device=visual.device)
    return BackboneTokens(text, ~real.bool(), visual, real.bool().any(dim=1), has_image.bool())


class Retriever(nn.Module):
    """A query encoder, a document encoder and a learned logit scale.

    Called on a batch of training rows (the ``ret_features`` dataset: each side's
    per-layer tokens, see :func:`side_features`) it returns :class:`RetrievalTokens`;
    :meth:`score` is late interaction. This is what the platform's
    ``contrastive_retrieval`` task trains and ranks with.

    Args:
        query: encoder of the query side.
        document: encoder of the document side (also encodes hard negatives).
        scale: initial multiplier of the scores in the loss; 1 for ReT's 32-token sums,
            32 for single vectors, so both start with the same range of logits.
    """

    def __init__(self, query: nn.Module, document: nn.Module, scale: float = 1.0) -> None:
        super().__init__()
        self.query = query
        self.document = document
        self.log_scale = nn.Parameter(torch.tensor(float(scale)).log())

    @staticmethod
    def score(query: Tensor, document: Tensor) -> Tensor:
        """(B_q, B_d) :func:`late_interaction` scores."""
        return late_interaction(query, document)

    def forward(self, batch: dict[str, Tensor]) -> RetrievalTokens:
        """Encode a batch's queries, documents and (when there) hard negatives.

        Raises:
            DataError: the batch lacks query or document features.
        """
        query, document = side_features(batch, "query"), side_features(batch, "document")
        if query is None or document is None:
            raise DataError(
                f"a retrieval batch needs {side_keys('query')} and {side_keys('document')}; "
                f"it has {sorted(k for k in batch if not k.endswith('_mask'))}"
            )
        negative = side_features(batch, "negative")
        b = document.text.shape[0]
        both = document if negative is None else _concat(document, negative)
        tokens = self.document(both).tokens
        scale = self.log_scale.clamp(max=4.6052).exp()  # at most 100, as CLIP
        hard = None if negative is None else tokens[b:]
        return RetrievalTokens(self.query(query).tokens, tokens[:b], hard, scale)

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


VARIANTS = ("ret", "last_layer", "pooled")
"""ReT over every tapped layer, the same cell over the last layer only, and the
single-vector dual encoder."""


def retriever(
    variant: str, text_dim: int, visual_dim: int, layers: int, dim: int = 64
) -> Retriever:
    """A fresh :class:`Retriever` of one of :data:`VARIANTS` (query and document sides
    have their own weights).

    Args:
        variant: ``ret``, ``last_layer`` or ``pooled``.
        text_dim, visual_dim: backbone widths D_t, D_v.
        layers: K tapped layers in the features.
        dim: the cell (or pooled encoder's hidden) width.

    Raises:
        ConfigError: an unknown variant.
    """
    if variant not in VARIANTS:
        raise ConfigError(f"unknown ReT variant {variant!r}; expected one of {VARIANTS}")

    def side() -> nn.Module:
        if variant == "pooled":
            return PooledEncoder(text_dim, visual_dim, dim)
        read = range(layers) if variant == "ret" else [layers - 1]
        return ReTEncoder(text_dim, visual_dim, read, dim)

    return Retriever(side(), side(), scale=32.0 if variant == "pooled" else 1.0)


def build_ret(
    fusion: str, modalities: Mapping[str, Mapping[str, Any]], dim: int = 64, variant: str = "ret"
) -> Retriever:
    """The ``polymodal fit`` builder (``model.options.builder``) of ReT and its baselines.

    Args:
        fusion: unused (the variant says how layers are fused).
        modalities: must hold ``query_text_layers`` (shape [K, L, D_t]) and
            ``query_visual_layers`` (shape [K, N, D_v]); widths and K are read off them.
        dim: the cell width (``model.dim``).
        variant: ``ret`` (every layer), ``last_layer`` or ``pooled`` (``model.options.variant``).

    Raises:
        ConfigError: the feature modalities are not listed.
    """
    text_key, visual_key = side_keys("query")
    if text_key not in modalities or visual_key not in modalities:
        raise ConfigError(
            f"the ReT builder reads model.modalities {text_key} and {visual_key} "
            f"(the ret_features dataset), got {sorted(modalities)}"
        )
    k, _, text_dim = modalities[text_key]["shape"]
    _, _, visual_dim = modalities[visual_key]["shape"]
    return retriever(variant, int(text_dim), int(visual_dim), int(k), dim)
