"""Tests of MAE's random patch masking: how many tokens survive, the mask and the restore."""

import pytest
import torch
from torch.testing import assert_close

from polymodal.errors import ConfigError
from polymodal.modules.masking import num_kept, random_masking, unshuffle


@pytest.mark.parametrize(
    ("n", "ratio", "kept"), [(16, 0.75, 4), (10, 0.6, 4), (7, 0.5, 4), (8, 0.0, 8), (3, 0.9, 1)]
)
def test_keeps_round_one_minus_ratio_times_n_tokens_and_at_least_one(
    n: int, ratio: float, kept: int
) -> None:
    # (7, 0.5): round(3.5) = 4 (half to even); (3, 0.9): round(0.3) = 0, raised to 1
    assert num_kept(n, ratio) == kept
    m = random_masking(torch.randn(3, n, 5), ratio, torch.Generator().manual_seed(0))
    assert m.kept.shape == (3, kept, 5)
    assert m.ids_keep.shape == (3, kept)
    assert (m.mask == 0).sum(dim=1).tolist() == [kept] * 3
    assert (m.mask == 1).sum(dim=1).tolist() == [n - kept] * 3


def test_kept_tokens_are_the_unmasked_ones_at_ids_keep() -> None:
    tokens = torch.arange(2 * 8, dtype=torch.float32).view(2, 8, 1).expand(-1, -1, 3)
    m = random_masking(tokens, 0.5, torch.Generator().manual_seed(1))
    for b in range(2):
        # token values are their own indices (+ 8 in sample 1)
        assert m.kept[b, :, 0].tolist() == [float(i + 8 * b) for i in m.ids_keep[b].tolist()]
        assert sorted(m.ids_keep[b].tolist()) == torch.nonzero(m.mask[b] == 0).flatten().tolist()


def test_samples_get_their_own_masks() -> None:
    m = random_masking(torch.randn(4, 32, 2), 0.5, torch.Generator().manual_seed(0))
    assert len({tuple(row.tolist()) for row in m.mask}) == 4


def test_unshuffle_puts_kept_tokens_back_and_fills_the_rest() -> None:
    tokens = torch.randn(2, 8, 3)
    m = random_masking(tokens, 0.5, torch.Generator().manual_seed(1))
    full = unshuffle(m.kept, torch.full((1, 1, 3), -1.0), m.ids_restore)
    want = torch.where(m.mask[..., None].bool(), torch.tensor(-1.0), tokens)
    assert_close(full, want)


def test_unshuffle_with_ratio_zero_is_the_identity() -> None:
    tokens = torch.randn(2, 6, 4)
    m = random_masking(tokens, 0.0, torch.Generator().manual_seed(2))
    assert m.mask.sum() == 0
    assert_close(unshuffle(m.kept, torch.zeros(4), m.ids_restore), tokens)


def test_ids_restore_is_the_inverse_of_the_shuffle_that_puts_ids_keep_first() -> None:
    m = random_masking(torch.randn(3, 10, 1), 0.3, torch.Generator().manual_seed(4))
    shuffle = m.ids_restore.argsort(dim=1)  # the permutation ids_restore undoes
    assert torch.equal(shuffle[:, :7], m.ids_keep)  # round(0.7 * 10) = 7 kept first
    assert torch.equal(shuffle.gather(1, m.ids_restore), torch.arange(10).expand(3, -1))
    # each kept token lands at its own original index
    full = unshuffle(m.ids_keep[..., None].float(), torch.tensor([-1.0]), m.ids_restore)[..., 0]
    want = torch.where(m.mask.bool(), -1.0, torch.arange(10.0).expand(3, -1))
    assert_close(full, want)


def test_same_generator_seed_same_mask() -> None:
    tokens = torch.randn(2, 12, 4)
    a = random_masking(tokens, 0.75, torch.Generator().manual_seed(3))
    b = random_masking(tokens, 0.75, torch.Generator().manual_seed(3))
    assert torch.equal(a.mask, b.mask) and torch.equal(a.ids_restore, b.ids_restore)


@pytest.mark.parametrize("ratio", [1.0, -0.1])
def test_ratio_outside_zero_one_is_a_config_error(ratio: float) -> None:
    with pytest.raises(ConfigError, match="mask ratio"):
        random_masking(torch.randn(1, 4, 2), ratio)
