import math

import pytest
import torch
from torch.testing import assert_close

from polymodal.methods.abpem.gap import (
    attention_gap,
    block_statistics,
    bootstrapping_loss,
    gaussian_kl,
)

SEGMENTS = {"audio": slice(0, 2), "image": slice(2, 4)}


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


@pytest.mark.parametrize(
    ("p", "q", "expected"),
    [
        ((0.0, 1.0), (0.0, 1.0), 0.0),
        ((1.0, 1.0), (0.0, 1.0), 0.5),  # (mu_p - mu_q)^2 / 2
        ((0.0, 1.0), (0.0, 2.0), math.log(2) + 1 / 8 - 0.5),
    ],
)
def test_gaussian_kl_matches_the_closed_form(p, q, expected):
    assert_close(gaussian_kl(t(p[0]), t(p[1]), t(q[0]), t(q[1])), t(expected))


def head_logits() -> torch.Tensor:
    """(1, 2, 4, 4) logits whose mean over the two heads is the matrix below."""
    mean = t(0, 2, 4, 1, 1, 1, 3, 5, 5, 2, 6, 0, 2, 4, 0, 6).view(1, 1, 4, 4)
    return torch.cat([mean - 1, mean + 1], dim=1)


def test_block_statistics_average_heads_then_summarise_each_block():
    stats = block_statistics(head_logits(), SEGMENTS)
    # image -> image block: [[6, 0], [0, 6]], mean 3, unbiased std sqrt(36 / 3)
    mean, std = stats[("image", "image")]
    assert_close(mean, t(3.0))
    assert_close(std, t(math.sqrt(12)))
    # image -> audio block: [[5, 2], [2, 4]], mean 3.25, unbiased std sqrt(6.75 / 3) = 1.5
    assert_close(stats[("image", "audio")][0], t(3.25))
    assert_close(stats[("image", "audio")][1], t(1.5))


def test_attention_gap_sums_the_two_cross_to_self_divergences():
    s = block_statistics(head_logits(), SEGMENTS)
    expected = gaussian_kl(*s[("image", "audio")], *s[("audio", "audio")]) + gaussian_kl(
        *s[("audio", "image")], *s[("image", "image")]
    )
    assert_close(attention_gap(head_logits(), SEGMENTS), expected)
    # audio -> audio [[0, 2], [1, 1]]: mean 1, std sqrt(2/3); image -> audio: 3.25, 1.5
    kl = math.log(math.sqrt(2 / 3) / 1.5) + (1.5**2 + 2.25**2) / (2 * 2 / 3) - 0.5
    assert float(gaussian_kl(t(3.25), t(1.5), t(1.0), t(math.sqrt(2 / 3)))) == pytest.approx(kl)


def test_attention_gap_is_zero_when_cross_blocks_match_self_blocks():
    block = t(0, 1, 2, 3).view(2, 2)
    logits = torch.cat([torch.cat([block, block], 1), torch.cat([block, block], 1)], 0)
    gap = attention_gap(logits.view(1, 1, 4, 4), SEGMENTS)
    assert_close(gap, t(0.0))


def test_bootstrapping_treats_self_attention_as_a_fixed_target():
    logits = torch.randn(2, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    bootstrapping_loss(logits, SEGMENTS).backward()
    assert logits.grad is not None
    assert torch.all(logits.grad[:, :, :2, :2] == 0) and torch.all(logits.grad[:, :, 2:, 2:] == 0)
    assert logits.grad[:, :, 2:, :2].abs().sum() > 0


def test_bootstrapping_averages_only_complete_samples():
    logits = torch.randn(3, 1, 4, 4, dtype=torch.float64)
    per_sample = attention_gap(logits, SEGMENTS)
    loss = bootstrapping_loss(logits, SEGMENTS, torch.tensor([True, False, True]))
    assert_close(loss, per_sample[[0, 2]].mean())
    assert float(bootstrapping_loss(logits, SEGMENTS, torch.zeros(3, dtype=torch.bool))) == 0.0
