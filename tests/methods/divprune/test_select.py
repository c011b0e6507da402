"""DivPrune's greedy max-min selection and the baselines, against hand-worked examples."""

from __future__ import annotations

import math

import pytest
import torch

from polymodal.errors import ConfigError, DataError
from polymodal.methods.divprune.reference import divprune_loop, divprune_python
from polymodal.methods.divprune.select import (
    attention_tokens,
    cosine_distance,
    divprune,
    greedy_max_min,
    keep_count,
    random_tokens,
    select_tokens,
    uniform_tokens,
)

# A hand-made symmetric distance matrix over five tokens.
#
#            0     1     2     3     4
DISTANCE = [
    [0.00, 0.20, 0.90, 0.50, 0.70],  # 0
    [0.20, 0.00, 0.80, 0.60, 0.40],  # 1
    [0.90, 0.80, 0.00, 0.30, 0.60],  # 2
    [0.50, 0.60, 0.30, 0.00, 0.35],  # 3
    [0.70, 0.40, 0.60, 0.35, 0.00],  # 4
]
# First pick: each column's second-smallest value (its nearest neighbour) is
#   0.20, 0.20, 0.30, 0.30, 0.35  ->  token 4 is the most isolated.
# Distance to the kept set {4}:            0.70, 0.40, 0.60, 0.35   (tokens 0-3)
#   pick token 0 (0.70); update with row 0: -, min(.40,.20)=.20, min(.60,.90)=.60, min(.35,.50)=.35
#   pick token 2 (0.60); update with row 2: -, min(.20,.80)=.20, -, min(.35,.30)=.30
#   pick token 3 (0.30), over token 1 (0.20).
PICK_ORDER = [4, 0, 2, 3]


def test_greedy_picks_the_hand_worked_order() -> None:
    distance = torch.tensor([DISTANCE])
    for keep in range(1, 5):
        order = greedy_max_min(distance, keep)
        assert order.tolist() == [PICK_ORDER[:keep]]


def test_divprune_keeps_one_token_per_cluster_sorted() -> None:
    # Unit vectors at these angles: clusters {0°, 10°}, {90°, 95°} and {180°}.
    # Cosine distances 1 - cos(Δ): nearest neighbours are 0.0152, 0.0152, 0.0038,
    # 0.9128 (180° to 95°) and 0.0038, so token 3 (180°) comes first; then token 0
    # (distance 2 to 180°), then token 2 (distance 1 to both), in pick order 3, 0, 2.
    degrees = torch.tensor([0.0, 10.0, 90.0, 180.0, 95.0])
    radians = degrees * math.pi / 180
    features = torch.stack([radians.cos(), radians.sin()], dim=-1)[None]  # (1, 5, 2)
    assert greedy_max_min(cosine_distance(features), 3).tolist() == [[3, 0, 2]]
    assert divprune(features, 3).tolist() == [[0, 2, 3]]


def test_divprune_is_batched_and_each_sample_is_independent() -> None:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(4, 30, 8, generator=generator)
    batched = divprune(features, 7)
    one_by_one = torch.cat([divprune(features[i : i + 1], 7) for i in range(4)])
    torch.testing.assert_close(batched, one_by_one)


def test_fast_selection_matches_the_python_loop_and_the_published_loop() -> None:
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(3, 40, 16, generator=generator)
    order = greedy_max_min(cosine_distance(features), 12)
    for b in range(3):
        assert order[b].tolist() == divprune_python(features[b], 12)
        assert order[b].tolist() == divprune_loop(features[b], 12).tolist()


def test_duplicates_break_ties_by_lowest_index_and_are_never_picked_twice() -> None:
    features = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]])
    # Every token has a duplicate (nearest-neighbour distance 0): token 0 goes first,
    # then the farthest from it, token 2; then only duplicates remain, lowest first.
    assert greedy_max_min(cosine_distance(features), 4).tolist() == [[0, 2, 1, 3]]


def test_cosine_distance_ignores_scale_and_has_a_zero_diagonal() -> None:
    features = torch.tensor([[[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]]])
    expected = torch.tensor([[[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 1.0, 0.0]]])
    torch.testing.assert_close(cosine_distance(features), expected)


@pytest.mark.parametrize(
    ("tokens", "ratio", "expected"),
    [
        (576, 0.098, 56),
        (2880, 0.098, 282),
        (64, 0.1, 6),
        (64, 0.05, 3),
        (64, 1.0, 64),
        (10, 0.01, 1),
    ],
)
def test_keep_count_rounds_ratio_times_tokens(tokens: int, ratio: float, expected: int) -> None:
    assert keep_count(tokens, ratio) == expected


@pytest.mark.parametrize("ratio", [0.0, -0.1, 1.5, float("nan")])
def test_keep_count_rejects_ratios_outside_zero_one(ratio: float) -> None:
    with pytest.raises(ConfigError, match="keep ratio"):
        keep_count(64, ratio)


def test_uniform_takes_the_centre_of_each_equal_run() -> None:
    # 64 tokens in 6 runs of 10.67: centres at 5.3, 16, 26.7, 37.3, 48, 58.7.
    assert uniform_tokens(2, 64, 6).tolist() == [[5, 16, 26, 37, 48, 58]] * 2


def test_random_is_sorted_unique_and_seeded() -> None:
    first = random_tokens(3, 64, 10, torch.Generator().manual_seed(5))
    again = random_tokens(3, 64, 10, torch.Generator().manual_seed(5))
    torch.testing.assert_close(first, again)
    for row in first.tolist():
        assert row == sorted(set(row)) and len(row) == 10


def test_fastv_keeps_the_highest_scores_in_original_order() -> None:
    scores = torch.tensor([[0.1, 0.5, 0.05, 0.3, 0.05], [0.4, 0.0, 0.1, 0.2, 0.3]])
    assert attention_tokens(scores, 2).tolist() == [[1, 3], [0, 4]]


def test_select_tokens_names_unknown_methods_and_missing_scores() -> None:
    features = torch.randn(1, 8, 4)
    with pytest.raises(ConfigError, match="unknown selection method 'pca'"):
        select_tokens("pca", features, 2)
    with pytest.raises(ConfigError, match="attention scores"):
        select_tokens("attention", features, 2)
    with pytest.raises(ConfigError, match="cannot keep 9 of 8"):
        select_tokens("divprune", features, 9)


def test_features_with_nan_or_inf_are_rejected_not_pruned_into_duplicates() -> None:
    # A NaN distance used to overwrite a kept token's -inf marker, so the loop picked it again.
    features = torch.randn(2, 6, 4, generator=torch.Generator().manual_seed(0))
    features[1, 3, 0] = float("nan")
    with pytest.raises(DataError, match=r"features contain NaN or Inf \(first in sample 1 of 2\)"):
        divprune(features, keep=4, backend="torch")
    features[1, 3, 0] = float("inf")
    with pytest.raises(DataError, match="DivPrune needs finite visual-token features"):
        select_tokens("divprune", features, keep=4)
    distance = torch.zeros(1, 3, 3)
    distance[0, 1, 2] = float("nan")
    with pytest.raises(DataError, match="distances contain NaN or Inf"):
        greedy_max_min(distance, keep=2)
