"""Contrastive retrieval: symmetric InfoNCE in training, recall@k over a whole split."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.retrieval import RetrievalRecall

from polymodal.train.tasks.base import TaskModule, batch_size, gather_rows

RECALL_AT = (1, 5)


def info_nce(query: Tensor, document: Tensor, scale: Tensor) -> Tensor:
    """CLIP's symmetric contrastive loss: row i of each side matches row i of the other.

    Args:
        query: (B, E) unit-length query embeddings.
        document: (B, E) unit-length document embeddings.
        scale: () inverse temperature.

    Returns:
        () mean of the query→document and document→query cross-entropies.
    """
    logits = scale * query @ document.T  # (B, B)
    targets = torch.arange(query.shape[0], device=query.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def recall_at(query: Tensor, document: Tensor, k: int) -> Tensor:
    """Share of queries whose own document (same row) ranks in the top ``k`` of all
    documents, by cosine similarity, computed with ``torchmetrics``.

    Args:
        query: (N, E) unit-length embeddings.
        document: (N, E) unit-length embeddings; row i is query i's match.
        k: the cut-off.

    Returns:
        () recall@k in [0, 1].
    """
    n = query.shape[0]
    scores = query @ document.T  # (N, N)
    target = torch.eye(n, dtype=torch.bool, device=query.device)
    indexes = torch.arange(n, device=query.device)[:, None].expand(n, n)
    metric = RetrievalRecall(top_k=k).to(query.device)
    # torchmetrics' recall counts only documents scored above 0; cosines are in
    # [-1, 1], so shifting them by 2 keeps every rank and counts them all.
    return metric(scores.flatten() + 2.0, target.flatten(), indexes=indexes.flatten())


class ContrastiveRetrievalModule(TaskModule):
    """Train a model whose output has ``query`` and ``document`` (B, E) unit-length
    embeddings and a ``logit_scale`` (e.g. :class:`~polymodal.modules.dual_encoder.DualEncoder`).

    Each sample is a matching (query, document) pair. Validation and test embed the
    whole split and rank all of its documents for every query: ``recall@1`` and
    ``recall@5`` (``val_recall@1`` is monitored, higher is better). Prediction
    embeds whichever side an input feeds, through the model's ``query`` and
    ``document`` towers.
    """

    kind: ClassVar[str] = "contrastive_retrieval"
    monitor: ClassVar[str] = "val_recall@1"
    mode: ClassVar[Literal["min", "max"]] = "max"

    def __init__(self, model: Any, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self._embedded: list[tuple[Tensor, Tensor]] = []

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        out = self.model(self.training_inputs(batch, batch_idx))
        loss = info_nce(out.query, out.document, out.logit_scale)
        self.log("train_loss", loss, prog_bar=True, batch_size=batch_size(batch))
        return loss

    def _embed(self, batch: dict[str, Tensor]) -> None:
        out = self.eval_model(batch)
        self._embedded.append((out.query.detach().float(), out.document.detach().float()))

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._embed(batch)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._embed(batch)

    def on_validation_epoch_start(self) -> None:
        self._embedded = []

    on_test_epoch_start = on_validation_epoch_start

    def _score(self, stage: str) -> None:
        query = gather_rows(self, torch.cat([q for q, _ in self._embedded]))
        document = gather_rows(self, torch.cat([d for _, d in self._embedded]))
        self._embedded = []
        for k in RECALL_AT:
            # Every rank holds the gathered split, so the value is the same everywhere.
            self.log(f"{stage}_recall@{k}", recall_at(query, document, k), prog_bar=k == 1)

    def on_validation_epoch_end(self) -> None:
        self._score("val")

    def on_test_epoch_end(self) -> None:
        self._score("test")

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> Any:
        # Inputs to embed may hold one side only: run each tower whose modalities are here.
        out = {}
        for side in ("query", "document"):
            tower = getattr(self.eval_model, side)
            if any(m in batch for m in tower.encoders):
                out[side] = tower(batch)
        return out
