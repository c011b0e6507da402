"""Tests of contrastive retrieval: InfoNCE (with hard negatives), recall@k and the
ranked collection by hand, and a model that scores with its own function."""

import math
from typing import NamedTuple

import pytest
import torch
from torch import nn

from polymodal.errors import ConfigError
from polymodal.train.tasks.retrieval import (
    ContrastiveRetrievalModule,
    collection,
    info_nce,
    info_nce_logits,
    ranking_metrics,
    recall_at,
)


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_info_nce_two_pairs_by_hand() -> None:
    query = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    document = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    # logits = [[1, .6], [0, .8]]; row i's CE is log(1 + e^(other - own))
    rows = _softplus(0.6 - 1.0) + _softplus(0.0 - 0.8)
    columns = _softplus(0.0 - 1.0) + _softplus(0.6 - 0.8)
    assert info_nce(query, document, torch.tensor(1.0)).item() == pytest.approx(
        (rows / 2 + columns / 2) / 2
    )
    scaled = (_softplus(-0.8) + _softplus(-1.6) + _softplus(-2.0) + _softplus(-0.4)) / 4
    assert info_nce(query, document, torch.tensor(2.0)).item() == pytest.approx(scaled)


def test_info_nce_is_symmetric_in_query_and_document() -> None:
    torch.manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(4, 3), dim=-1)
    d = torch.nn.functional.normalize(torch.randn(4, 3), dim=-1)
    scale = torch.tensor(5.0)
    assert info_nce(q, d, scale).item() == pytest.approx(info_nce(d, q, scale).item())


def _angles(*degrees: float) -> torch.Tensor:
    r = torch.tensor(degrees) * math.pi / 180
    return torch.stack([r.cos(), r.sin()], dim=1)


def test_recall_at_k_by_hand() -> None:
    documents = _angles(0, 30, 60)
    # query 0 at 0: own doc nearest; query 1 at 10: doc 0 (10) before own (20);
    # query 2 at -20: doc 0 (20), doc 1 (50), own (80) last; every cosine is positive
    queries = _angles(0, 10, -20)
    got = [recall_at(queries, documents, k).item() for k in (1, 2, 3)]
    assert got == pytest.approx([1 / 3, 2 / 3, 1.0])


def test_own_document_ranked_first_counts_even_with_a_negative_cosine() -> None:
    queries = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    documents = torch.tensor([[0.6, -0.8], [-0.8, -0.6]])
    # query 1: own document -0.6 beats the other's -0.8
    assert recall_at(queries, documents, 1).item() == 1.0


def test_recall_at_one_is_one_for_matching_embeddings() -> None:
    e = torch.eye(4)
    assert recall_at(e, e, 1).item() == 1.0


def test_info_nce_with_hard_negatives_one_direction_by_hand() -> None:
    # 2 queries; columns: their documents, then their hard negatives
    logits = torch.tensor([[2.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 3.0]])
    row0 = math.log(math.exp(2) + 1 + math.e + 1) - 2
    row1 = math.log(1 + math.e + 1 + math.exp(3)) - 1
    loss = info_nce_logits(logits, symmetric=False)
    assert loss.item() == pytest.approx((row0 + row1) / 2)
    # the symmetric version adds the document->query direction over the B documents only
    columns = (_softplus(0.0 - 2.0) + _softplus(0.0 - 1.0)) / 2
    both = info_nce_logits(logits, symmetric=True).item()
    assert both == pytest.approx(((row0 + row1) / 2 + columns) / 2)


def test_collection_keeps_each_document_id_once_in_order_of_appearance() -> None:
    document = torch.tensor([[1.0], [2.0], [3.0]])
    negative = torch.tensor([[4.0], [1.0], [5.0]])
    ids = (torch.tensor([10, 20, 30]), torch.tensor([40, 10, 50]))
    pool, target = collection(document, negative, ids)
    assert pool.flatten().tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert target.tolist() == [0, 1, 2]
    # two queries sharing a document share its column
    pool, target = collection(document[[0, 0]], None, (torch.tensor([7, 7]),) * 2)
    assert len(pool) == 1 and target.tolist() == [0, 0]


def test_ranking_metrics_by_hand() -> None:
    scores = torch.tensor([[0.9, 0.1, -0.5], [0.2, -0.3, 0.8]])
    out = ranking_metrics(scores, torch.tensor([0, 1]))  # ranks 1 and 3
    assert out["recall@1"].item() == pytest.approx(0.5)
    assert out["recall@5"].item() == pytest.approx(1.0)
    assert out["mrr"].item() == pytest.approx((1 + 1 / 3) / 2)


class _Out(NamedTuple):
    query: torch.Tensor
    document: torch.Tensor
    hard_negative: torch.Tensor
    logit_scale: torch.Tensor


class _MaxSim(nn.Module):
    """Token sets passed through; scored by the sum of each query token's best match."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    @staticmethod
    def score(query: torch.Tensor, document: torch.Tensor) -> torch.Tensor:
        return torch.einsum("aie,bje->abij", query, document).amax(-1).sum(-1)

    def forward(self, batch: dict[str, torch.Tensor]) -> _Out:
        return _Out(batch["q"] * self.w, batch["d"], batch["n"], torch.tensor(1.0))


def test_training_loss_uses_the_models_score_and_its_hard_negatives() -> None:
    q = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 0.0]]])  # (2, 2, 2)
    d = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [0.0, 1.0]]])
    n = torch.tensor([[[0.0, 1.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]])
    module = ContrastiveRetrievalModule(_MaxSim(), symmetric=False)
    module.log = lambda *args, **kwargs: None  # type: ignore[method-assign]
    loss = module.training_step({"q": q, "d": d, "n": n}, 0)
    # max-sim scores: query 0 -> [2, 1, 1, 2], query 1 -> [2, 0, 0, 2]
    logits = torch.tensor([[2.0, 1.0, 1.0, 2.0], [2.0, 0.0, 0.0, 2.0]])
    assert loss.item() == pytest.approx(info_nce_logits(logits, symmetric=False).item())


def test_monitored_recall_follows_the_option() -> None:
    assert ContrastiveRetrievalModule(_MaxSim(), monitor_at=5).monitor == "val_recall@5"
    with pytest.raises(ConfigError, match="monitor_at must be one of"):
        ContrastiveRetrievalModule(_MaxSim(), monitor_at=3)
