"""Fusion heads: combine per-modality tokens into class logits.

All heads share one call signature::

    fusion(tokens, present, return_attention=False) -> FusionOutput

- ``tokens``: ``{modality: (B, N_m, D_m)}``, the encoder outputs. A modality the
  head knows but that is absent from the dict counts as missing for every sample.
- ``present``: ``{modality: (B,) bool}``, True where the sample carries the
  modality; a modality without an entry (or ``present=None``) is present everywhere.

Each head states in its docstring what it does with a missing modality. A sample
with no modality at all is a :class:`~polymodal.errors.DataError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from polymodal.errors import ConfigError, DataError
from polymodal.modules.attention import CrossAttentionBlock
from polymodal.modules.encoders import pool


@dataclass
class FusionOutput:
    """What a fusion head returns.

    Attributes:
        logits: (B, C) class scores.
        features: (B, F) fused representation fed to the classifier layer, or None
            when the head has no joint representation (late fusion).
        attentions: named attention weights, e.g. ``{"image->audio": (B, H, N_a, N_b)}``,
            when requested and the head has any.
    """

    logits: Tensor
    features: Tensor | None = None
    attentions: dict[str, Tensor] | None = None


def _resolve(
    tokens: Mapping[str, Tensor],
    present: Mapping[str, Tensor] | None,
    dims: Mapping[str, int],
) -> tuple[int, dict[str, Tensor]]:
    """Check tokens against ``dims`` and give a (B,) bool presence mask for every modality.

    Returns:
        ``(B, masks)`` with ``masks[m]`` all False for a modality absent from ``tokens``.

    Raises:
        ValueError: a token entry for a modality the head does not know.
        DataError: no tokens, wrong token shapes, wrong mask shapes, or a sample
            with no modality present.
    """
    unknown = [m for m in tokens if m not in dims]
    if unknown:
        raise DataError(
            f"fusion got tokens for unknown modalities {unknown}; it knows {list(dims)}"
        )
    if not tokens:
        raise DataError(f"fusion got no modality tokens; it expects some of {list(dims)}")
    B = next(iter(tokens.values())).shape[0]
    ref = next(iter(tokens.values()))
    masks: dict[str, Tensor] = {}
    for m, d in dims.items():
        t = tokens.get(m)
        if t is None:
            masks[m] = torch.zeros(B, dtype=torch.bool, device=ref.device)
            continue
        if t.dim() != 3 or t.shape[0] != B or t.shape[-1] != d:
            raise DataError(
                f"tokens for modality {m!r} must be (B={B}, N, {d}), got {tuple(t.shape)}"
            )
        mask = None if present is None else present.get(m)
        if mask is None:
            mask = torch.ones(B, dtype=torch.bool, device=t.device)
        elif tuple(mask.shape) != (B,):
            raise DataError(
                f"present mask of modality {m!r} must be (B={B},), got {tuple(mask.shape)}"
            )
        masks[m] = mask.to(device=t.device, dtype=torch.bool)
    nothing = ~torch.stack(list(masks.values())).any(dim=0)
    if bool(nothing.any()):
        idx = nothing.nonzero().flatten().tolist()
        raise DataError(f"samples {idx} have none of the modalities {list(dims)} present")
    return B, masks


class EarlyFusion(nn.Module):
    """Concatenate pooled per-modality features, then an MLP.

    Missing modality: for a sample whose ``present`` is False (or a modality absent
    from ``tokens``), that modality's pooled feature is replaced by a learned
    placeholder vector of the same width before concatenation. The placeholders
    start at zero, so at initialisation a missing modality contributes nothing.

    Args:
        dims: ``{modality: D_m}`` token width per modality; its order is the
            concatenation order.
        num_classes: number of classes C.
        hidden: hidden width of the MLP.
        dropout: dropout after the hidden layer.
    """

    def __init__(
        self, dims: Mapping[str, int], num_classes: int, hidden: int = 128, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.dims = dict(dims)
        self.placeholders = nn.ParameterDict(
            {m: nn.Parameter(torch.zeros(d)) for m, d in dims.items()}
        )
        self.head = nn.Sequential(
            nn.Linear(sum(self.dims.values()), hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(
        self,
        tokens: Mapping[str, Tensor],
        present: Mapping[str, Tensor] | None = None,
        return_attention: bool = False,
    ) -> FusionOutput:
        """Fuse by concatenation.

        Args:
            tokens: ``{m: (B, N_m, D_m)}``.
            present: ``{m: (B,) bool}``.
            return_attention: ignored (no attention here); ``attentions`` is None.

        Returns:
            :class:`FusionOutput` with ``logits`` (B, C) and ``features``
            (B, sum D_m), the concatenated (placeholder-filled) pooled features.
        """
        B, masks = _resolve(tokens, present, self.dims)
        feats = []
        for m in self.dims:
            slot = self.placeholders[m].expand(B, -1)  # (D_m,) -> (B, D_m)
            if m in tokens:
                slot = torch.where(masks[m][:, None], pool(tokens[m]), slot)
            feats.append(slot)
        features = torch.cat(feats, dim=-1)  # (B, sum D_m)
        return FusionOutput(logits=self.head(features), features=features)


class LateFusion(nn.Module):
    """A linear head per modality on its pooled feature; logits are averaged.

    For each sample the logits are the mean of the per-modality logits over the
    modalities **present in that sample**; a missing modality neither contributes
    nor dilutes the average. With a single modality this is the unimodal baseline
    (a linear classifier on the pooled encoder feature).

    Args:
        dims: ``{modality: D_m}`` token width per modality.
        num_classes: number of classes C.
    """

    def __init__(self, dims: Mapping[str, int], num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.dims = dict(dims)
        self.heads = nn.ModuleDict({m: nn.Linear(d, num_classes) for m, d in dims.items()})

    def forward(
        self,
        tokens: Mapping[str, Tensor],
        present: Mapping[str, Tensor] | None = None,
        return_attention: bool = False,
    ) -> FusionOutput:
        """Fuse by averaging per-modality logits.

        Args:
            tokens: ``{m: (B, N_m, D_m)}``.
            present: ``{m: (B,) bool}``.
            return_attention: ignored (no attention here); ``attentions`` is None.

        Returns:
            :class:`FusionOutput` with ``logits`` (B, C) and ``features`` None.

        Raises:
            DataError: a sample with no modality present.
        """
        _, masks = _resolve(tokens, present, self.dims)
        total: Tensor | None = None
        count: Tensor | None = None
        for m, t in tokens.items():
            keep = masks[m][:, None]  # (B, 1)
            logits = torch.where(keep, self.heads[m](pool(t)), 0.0)  # (B, C)
            total = logits if total is None else total + logits
            count = keep.float() if count is None else count + keep.float()
        assert total is not None and count is not None  # _resolve rejects empty tokens
        return FusionOutput(logits=total / count)


class CrossAttentionFusion(nn.Module):
    """Bidirectional cross-attention between exactly two modalities, then an MLP head.

    Both token streams are projected to ``dim``; the tokens of ``a`` attend to those
    of ``b`` and the tokens of ``b`` attend to those of ``a`` (one multi-head
    :class:`CrossAttentionBlock` per direction). Each updated stream is mean-pooled,
    the two pooled vectors are concatenated and classified by an MLP.

    Missing modality, per sample and by masking (no per-sample branching):

    - the direction whose keys are missing is skipped: its output is the query
      tokens themselves, and its attention weights are all zero;
    - the missing modality's pooled feature is replaced by a learned placeholder
      (initialised at zero), so a sample with ``b`` missing is classified from
      ``a``'s tokens only, and vice versa.

    Args:
        dims: ``{modality: D_m}`` for exactly two modalities ``a``, ``b`` (in order).
        num_classes: number of classes C.
        dim: common width the two streams are projected to.
        num_heads: heads of each cross-attention block.
        dropout: dropout in the blocks and the head.
    """

    def __init__(
        self,
        dims: Mapping[str, int],
        num_classes: int,
        dim: int = 64,
        num_heads: int = 4,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        if len(dims) != 2:
            raise ConfigError(
                f"CrossAttentionFusion needs exactly two modalities, got {list(dims)}"
            )
        self.dims = dict(dims)
        self.dim = dim
        self.a, self.b = list(dims)
        self.proj = nn.ModuleDict({m: nn.Linear(d, dim) for m, d in dims.items()})
        # cross[m]: the block in which modality m's tokens are the queries
        self.cross = nn.ModuleDict(
            {m: CrossAttentionBlock(dim, num_heads, dropout=dropout) for m in dims}
        )
        self.placeholders = nn.ParameterDict({m: nn.Parameter(torch.zeros(dim)) for m in dims})
        self.head = nn.Sequential(
            nn.LayerNorm(2 * dim),
            nn.Linear(2 * dim, dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(dim, num_classes),
        )

    def forward(
        self,
        tokens: Mapping[str, Tensor],
        present: Mapping[str, Tensor] | None = None,
        return_attention: bool = False,
    ) -> FusionOutput:
        """Fuse by cross-attention.

        Args:
            tokens: ``{a: (B, N_a, D_a), b: (B, N_b, D_b)}``; one may be absent.
            present: ``{m: (B,) bool}``.
            return_attention: also return ``{"a->b": (B, H, N_a, N_b),
                "b->a": (B, H, N_b, N_a)}``, weights of a's queries over b's keys and
                vice versa (rows sum to 1; all zero where the keys are missing).

        Returns:
            :class:`FusionOutput` with ``logits`` (B, C) and ``features`` (B, 2 * dim).
        """
        B, masks = _resolve(tokens, present, self.dims)
        ref = next(iter(tokens.values()))
        x: dict[str, Tensor] = {}
        for m, d in self.dims.items():
            # An absent modality becomes one zero token, fully masked below.
            t = tokens.get(m)
            if t is None:
                t = ref.new_zeros(B, 1, d)
            x[m] = self.proj[m](t)  # (B, N_m, dim)

        pooled: list[Tensor] = []
        attentions: dict[str, Tensor] = {}
        for q, k in ((self.a, self.b), (self.b, self.a)):  # q's tokens attend to k's
            has_keys = masks[k]  # (B,)
            padding = (~has_keys)[:, None].expand(B, x[k].shape[1])  # (B, N_k), True = ignore
            out = self.cross[q](
                x[q], x[k], key_padding_mask=padding, return_weights=return_attention
            )
            y = torch.where(has_keys[:, None, None], out.output, x[q])  # skip if keys missing
            p = torch.where(masks[q][:, None], pool(y), self.placeholders[q].expand(B, -1))
            pooled.append(p)
            if out.weights is not None:
                attentions[f"{q}->{k}"] = out.weights
        features = torch.cat(pooled, dim=-1)  # (B, 2 * dim): [a, b]
        return FusionOutput(
            logits=self.head(features),
            features=features,
            attentions=attentions if return_attention else None,
        )
