"""Two towers that embed queries and documents into one space (contrastive retrieval).

Each side encodes its modalities, pools each one's tokens, averages the present
modalities and projects to a unit-length embedding: a sample missing one of its
side's modalities (``<m>_mask`` False) is embedded from the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from polymodal.data.contract import present
from polymodal.errors import ConfigError, DataError
from polymodal.modules.classifier import build_encoders
from polymodal.modules.text_encoder import masked_mean


class RetrievalOutput(NamedTuple):
    """What :class:`DualEncoder` returns.

    Attributes:
        query: (B, E) unit-length query embeddings.
        document: (B, E) unit-length document embeddings; row i is query i's match.
        logit_scale: () the learned inverse temperature (exp of a log-scale).
    """

    query: Tensor
    document: Tensor
    logit_scale: Tensor


class Tower(nn.Module):
    """One side: encoders of its modalities, a pooled mean over those present, a projection.

    Args:
        encoders: ``{modality: encoder}`` mapping (B, ...) to (B, N, D) tokens.
        dim: token width D of every encoder.
        embed_dim: output width E.
    """

    def __init__(self, encoders: Mapping[str, nn.Module], dim: int, embed_dim: int) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict(encoders)
        self.project = nn.Linear(dim, embed_dim)

    def forward(self, batch: Mapping[str, Tensor]) -> Tensor:
        pooled, weights = [], []
        for name, encoder in self.encoders.items():
            here = present(batch, name)
            if here is None:
                continue
            x = batch[name]
            tokens = encoder(x)  # (B, N, D)
            if name == "text_ids":  # ids 0 are padding
                pooled.append(masked_mean(tokens, x != 0))
            else:
                pooled.append(tokens.mean(dim=1))
            weights.append(here.float())
        if not pooled:
            raise DataError(f"batch has none of {list(self.encoders)}; got keys {sorted(batch)}")
        w = torch.stack(weights, dim=1)  # (B, M)
        if bool((w.sum(dim=1) == 0).any()):
            raise DataError(f"a sample has none of {list(self.encoders)} present")
        mean = (torch.stack(pooled, dim=1) * w[..., None]).sum(dim=1) / w.sum(dim=1, keepdim=True)
        return F.normalize(self.project(mean), dim=-1)


class DualEncoder(nn.Module):
    """Query and document towers with a learned temperature (CLIP's recipe).

    Args:
        query: the query tower.
        document: the document tower.
        temperature: initial softmax temperature (CLIP starts at 0.07).
    """

    def __init__(self, query: Tower, document: Tower, temperature: float = 0.07) -> None:
        super().__init__()
        self.query = query
        self.document = document
        self.log_scale = nn.Parameter(torch.tensor(1.0 / temperature).log())

    def forward(self, batch: Mapping[str, Tensor]) -> RetrievalOutput:
        scale = self.log_scale.clamp(max=4.6052).exp()  # at most 100, as CLIP
        return RetrievalOutput(self.query(batch), self.document(batch), scale)


def build_dual_encoder(
    fusion: str,
    modalities: Mapping[str, Mapping[str, Any]],
    query: Sequence[str] = (),
    document: Sequence[str] = (),
    dim: int = 64,
    embed_dim: int = 64,
    temperature: float = 0.07,
) -> DualEncoder:
    """Build a :class:`DualEncoder` (the ``contrastive_retrieval`` task's default).

    Args:
        fusion: unused (each tower averages its pooled modalities).
        modalities: ``{modality: {"encoder": name, "shape": [...], **options}}``.
        query: the modalities of the query side, e.g. ``[image]``.
        document: those of the document side, e.g. ``[text_ids]``; a modality may
            not be on both sides.
        dim: encoder token width; embed_dim: embedding width E.
        temperature: initial temperature.
    """
    if not query or not document:
        raise ConfigError(
            "contrastive_retrieval needs model.options.query and model.options.document, "
            "e.g. query: [image], document: [text_ids]"
        )
    both = set(query) & set(document)
    if both:
        raise ConfigError(f"modalities {sorted(both)} are on both the query and the document side")
    missing = [m for m in (*query, *document) if m not in modalities]
    if missing:
        raise ConfigError(f"model.modalities has no {missing}; it has {list(modalities)}")

    def tower(names: Sequence[str]) -> Tower:
        return Tower(
            build_encoders({name: modalities[name] for name in names}, dim), dim, embed_dim
        )

    return DualEncoder(tower(query), tower(document), temperature)
