"""Training and scoring ReT and its baselines on Shapes-Retrieval (cached features).

Every variant trains on the same feature banks with the same budget — steps, batch,
learning rate, schedule — and keeps the weights of its best validation Recall@5
(checked every ``eval_every`` steps); the test split is only scored.

Variants (:data:`VARIANTS`): ``ret`` (the cell over all 6 layers), ``last_layer`` (the
same cell over the last layer only) and ``pooled`` (single-vector dual encoder).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor
from torchmetrics.retrieval import RetrievalMRR, RetrievalRecall

from polymodal.data.cache import run_folder
from polymodal.data.synth.shapes_retrieval import load_shapes_retrieval
from polymodal.errors import ConfigError
from polymodal.methods.ret.backbones import (
    FeatureBank,
    FrozenBackbones,
    build_bank,
    build_vit,
    pretrain_vit,
)
from polymodal.methods.ret.model import (
    BackboneTokens,
    PooledEncoder,
    ReTEncoder,
    Retriever,
    late_interaction,
)
from polymodal.modules.encoders import ViTEncoder

VARIANTS = ("ret", "last_layer", "pooled")
TEXT_DIM, VISUAL_DIM, LAYERS = 384, 64, 6
RECALL_AT = (1, 5, 10)
CODE = (
    "polymodal.methods.ret.experiment",
    "polymodal.data.synth.shapes_retrieval",
)


@dataclass(frozen=True)
class Setup:
    """Sizes and budget of a run (the cache key of everything it trains).

    Args:
        data: options of :func:`~polymodal.data.synth.shapes_retrieval.build_shapes_retrieval`.
        vit_steps: pre-training steps of the ViT.
        steps: training steps of every variant.
        batch_size: queries per step (each brings its document and hard negative).
        lr: AdamW learning rate (cosine decay to 0).
        eval_every: steps between validation checks.
    """

    data: dict[str, Any] = field(default_factory=lambda: {"train": 3000, "val": 600, "test": 1500})
    vit_steps: int = 300
    steps: int = 300
    batch_size: int = 24
    lr: float = 1e-3
    eval_every: int = 100


def build_retriever(variant: str, seed: int = 0) -> Retriever:
    """A fresh :class:`Retriever` of one of :data:`VARIANTS` (query and document sides
    have their own weights)."""
    torch.manual_seed(seed)
    if variant == "ret":
        side: Callable[[], torch.nn.Module] = lambda: ReTEncoder(  # noqa: E731
            TEXT_DIM, VISUAL_DIM, range(LAYERS)
        )
    elif variant == "last_layer":
        side = lambda: ReTEncoder(TEXT_DIM, VISUAL_DIM, [LAYERS - 1])  # noqa: E731
    elif variant == "pooled":
        side = lambda: PooledEncoder(TEXT_DIM, VISUAL_DIM)  # noqa: E731
    else:
        raise ConfigError(f"unknown ReT variant {variant!r}; expected one of {VARIANTS}")
    return Retriever(side(), side(), scale=32.0 if variant == "pooled" else 1.0)


def model_version(model: torch.nn.Module) -> str:
    """A stamp of a model's weights: sha256 of every tensor's name and bytes (16 hex)."""
    digest = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------- frozen features


def pretrained_vit(setup: Setup) -> ViTEncoder:
    """The ViT pre-trained on the training scenes (cached by the data and steps)."""
    folder = run_folder("ret/vit", {"data": setup.data, "steps": setup.vit_steps}, code=CODE)
    vit = build_vit()
    path = folder / "vit.safetensors"
    if path.is_file():
        vit.load_state_dict(load_file(str(path)))
        return vit.eval().requires_grad_(False)
    train = load_shapes_retrieval("train", **setup.data).documents
    shown = train["image_mask"]
    pretrain_vit(vit, train["image"][shown], train["scene"][shown], setup.vit_steps)
    save_file(vit.state_dict(), str(path))
    return vit


def frozen_backbones(setup: Setup) -> FrozenBackbones:
    from polymodal.hf.text_encoder import load_minilm

    return FrozenBackbones(pretrained_vit(setup), load_minilm())


@dataclass
class SplitBanks:
    """One split's features and its query targets."""

    documents: FeatureBank
    queries: FeatureBank
    target: Tensor
    hard_negative: Tensor
    kind: Tensor


