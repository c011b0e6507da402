import pytest
import torch
import torch.nn.functional as F

from polymodal.errors import ConfigError
from polymodal.methods.ret.index import IndexSettings, TokenIndex, exact_search
from polymodal.methods.ret.tuning import Trial, agreement, choose, hits_at, try_settings

pytest.importorskip("faiss")


def trial(agree: float, speed: float, nprobe: int = 1) -> Trial:
    return Trial(16, nprobe, 8, 0, agree, speed)


def test_agreement_is_the_share_of_the_exact_top_k_found():
    found = torch.tensor([[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]])
    exact = torch.tensor([[5, 4, 9, 1, 0, 2], [7, 8, 9, 10, 11, 0]])
    assert agreement(found, exact) == pytest.approx((3 + 5) / 10)  # 1, 4, 5 of 5, 4, 9, 1, 0


def test_hits_at_k():
    found = torch.tensor([[3, 1, 2], [0, 4, 5]])
    assert hits_at(found, torch.tensor([2, 2]), k=2).tolist() == [0.0, 0.0]
    assert hits_at(found, torch.tensor([2, 4]), k=3).tolist() == [1.0, 1.0]


def test_choose_takes_the_fastest_setting_that_reaches_the_bar():
    trials = [trial(0.99, 10), trial(0.985, 30), trial(0.97, 90), trial(1.0, 5)]
    assert choose(trials, 0.98) == trials[1]


def test_without_a_passing_setting_the_most_agreeing_wins_and_ties_go_to_the_fastest():
    trials = [trial(0.9, 40, nprobe=1), trial(0.95, 10, nprobe=2), trial(0.95, 25, nprobe=3)]
    assert choose(trials, 0.98) == trials[2]


def test_choosing_among_no_settings_is_a_config_error():
    with pytest.raises(ConfigError, match="no index setting was tried"):
        choose([], 0.98)


def test_try_settings_measures_every_setting_of_the_grid():
    g = torch.Generator().manual_seed(0)
    documents = F.normalize(torch.randn(300, 4, 16, generator=g), dim=-1)
    queries = F.normalize(documents[:12] + 0.1 * torch.randn(12, 4, 16, generator=g), dim=-1)
    settings = IndexSettings(lists=8, subquantizers=4, train_size=1200)
    index = TokenIndex.build(documents, "v1", settings)
    exact = exact_search(queries, documents, k=5)[1]
    trials = try_settings(index, queries, exact, nprobe=[1, 8], probe=[4, 64], rerank=[0, 16])
    assert [(t.nprobe, t.probe, t.rerank) for t in trials] == [
        (n, p, r) for n in (1, 8) for p in (4, 64) for r in (0, 16)
    ]
    assert all(t.subquantizers == 4 and t.queries_per_second > 0 for t in trials)
    widest = trials[6]  # every list visited, 64 tokens per query token, all re-scored
    assert widest.agreement == 1.0
    assert widest.agreement >= trials[0].agreement
