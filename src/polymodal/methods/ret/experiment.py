"""Training and scoring ReT and its baselines on Shapes-Retrieval.

Every variant trains through the platform (``polymodal fit`` with the packaged
``ret`` config, :func:`~polymodal.train.recipe.train_cached`) on the same cached
features (:mod:`polymodal.methods.ret.data`) with the same budget — epochs, batch,
learning rate, schedule — and keeps the weights of its best validation Recall@5
(checked every epoch); the test split is only scored, here, over its whole collection.

Variants (:data:`VARIANTS`): ``ret`` (the cell over all 6 layers), ``last_layer`` (the
same cell over the last layer only) and ``pooled`` (single-vector dual encoder).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from polymodal.errors import ConfigError
from polymodal.methods.ret.backbones import FeatureBank
from polymodal.methods.ret.data import CODE as DATA_CODE
from polymodal.methods.ret.data import FeatureSource, SplitBanks
from polymodal.methods.ret.model import (
    BackboneTokens,
    ReTEncoder,
    Retriever,
    late_interaction,
    retriever,
)
from polymodal.train.checkpoint import load_weights
from polymodal.train.config import ExperimentConfig, check_run
from polymodal.train.recipe import train_cached
from polymodal.train.tasks.retrieval import ranking_metrics

TEXT_DIM, VISUAL_DIM, LAYERS = 384, 64, 6
CODE = (*DATA_CODE, "polymodal.methods.ret.model", "polymodal.methods.ret.experiment")


@dataclass(frozen=True)
class Setup:
    """Sizes and budget of a run (the cache key of everything it trains).

    Args:
        data: options of :func:`~polymodal.data.synth.shapes_retrieval.build_shapes_retrieval`.
        vit_steps: pre-training steps of the ViT.
        epochs: training epochs of every variant (one pass over the training queries
            each, validated at its end).
        batch_size: queries per step (each brings its document and hard negative).
        lr: AdamW learning rate (cosine decay to 0 over the epochs).
    """

    data: dict[str, Any] = field(default_factory=lambda: {"train": 3000, "val": 600, "test": 1500})
    vit_steps: int = 300
    epochs: int = 6
    batch_size: int = 24
    lr: float = 1e-3

    @property
    def source(self) -> FeatureSource:
        return FeatureSource(shapes=self.data, vit_steps=self.vit_steps)


def build_retriever(variant: str, seed: int = 0) -> Retriever:
    """A fresh :class:`Retriever` of one of :data:`VARIANTS` on our backbones' features."""
    torch.manual_seed(seed)
    return retriever(variant, TEXT_DIM, VISUAL_DIM, LAYERS)


def model_version(model: torch.nn.Module) -> str:
    """A stamp of a model's weights: sha256 of every tensor's name and bytes (16 hex)."""
    digest = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _flow(values: dict[str, Any]) -> str:
    """A dict as a YAML flow mapping (a config override's value)."""
    return "{" + ", ".join(f"{k}: {v}" for k, v in values.items()) + "}"


def run_config(variant: str, seed: int, setup: Setup, device: str = "cpu") -> ExperimentConfig:
    """The ``ret`` recipe config of one variant and seed at ``setup``'s sizes, its
    ``out_dir`` in the run cache (keyed by the config and the code)."""
    overrides = [
        f"seed={seed}",
        f"model.options.variant={variant}",
        f"data.options.shapes={_flow(setup.data)}",
        f"data.options.vit_steps={setup.vit_steps}",
        f"data.batch_size={setup.batch_size}",
        f"optim.lr={setup.lr}",
        f"trainer.max_epochs={setup.epochs}",
    ]
    return check_run("ret", overrides, device, "ret/runs", CODE)


def train_retriever(variant: str, seed: int, setup: Setup, device: str = "cpu") -> Retriever:
    """Train one variant through the platform (cached), returning the weights of its
    best validation Recall@5, on the CPU, in eval mode."""
    result = train_cached(run_config(variant, seed, setup, device))
    model = build_retriever(variant, seed)
    model.load_state_dict(load_weights(result.out_dir / "model.safetensors"))
    return model.eval()


