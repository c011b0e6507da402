"""Histology + gene-expression subtype classifier (arXiv 2503.02849).

A patient is a bag of histology tiles plus an expression vector:

1. a **tile encoder** (any ``nn.Module``; a small CNN by default) turns every real
   tile into a feature vector, (B, N, D);
2. a **gene encoder** (log1p, batch normalisation, MLP) turns the expression
   vector into k gene tokens, (B, k, D);
3. **cross-attention fusion**: the tile features are the queries, the gene tokens
   the keys and values (8 heads), so each tile is read in the light of the
   patient's expression profile;
4. **attention pooling** over the tiles (gated attention, Ilse et al. 2018) gives
   one patient vector, and an MLP head gives the subtype logits.

Baselines with the same encoders: ``tiles_only`` (pooling + head), ``genes_only``
(mean gene token + head) and ``concat`` (pooled tiles and mean gene token
concatenated, then the head).

Padding tiles. Patients have different numbers of tiles; the batch pads them with
all-zero tiles, which are never encoded, never attended to and get zero pooling
weight (:func:`tile_mask`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from polymodal.data.contract import present, validate_batch
from polymodal.errors import DataError
from polymodal.modules.attention import CrossAttentionBlock
from polymodal.modules.classifier import build_encoder
from polymodal.modules.encoders import TabularMLP

FUSIONS = ("cross_attention", "concat", "tiles_only", "genes_only")
"""Fusion variants of :class:`SubtypeFusionModel`."""


@dataclass
class SubtypeOutput:
    """What :class:`SubtypeFusionModel` returns.

    Attributes:
        logits: (B, C) subtype scores.
        tile_weights: (B, N) attention-pooling weights over tiles (zero on padding;
            rows sum to 1), or None for ``genes_only``.
        attentions: ``{"tiles->genes": (B, H, N, k)}`` cross-attention weights, when
            requested and the model has them.
    """

    logits: Tensor
    tile_weights: Tensor | None = None
    attentions: dict[str, Tensor] | None = None


def tile_mask(tiles: Tensor) -> Tensor:
    """Which tile slots hold a real tile: (B, N, C, H, W) -> (B, N) bool (False = all zero)."""
    return tiles.flatten(2).abs().amax(dim=-1) > 0


class TileEncoder(nn.Module):
    """Encode the real tiles of a batch of bags with any per-image module.

    Args:
        backbone: maps (M, C, H, W) images to (M, D) features or (M, n, D) tokens
            (mean-pooled to (M, D)).
        dim: feature width D the backbone produces.
    """

    def __init__(self, backbone: nn.Module, dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.dim = dim

    def forward(self, tiles: Tensor, mask: Tensor) -> Tensor:
        """Encode tiles.

        Args:
            tiles: (B, N, C, H, W) bags of tiles.
            mask: (B, N) bool, True for tiles to encode.

        Returns:
            (B, N, D) features, zero where ``mask`` is False.
        """
        features = tiles.new_zeros(*mask.shape, self.dim)
        if mask.any():
            out = self.backbone(tiles[mask])  # (M, D) or (M, n, D), M = real tiles
            features[mask] = out.mean(dim=1) if out.dim() == 3 else out
        return features


class GeneEncoder(nn.Module):
    """Expression vector to gene tokens: optional log1p, BatchNorm, then an MLP.

    Batch normalisation standardises every gene with running statistics, so raw
    TPM-like values and log values both work without a preprocessing step.

    Args:
        in_features: number of genes G.
        dim: token width D.
        tokens: number of gene tokens k.
        hidden: hidden widths of the MLP.
        dropout: dropout in the MLP.
        log1p: apply ``log(1 + x)`` first (for non-negative expression values).
    """

    def __init__(
        self,
        in_features: int,
        dim: int = 64,
        tokens: int = 8,
        hidden: Sequence[int] = (256,),
        dropout: float = 0.2,
        log1p: bool = True,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.log1p = log1p
        self.norm = nn.BatchNorm1d(in_features)
        self.mlp = TabularMLP(in_features, dim, hidden, dropout, tokens)

    def forward(self, genes: Tensor) -> Tensor:
        """Encode expression vectors.

        Args:
            genes: (B, G) expression values (non-negative when ``log1p``).

        Returns:
            (B, k, D) gene tokens.
        """
        x = torch.log1p(genes.clamp(min=0)) if self.log1p else genes
        return self.mlp(self.norm(x))


class AttentionPool(nn.Module):
    """Gated attention pooling over a set (Ilse et al., 2018), masking padding.

    Args:
        dim: feature width D.
        hidden: width of the attention MLP.
    """

    def __init__(self, dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.value = nn.Linear(dim, hidden)
        self.gate = nn.Linear(dim, hidden)
        self.score = nn.Linear(hidden, 1)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Pool a masked set.

        Args:
            x: (B, N, D) set members.
            mask: (B, N) bool, True for members to pool; every row needs one.

        Returns:
            ``(pooled, weights)``: (B, D) and (B, N) weights (zero where masked).
        """
        scores = self.score(torch.tanh(self.value(x)) * torch.sigmoid(self.gate(x)))[..., 0]
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = scores.softmax(dim=-1) * mask
        return torch.einsum("bn,bnd->bd", weights, x), weights


