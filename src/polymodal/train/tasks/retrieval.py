"""Contrastive retrieval: InfoNCE in training, recall@k and MRR over a whole split.

The model scores queries against documents with its own ``score(query, document)``
when it has one (e.g. late interaction over token sets), by dot product otherwise;
its output may carry a ``hard_negative`` document per query, an extra candidate in
the loss and in the ranked collection.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.retrieval import RetrievalMRR, RetrievalRecall

from polymodal.errors import ConfigError
from polymodal.train.tasks.base import TaskModule, batch_size, gather_rows

RECALL_AT = (1, 5, 10)
IDS = ("document_id", "negative_id")
"""Batch keys naming each row's document and hard negative in the collection (optional)."""


def info_nce(query: Tensor, document: Tensor, scale: Tensor) -> Tensor:
    """CLIP's symmetric contrastive loss: row i of each side matches row i of the other.

    Args:
        query: (B, E) unit-length query embeddings.
        document: (B, E) unit-length document embeddings.
        scale: () inverse temperature.

    Returns:
        () mean of the query→document and document→query cross-entropies.
    """
    return info_nce_logits(scale * query @ document.T)


def info_nce_logits(logits: Tensor, symmetric: bool = True) -> Tensor:
    """InfoNCE of B queries over B + H candidates: column i is row i's document, the
    other B − 1 documents are in-batch negatives, the last H hard negatives.

    Args:
        logits: (B, B + H) scaled scores.
        symmetric: also the document→query cross-entropy over the B queries (CLIP);
            the mean of both directions.

    Returns:
        () the loss.
    """
    b = logits.shape[0]
    targets = torch.arange(b, device=logits.device)
    loss = F.cross_entropy(logits, targets)
    if not symmetric:
        return loss
    return (loss + F.cross_entropy(logits[:, :b].T, targets)) / 2


def ranking_metrics(scores: Tensor, target: Tensor) -> dict[str, Tensor]:
    """Recall@k (:data:`RECALL_AT`) and MRR of ranking every document for every query
    (``torchmetrics``), one relevant document per query.

    Args:
        scores: (N_q, N_d) scores, higher = more relevant.
        target: (N_q,) the relevant document's column.

    Returns:
        ``recall@k`` and ``mrr``, () each.
    """
    n_q, n_d = scores.shape
    relevant = torch.zeros(n_q, n_d, dtype=torch.bool, device=scores.device)
    relevant[torch.arange(n_q), target] = True
    indexes = torch.arange(n_q, device=scores.device)[:, None].expand(n_q, n_d).flatten()
    # torchmetrics counts only documents scored above 0; a shift keeps every rank.
    preds = (scores - scores.min() + 1).flatten()
    out = {
        f"recall@{k}": RetrievalRecall(top_k=k).to(scores.device)(
            preds, relevant.flatten(), indexes=indexes
        )
        for k in RECALL_AT
    }
    out["mrr"] = RetrievalMRR().to(scores.device)(preds, relevant.flatten(), indexes=indexes)
    return out