@torch.no_grad()
def encode(
    encoder: torch.nn.Module,
    bank: FeatureBank,
    drop: str | None = None,
    batch_size: int = 256,
) -> Tensor:
    """(N, Q, E) tokens of every row of ``bank``; ``drop`` = ``"image"`` or ``"text"``
    removes that modality from rows that have the other."""
    encoder.eval()
    out = []
    for start in range(0, len(bank), batch_size):
        features = bank.gather(torch.arange(start, min(start + batch_size, len(bank))))
        out.append(encoder(without(features, drop)).tokens)
    return torch.cat(out)


def without(features: BackboneTokens, drop: str | None) -> BackboneTokens:
    """The features with ``drop`` (``"image"``/``"text"``/None) masked out where the
    other modality is there to stand alone."""
    if drop is None:
        return features
    has_text, has_image = features.has_text, features.has_image
    if drop == "image":
        has_image = has_image & ~has_text
    elif drop == "text":
        has_text = has_text & ~has_image
    else:
        raise ConfigError(f"drop must be 'image', 'text' or None, not {drop!r}")
    return features._replace(has_text=has_text, has_image=has_image)


@torch.no_grad()
def score_all(query: Tensor, documents: Tensor, chunk: int = 64) -> Tensor:
    """(N_q, N_d) late-interaction scores, ``chunk`` queries at a time."""
    return torch.cat(
        [late_interaction(query[i : i + chunk], documents) for i in range(0, len(query), chunk)]
    )


def target_ranks(scores: Tensor, target: Tensor) -> Tensor:
    """(N_q,) 1-based rank of each query's target among all documents (ties count against)."""
    own = scores.gather(1, target[:, None])
    return (scores >= own).sum(dim=1)


def retrieval_metrics(scores: Tensor, target: Tensor) -> dict[str, float]:
    """Recall@1/5/10 and MRR of ranking all documents for every query (``torchmetrics``,
    :func:`~polymodal.train.tasks.retrieval.ranking_metrics`).

    Args:
        scores: (N_q, N_d) scores, higher = more relevant.
        target: (N_q,) the one relevant document of each query.
    """
    return {name: float(value) for name, value in ranking_metrics(scores, target).items()}


def collection_ranks(model: Retriever, banks: SplitBanks, drop: str | None = None) -> Tensor:
    """(N_q,) rank of each query's target in the split's whole collection."""
    documents = encode(model.document, banks.documents)
    queries = encode(model.query, banks.queries, drop)
    return target_ranks(score_all(queries, documents), banks.target)


def hits(ranks: Tensor, k: int) -> np.ndarray:
    """(N,) 1.0 where the target ranks in the top ``k``."""
    return (ranks <= k).float().numpy()


@torch.no_grad()
def mean_gates(encoder: ReTEncoder, bank: FeatureBank, batch_size: int = 256) -> np.ndarray:
    """(3, K) mean text input, visual input and forget gate at each step of ``encoder``;
    input gates average over the rows that have that modality."""
    sums, counts = torch.zeros(3, len(encoder.layers)), torch.zeros(3, 1)
    for start in range(0, len(bank), batch_size):
        features = bank.gather(torch.arange(start, min(start + batch_size, len(bank))))
        gates = encoder(features).gates
        for k, step in enumerate(gates):
            sums[0, k] += step.text.mean(dim=(1, 2)).sum()
            sums[1, k] += step.visual.mean(dim=(1, 2)).sum()
            sums[2, k] += step.forget.mean(dim=(1, 2)).sum()
        counts[0] += features.has_text.sum()
        counts[1] += features.has_image.sum()
        counts[2] += len(features.has_text)
    return (sums / counts.clamp(min=1)).numpy()
