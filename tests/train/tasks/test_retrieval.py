"""Tests of contrastive retrieval: symmetric InfoNCE and recall@k by hand."""

import math

import pytest
import torch

from polymodal.train.tasks.retrieval import info_nce, recall_at


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
