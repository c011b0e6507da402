"""Tests of multi-head attention and the transformer / cross-attention blocks."""

import math

import pytest
import torch
from torch.testing import assert_close

from polymodal.modules.attention import CrossAttentionBlock, MultiHeadAttention, TransformerBlock


def identity_attention(dim: int = 2) -> MultiHeadAttention:
    """One head whose q/k/v/out projections are the identity, without bias."""
    attn = MultiHeadAttention(dim, num_heads=1)
    with torch.no_grad():
        for proj in (attn.q_proj, attn.k_proj, attn.v_proj, attn.out_proj):
            proj.weight.copy_(torch.eye(dim))
            proj.bias.zero_()
    return attn


def test_one_head_two_tokens_matches_hand_computation() -> None:
    x = torch.tensor([[[1.0, 0.0], [2.0, 1.0]]])  # (1, 2, 2)
    # logits = x x^T / sqrt(2) = [[1, 2], [2, 5]] / sqrt(2)
    s = 1 / math.sqrt(2)
    w0 = [math.exp(1 * s), math.exp(2 * s)]
    w1 = [math.exp(2 * s), math.exp(5 * s)]
    w0 = [v / sum(w0) for v in w0]
    w1 = [v / sum(w1) for v in w1]
    expected_w = torch.tensor([[[w0, w1]]])  # (1, 1, 2, 2)
    expected_out = torch.tensor([[w0[0] * 1 + w0[1] * 2, w0[1]], [w1[0] + w1[1] * 2, w1[1]]])

    out = identity_attention()(x, return_weights=True, return_logits=True)

    assert out.logits is not None and out.weights is not None
    assert_close(out.logits, torch.tensor([[[[1.0, 2.0], [2.0, 5.0]]]]) * s)
    assert_close(out.weights, expected_w)
    assert_close(out.output, expected_out[None])


def test_weights_sum_to_one_over_keys() -> None:
    torch.manual_seed(0)
    attn = MultiHeadAttention(8, num_heads=2)
    out = attn(torch.randn(3, 4, 8), torch.randn(3, 5, 8), return_weights=True)
    assert out.weights is not None
    assert out.weights.shape == (3, 2, 4, 5)
    assert_close(out.weights.sum(-1), torch.ones(3, 2, 4))


def test_key_padding_mask_zeroes_masked_key_weight() -> None:
    torch.manual_seed(0)
    attn = MultiHeadAttention(8, num_heads=2)
    padding = torch.tensor([[False, True, False], [False, False, False]])
    out = attn(
        torch.randn(2, 4, 8), torch.randn(2, 3, 8), key_padding_mask=padding, return_weights=True
    )
    assert out.weights is not None
    assert torch.all(out.weights[0, :, :, 1] == 0)
    assert torch.all(out.weights[1] > 0)
    assert_close(out.weights.sum(-1), torch.ones(2, 2, 4))


def test_key_padding_mask_makes_output_independent_of_masked_key() -> None:
    torch.manual_seed(0)
    attn = MultiHeadAttention(8, num_heads=2)
    q, k = torch.randn(1, 2, 8), torch.randn(1, 3, 8)
    padding = torch.tensor([[False, False, True]])
    k2 = k.clone()
    k2[0, 2] = 100.0
    assert_close(
        attn(q, k, key_padding_mask=padding).output, attn(q, k2, key_padding_mask=padding).output
    )


@pytest.mark.parametrize("explicit", [False, True])
def test_fully_masked_row_gives_finite_zeros(explicit: bool) -> None:
    torch.manual_seed(0)
    attn = MultiHeadAttention(8, num_heads=2)
    padding = torch.tensor([[True, True, True], [False, True, False]])
    out = attn(
        torch.randn(2, 4, 8),
        torch.randn(2, 3, 8),
        key_padding_mask=padding,
        return_weights=explicit,
        return_logits=explicit,
    )
    assert torch.isfinite(out.output).all()
    assert torch.all(out.output[0] == 0)
    assert torch.all(out.output[1] != 0)
    if explicit:
        assert out.weights is not None and out.logits is not None
        assert torch.all(out.weights[0] == 0)
        assert torch.isfinite(out.logits).all()