class SubtypeFusionModel(nn.Module):
    """Tiles + genes -> subtype, by cross-attention fusion or a baseline.

    Missing modality, per sample (``<m>_mask`` False, no real tile, or the key
    absent from the batch):

    - ``cross_attention``: without genes the attention is skipped for that sample
      (its tiles pass through the block's residual path); without tiles a learned
      query token stands in for the tiles and reads the genes.
    - ``concat``: the missing side's pooled vector is a learned placeholder.
    - ``tiles_only`` / ``genes_only``: a sample without that modality is a
      :class:`~polymodal.errors.DataError`.

    A sample with neither modality is a :class:`~polymodal.errors.DataError`.

    Args:
        tile_encoder: a :class:`TileEncoder` (None for ``genes_only``).
        gene_encoder: a :class:`GeneEncoder` (None for ``tiles_only``).
        num_classes: number of subtypes C.
        fusion: one of :data:`FUSIONS`.
        dim: width D of tile features and gene tokens.
        num_heads: cross-attention heads.
        dropout: dropout in the fusion block and the head.
        expected_shapes: optional per-sample input shapes checked on every forward,
            e.g. ``{"tiles": (-1, 3, 32, 32), "genes": (1000,)}``.
    """

    def __init__(
        self,
        tile_encoder: TileEncoder | None,
        gene_encoder: GeneEncoder | None,
        num_classes: int,
        fusion: str = "cross_attention",
        dim: int = 64,
        num_heads: int = 8,
        dropout: float = 0.1,
        expected_shapes: Mapping[str, Sequence[int]] | None = None,
    ) -> None:
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; valid: {', '.join(FUSIONS)}")
        needs_tiles, needs_genes = fusion != "genes_only", fusion != "tiles_only"
        if needs_tiles != (tile_encoder is not None) or needs_genes != (gene_encoder is not None):
            raise ValueError(
                f"fusion {fusion!r} needs a tile encoder: {needs_tiles}, a gene encoder: "
                f"{needs_genes}; got tile_encoder={tile_encoder is not None}, "
                f"gene_encoder={gene_encoder is not None}"
            )
        self.fusion = fusion
        self.num_classes = num_classes
        self.tile_encoder = tile_encoder
        self.gene_encoder = gene_encoder
        self.expected_shapes = (
            None if expected_shapes is None else {m: tuple(s) for m, s in expected_shapes.items()}
        )
        self.pool = AttentionPool(dim) if needs_tiles else None
        self.cross = (
            CrossAttentionBlock(dim, num_heads, dropout=dropout)
            if fusion == "cross_attention"
            else None
        )
        # Learned stand-ins for a missing modality (zero at initialisation), only where a
        # variant uses them (an unused parameter would break DistributedDataParallel).
        self.dim = dim
        self.no_tiles = nn.Parameter(torch.zeros(dim)) if needs_tiles and needs_genes else None
        self.no_genes = nn.Parameter(torch.zeros(dim)) if fusion == "concat" else None
        width = 2 * dim if fusion == "concat" else dim
        self.head = nn.Sequential(
            nn.LayerNorm(width),
            nn.Linear(width, dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(dim, num_classes),
        )

    def forward(self, batch: Mapping[str, Tensor], return_attention: bool = False) -> SubtypeOutput:
        """Classify patients.

        Args:
            batch: ``tiles`` (B, N, C, H, W) (all-zero tiles are padding), ``genes``
                (B, G), optional ``tiles_mask``/``genes_mask`` (B,) bool; other keys
                are ignored.
            return_attention: also return the cross-attention weights.

        Returns:
            :class:`SubtypeOutput` with ``logits`` (B, C).

        Raises:
            DataError: the batch breaks the data contract, or a sample lacks the
                modality (or both modalities) the variant needs.
        """
        B = validate_batch(batch, self.expected_shapes)
        tiles, has_tiles = self._tiles(batch, B)  # (B, N, D), (B, N)
        genes, has_genes = self._genes(batch, B)  # (B, k, D), (B,)
        any_tile = has_tiles.any(dim=1)
        if self.fusion == "genes_only":
            self._require(has_genes, "genes")
        elif self.fusion == "tiles_only":
            self._require(any_tile, "tiles")
        elif not bool((any_tile | has_genes).all()):
            bad = (~(any_tile | has_genes)).nonzero().flatten().tolist()
            raise DataError(f"samples {bad} have neither tiles nor genes")

        attentions: dict[str, Tensor] = {}
        weights = None
        if self.fusion == "genes_only":
            features = genes.mean(dim=1)
        elif self.fusion == "tiles_only":
            features, weights = self._pool(tiles, has_tiles)
        elif self.fusion == "concat":
            assert self.no_tiles is not None and self.no_genes is not None
            pooled, weights = self._pool(tiles, has_tiles)
            pooled = torch.where(any_tile[:, None], pooled, self.no_tiles.expand(B, -1))
            gene = torch.where(has_genes[:, None], genes.mean(dim=1), self.no_genes.expand(B, -1))
            features = torch.cat([pooled, gene], dim=-1)  # (B, 2D)
        else:
            features, weights, cross = self._cross_attend(
                tiles, has_tiles, genes, has_genes, return_attention
            )
            if cross is not None:
                attentions["tiles->genes"] = cross
        return SubtypeOutput(
            logits=self.head(features),
            tile_weights=weights,
            attentions=attentions if return_attention and attentions else None,
        )

    def _cross_attend(
        self, tiles: Tensor, has_tiles: Tensor, genes: Tensor, has_genes: Tensor, weights: bool
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Tiles attend to gene tokens, then attention pooling.

        Args:
            tiles: (B, N, D) tile features; has_tiles: (B, N) real tiles.
            genes: (B, k, D) gene tokens; has_genes: (B,) presence.
            weights: also return the attention weights.

        Returns:
            ``(features, pool_weights, attention)``: (B, D), (B, N) and, when asked,
            (B, H, N, k) with zero rows for padding queries.
        """
        assert self.cross is not None and self.no_tiles is not None
        # Without tiles, slot 0 holds a learned query that reads the genes.
        any_tile = has_tiles.any(dim=1)
        stand_in = torch.zeros_like(has_tiles)
        stand_in[:, 0] = ~any_tile
        tiles = torch.where(stand_in[..., None], self.no_tiles.expand_as(tiles), tiles)
        queries = has_tiles | stand_in
        B, k = genes.shape[:2]
        padding = (~has_genes)[:, None].expand(B, k)  # (B, k), True = key to ignore
        out = self.cross(tiles, genes, key_padding_mask=padding, return_weights=weights)
        features, pool_weights = self._pool(out.output, queries)
        attention = None if out.weights is None else out.weights * queries[:, None, :, None]
        return features, pool_weights, attention

    def _tiles(self, batch: Mapping[str, Tensor], B: int) -> tuple[Tensor, Tensor]:
        """(B, N, D) tile features and (B, N) real-tile mask (all False when absent)."""
        mask = present(batch, "tiles")
        if self.tile_encoder is None or mask is None:
            ref = next(v for v in batch.values() if isinstance(v, Tensor))
            return (
                torch.zeros(B, 1, self.dim, device=ref.device),
                torch.zeros(B, 1, dtype=torch.bool, device=ref.device),
            )
        tiles = batch["tiles"]
        real = tile_mask(tiles) & mask[:, None]
        return self.tile_encoder(tiles, real), real

    def _genes(self, batch: Mapping[str, Tensor], B: int) -> tuple[Tensor, Tensor]:
        """(B, k, D) gene tokens and (B,) presence (all False when absent)."""
        mask = present(batch, "genes")
        if self.gene_encoder is None or mask is None:
            ref = next(v for v in batch.values() if isinstance(v, Tensor))
            return (
                torch.zeros(B, 1, self.dim, device=ref.device),
                torch.zeros(B, dtype=torch.bool, device=ref.device),
            )
        return self.gene_encoder(batch["genes"]), mask

    def _pool(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Attention-pool (B, N, D) over ``mask``; rows without members give zeros."""
        assert self.pool is not None
        safe = mask.clone()
        safe[:, 0] |= ~mask.any(dim=1)  # keep softmax finite; such rows are replaced later
        pooled, weights = self.pool(x, safe)
        empty = ~mask.any(dim=1)
        return pooled.masked_fill(empty[:, None], 0.0), weights.masked_fill(empty[:, None], 0.0)

    @staticmethod
    def _require(has: Tensor, name: str) -> None:
        if not bool(has.all()):
            bad = (~has).nonzero().flatten().tolist()
            raise DataError(f"samples {bad} have no {name}, which this model needs")


def build_subtype_model(
    fusion: str,
    modalities: Mapping[str, Mapping[str, Any]],
    num_classes: int,
    dim: int = 64,
    seed: int | None = None,
    num_heads: int = 8,
    dropout: float = 0.1,
) -> SubtypeFusionModel:
    """Build a :class:`SubtypeFusionModel` from config dicts.

    The signature matches :func:`polymodal.modules.classifier.build_classifier`, so
    a YAML config names it as ``model.options.builder``. Example::

        build_subtype_model(
            "cross_attention",
            {"tiles": {"encoder": "cnn", "shape": [32, 3, 32, 32]},
             "genes": {"shape": [1000], "tokens": 8}},
            num_classes=4,
        )

    Args:
        fusion: one of :data:`FUSIONS`.
        modalities: ``tiles``: ``{"encoder": name, "shape": [N, C, H, W], **options}``
            (any encoder of :func:`~polymodal.modules.classifier.build_encoder`,
            applied per tile; default ``cnn``); ``genes``: ``{"shape": [G], **options}``
            with :class:`GeneEncoder` options. A variant uses only what it needs.
        num_classes: number of subtypes C.
        dim: width D of tile features, gene tokens and the fusion.
        seed: if given, parameters are initialised from it without touching the
            global random state.
        num_heads: cross-attention heads.
        dropout: dropout of the fusion block and head.

    Raises:
        ValueError: unknown fusion or encoder, a needed modality not configured.
    """
    if fusion not in FUSIONS:
        raise ValueError(f"unknown fusion {fusion!r}; valid: {', '.join(FUSIONS)}")
    needed = {"tiles_only": ("tiles",), "genes_only": ("genes",)}.get(fusion, ("tiles", "genes"))
    missing = [m for m in needed if m not in modalities]
    if missing:
        raise ValueError(f"fusion {fusion!r} needs modalities {missing}; got {list(modalities)}")
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        shapes: dict[str, tuple[int, ...]] = {}
        tile_encoder = gene_encoder = None
        if "tiles" in needed:
            options = dict(modalities["tiles"])
            shape = options.pop("shape", None)
            if shape is not None:
                shapes["tiles"] = (-1, *(int(s) for s in shape[1:]))
            name = options.pop("encoder", "cnn")
            backbone = build_encoder(
                name, dim=dim, shape=None if shape is None else shape[1:], **options
            )
            tile_encoder = TileEncoder(backbone, dim)
        if "genes" in needed:
            options = dict(modalities["genes"])
            shape = options.pop("shape", None)
            if shape is None and "in_features" not in options:
                raise ValueError("modality 'genes' needs 'shape': [G] or 'in_features'")
            if shape is not None:
                shapes["genes"] = tuple(int(s) for s in shape)
                options.setdefault("in_features", int(shape[0]))
            try:
                gene_encoder = GeneEncoder(dim=dim, **options)
            except TypeError as error:
                raise ValueError(f"bad options for the gene encoder: {error}") from error
        return SubtypeFusionModel(
            tile_encoder,
            gene_encoder,
            num_classes,
            fusion=fusion,
            dim=dim,
            num_heads=num_heads,
            dropout=dropout,
            expected_shapes=shapes or None,
        )