def collection(
    document: Tensor, negative: Tensor | None, ids: tuple[Tensor, Tensor] | None
) -> tuple[Tensor, Tensor]:
    """The documents to rank and each query's column among them.

    Without ids row i's document is query i's (a pair per row), hard negatives
    appended. With ids (``document_id``, ``negative_id``, (N,) each) every document
    and hard negative enters once, by id, in order of first appearance.

    Returns:
        (M, ...) documents and (N,) target columns.
    """
    n = document.shape[0]
    if ids is None:
        pool = document if negative is None else torch.cat([document, negative])
        return pool, torch.arange(n, device=document.device)
    pool = document if negative is None else torch.cat([document, negative])
    pool_ids = ids[0] if negative is None else torch.cat(ids)
    unique, inverse = torch.unique(pool_ids, return_inverse=True)
    first = torch.full((len(unique),), len(pool_ids), device=pool_ids.device)
    first = first.scatter_reduce(
        0, inverse, torch.arange(len(pool_ids), device=pool_ids.device), "amin"
    )
    order = first.argsort()  # ids in order of first appearance
    column = torch.empty_like(order)
    column[order] = torch.arange(len(order), device=order.device)
    return pool[first[order]], column[inverse[:n]]


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
    """Train a model whose output has ``query`` and ``document`` embeddings — (B, E)
    vectors, or (B, Q, E) token sets scored by the model's own ``score`` — and a
    ``logit_scale`` (e.g. :class:`~polymodal.modules.dual_encoder.DualEncoder`), and
    optionally a ``hard_negative`` (B, ...) document per query.

    Each sample is a matching (query, document) pair, optionally with a hard negative
    and the ids of both (``document_id``, ``negative_id``). The loss is InfoNCE of each
    query over the batch's documents and hard negatives (:func:`info_nce_logits`).
    Validation and test embed the whole split and rank its documents for every query
    (every distinct id once, hard negatives included): ``recall@1/5/10`` and ``mrr``;
    ``val_recall@<monitor_at>`` is monitored, higher is better. Prediction embeds
    whichever side an input feeds, through the model's ``query`` and ``document`` towers.

    Args:
        model: the retriever.
        monitor_at: the k of the monitored validation recall (one of :data:`RECALL_AT`).
        symmetric: add the document→query direction to the loss (CLIP); the query→
            document direction alone is the loss of a ranker over documents.
        **kwargs: :class:`~polymodal.train.tasks.base.TaskModule` options.
    """

    kind: ClassVar[str] = "contrastive_retrieval"
    monitor: ClassVar[str] = "val_recall@1"
    mode: ClassVar[Literal["min", "max"]] = "max"

    def __init__(
        self, model: Any, monitor_at: int = 1, symmetric: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(model, **kwargs)
        if monitor_at not in RECALL_AT:
            raise ConfigError(
                f"task.options.monitor_at must be one of {RECALL_AT}, got {monitor_at}"
            )
        self.monitor = f"val_recall@{monitor_at}"  # type: ignore[misc]  # per run, not per class
        self.symmetric = symmetric
        self._embedded: list[dict[str, Tensor]] = []

    def scores(self, query: Tensor, document: Tensor) -> Tensor:
        """(N_q, N_d) scores: the model's ``score`` if it has one, else dot products."""
        score = getattr(self.eval_model, "score", None)
        return score(query, document) if score is not None else query @ document.T

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        out = self.model(self.training_inputs(batch, batch_idx))
        negative = getattr(out, "hard_negative", None)
        candidates = out.document if negative is None else torch.cat([out.document, negative])
        logits = out.logit_scale * self.scores(out.query, candidates)  # (B, B + H)
        loss = info_nce_logits(logits, self.symmetric)
        self.log("train_loss", loss, prog_bar=True, batch_size=batch_size(batch))
        return loss

    def _embed(self, batch: dict[str, Tensor]) -> None:
        out = self.eval_model(batch)
        rows = {"query": out.query, "document": out.document}
        if getattr(out, "hard_negative", None) is not None:
            rows["negative"] = out.hard_negative
        rows |= {key: batch[key] for key in IDS if key in batch}
        self._embedded.append(
            {k: v.detach().float() if v.is_floating_point() else v for k, v in rows.items()}
        )

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._embed(batch)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._embed(batch)

    def on_validation_epoch_start(self) -> None:
        self._embedded = []

    on_test_epoch_start = on_validation_epoch_start

    def _score(self, stage: str) -> None:
        split = {
            key: gather_rows(self, torch.cat([rows[key] for rows in self._embedded]))
            for key in self._embedded[0]
        }
        self._embedded = []
        ids = (split["document_id"], split["negative_id"]) if IDS[1] in split else None
        if ids is None and IDS[0] in split:
            ids = (split["document_id"], split["document_id"])
        pool, target = collection(split["document"], split.get("negative"), ids)
        query = split["query"]
        scores = torch.cat([self.scores(query[i : i + 64], pool) for i in range(0, len(query), 64)])
        # Every rank holds the gathered split, so the values are the same everywhere.
        for name, value in ranking_metrics(scores, target).items():
            self.log(f"{stage}_{name}", value, prog_bar=name == self.monitor.removeprefix("val_"))

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