def test_minus_inf_attn_mask_row_gives_zeros_not_nan() -> None:
    torch.manual_seed(0)
    attn = MultiHeadAttention(4, num_heads=1)
    mask = torch.zeros(2, 3)
    mask[0] = float("-inf")  # query 0 may attend to nothing
    for explicit in (False, True):
        out = attn(
            torch.randn(1, 2, 4), torch.randn(1, 3, 4), attn_mask=mask, return_weights=explicit
        )
        assert torch.all(out.output[0, 0] == 0)
        assert torch.isfinite(out.output).all()


def test_additive_attn_mask_blocks_future_tokens() -> None:
    torch.manual_seed(0)
    attn = MultiHeadAttention(8, num_heads=2)
    neg = torch.finfo(torch.float32).min
    causal = torch.triu(torch.full((4, 4), neg), diagonal=1)
    out = attn(torch.randn(2, 4, 8), attn_mask=causal, return_weights=True)
    assert out.weights is not None
    assert torch.all(out.weights.triu(diagonal=1) == 0)
    assert_close(out.weights[..., 0, 0], torch.ones(2, 2))


def test_sdpa_path_equals_explicit_path() -> None:
    torch.manual_seed(0)
    attn = MultiHeadAttention(16, num_heads=4).eval()
    q, k = torch.randn(3, 5, 16), torch.randn(3, 6, 16)
    padding = torch.zeros(3, 6, dtype=torch.bool)
    padding[0, 2:] = True
    padding[2] = True
    bias = torch.randn(3, 4, 5, 6)
    for kwargs in (
        {},
        {"key_padding_mask": padding},
        {"key_padding_mask": padding, "attn_mask": bias},
    ):
        fast = attn(q, k, **kwargs)
        explicit = attn(q, k, return_weights=True, **kwargs)
        assert fast.weights is None and fast.logits is None
        assert_close(fast.output, explicit.output, atol=1e-5, rtol=1e-5)


def test_bool_attn_mask_is_rejected() -> None:
    attn = MultiHeadAttention(4, num_heads=1)
    with pytest.raises(ValueError, match="additive"):
        attn(torch.randn(1, 2, 4), attn_mask=torch.ones(2, 2, dtype=torch.bool))


def test_wrong_width_names_the_input() -> None:
    attn = MultiHeadAttention(4, num_heads=1)
    with pytest.raises(ValueError, match="key must have shape"):
        attn(torch.randn(1, 2, 4), torch.randn(1, 2, 3))


def test_transformer_block_returns_weights_and_matches_fast_path() -> None:
    torch.manual_seed(0)
    block = TransformerBlock(8, num_heads=2).eval()
    x = torch.randn(2, 5, 8)
    slow = block(x, return_weights=True, return_logits=True)
    fast = block(x)
    assert slow.output.shape == (2, 5, 8)
    assert slow.weights is not None and slow.weights.shape == (2, 2, 5, 5)
    assert slow.logits is not None and slow.logits.shape == (2, 2, 5, 5)
    assert_close(fast.output, slow.output, atol=1e-5, rtol=1e-5)


def test_cross_attention_block_keeps_query_shape_and_reads_context() -> None:
    torch.manual_seed(0)
    block = CrossAttentionBlock(8, num_heads=2).eval()
    x, ctx = torch.randn(2, 3, 8), torch.randn(2, 7, 8)
    out = block(x, ctx, return_weights=True)
    assert out.output.shape == (2, 3, 8)
    assert out.weights is not None and out.weights.shape == (2, 2, 3, 7)
    assert not torch.allclose(block(x, ctx + 1.0 * torch.randn_like(ctx)).output, out.output)