def feature_banks(
    setup: Setup, split: str, backbones: Callable[[], FrozenBackbones] | None = None
) -> SplitBanks:
    """The split's documents and queries through the frozen backbones (cached).

    Args:
        setup: the data and ViT options.
        split: ``"train"``, ``"val"`` or ``"test"``.
        backbones: gives the backbones when the banks must be built (default: loads them).
    """
    params = {"data": setup.data, "vit_steps": setup.vit_steps, "split": split}
    folder = run_folder("ret/banks", params, code=CODE)
    data = load_shapes_retrieval(split, **setup.data)
    paths = {part: folder / f"{part}.safetensors" for part in ("documents", "queries")}
    if not all(p.is_file() for p in paths.values()):
        encoder = (backbones or (lambda: frozen_backbones(setup)))()
        for part, path in paths.items():
            rows = getattr(data, part)
            texts = data.texts(part)
            build_bank(
                encoder, rows["image"], texts, rows["image_mask"], rows["text_ids_mask"]
            ).save(path)
    q = data.queries
    return SplitBanks(
        FeatureBank.load(paths["documents"]),
        FeatureBank.load(paths["queries"]),
        q["target"],
        q["hard_negative"],
        q["kind"],
    )


def all_banks(setup: Setup) -> tuple[SplitBanks, SplitBanks, SplitBanks]:
    """Train, val and test banks; the backbones are loaded once, if at all."""
    loaded: list[FrozenBackbones] = []

    def backbones() -> FrozenBackbones:
        if not loaded:
            loaded.append(frozen_backbones(setup))
        return loaded[0]

    train, val, test = (feature_banks(setup, s, backbones) for s in ("train", "val", "test"))
    return train, val, test


# ---------------------------------------------------------------- scoring


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
    """Recall@1/5/10 and MRR of ranking all documents for every query (``torchmetrics``).

    Args:
        scores: (N_q, N_d) scores, higher = more relevant.
        target: (N_q,) the one relevant document of each query.
    """
    n_q, n_d = scores.shape
    relevant = torch.zeros(n_q, n_d, dtype=torch.bool)
    relevant[torch.arange(n_q), target] = True
    indexes = torch.arange(n_q)[:, None].expand(n_q, n_d).flatten()
    # torchmetrics ignores scores <= 0 in its top-k; shifting keeps every rank.
    preds = (scores - scores.min() + 1).flatten()
    out = {
        f"recall@{k}": float(RetrievalRecall(top_k=k)(preds, relevant.flatten(), indexes=indexes))
        for k in RECALL_AT
    }
    out["mrr"] = float(RetrievalMRR()(preds, relevant.flatten(), indexes=indexes))
    return out


def collection_ranks(model: Retriever, banks: SplitBanks, drop: str | None = None) -> Tensor:
    """(N_q,) rank of each query's target in the split's whole collection."""
    documents = encode(model.document, banks.documents)
    queries = encode(model.query, banks.queries, drop)
    return target_ranks(score_all(queries, documents), banks.target)


# ---------------------------------------------------------------- training


def train_retriever(
    variant: str, seed: int, setup: Setup, train: SplitBanks, val: SplitBanks
) -> Retriever:
    """Train one variant (cached by variant, seed, setup and code); returns the
    weights of the best validation Recall@5."""
    folder = model_folder(variant, seed, setup)
    model = build_retriever(variant, seed)
    path = folder / "model.safetensors"
    if path.is_file():
        model.load_state_dict(load_file(str(path)))
        return model.eval()
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=setup.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, setup.steps)
    best, best_state, history = -1.0, copy.deepcopy(model.state_dict()), []
    for step in range(1, setup.steps + 1):
        model.train()
        rows = torch.randint(len(train.target), (setup.batch_size,), generator=generator)
        loss = model.loss(
            train.queries.gather(rows),
            train.documents.gather(train.target[rows]),
            train.documents.gather(train.hard_negative[rows]),
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % setup.eval_every == 0 or step == setup.steps:
            recall = float((collection_ranks(model, val) <= 5).float().mean())
            history.append({"step": step, "loss": float(loss.detach()), "val_recall@5": recall})
            if recall > best:
                best, best_state = recall, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    save_file(model.state_dict(), str(path))
    (folder / "history.json").write_text(json.dumps(history, indent=1))
    return model.eval()


def history(variant: str, seed: int, setup: Setup) -> list[dict[str, float]]:
    """The validation history a cached training run wrote."""
    path = model_folder(variant, seed, setup) / "history.json"
    return json.loads(path.read_text()) if path.is_file() else []


def hits(ranks: Tensor, k: int) -> np.ndarray:
    """(N,) 1.0 where the target ranks in the top ``k``."""
    return (ranks <= k).float().numpy()


def model_folder(variant: str, seed: int, setup: Setup) -> Path:
    """Where :func:`train_retriever` keeps a variant's weights."""
    params = {"variant": variant, "seed": seed, "setup": asdict(setup)}
    return run_folder("ret/models", params, code=CODE)


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
