"""Tests of the small text encoder and the masked mean."""

import pytest
import torch
from torch.testing import assert_close

from polymodal.modules.text_encoder import SmallTextEncoder, masked_mean


def _encoder() -> SmallTextEncoder:
    torch.manual_seed(0)
    return SmallTextEncoder(dim=16, depth=2, num_heads=2, max_length=12).eval()


def test_masked_mean_ignores_padding() -> None:
    tokens = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [0.0], [0.0]]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert_close(masked_mean(tokens, mask), torch.tensor([[2.0], [2.0]]))


def test_tokenize_bytes_with_padding() -> None:
    ids, mask = _encoder().tokenize(["ab", "c"])
    # 'a' = 97, 'b' = 98, 'c' = 99, each + 1; 0 pads
    assert ids.tolist() == [[98, 99], [100, 0]]
    assert mask.tolist() == [[1, 1], [1, 0]]


def test_tokenize_cuts_at_max_length() -> None:
    ids, _ = _encoder().tokenize(["x" * 20])
    assert ids.shape == (1, 12)


def test_encode_shapes() -> None:
    out = _encoder().encode(["a cat", "hello there"])
    assert out.last.shape == (2, 11, 16)
    assert len(out.hidden_states) == 3  # embeddings + 2 blocks
    assert all(h.shape == (2, 11, 16) for h in out.hidden_states)
    assert out.attention_mask.sum(dim=1).tolist() == [5, 11]


def test_padding_does_not_change_real_tokens() -> None:
    enc = _encoder()
    ids = torch.tensor([[5, 6, 7]])
    alone = enc(ids).last
    padded = enc(torch.tensor([[5, 6, 7, 0, 0]]), torch.tensor([[1, 1, 1, 0, 0]])).last
    assert_close(padded[:, :3], alone)


def test_unmasked_padding_would_change_real_tokens() -> None:
    # the test above can fail: attending to the pad ids changes the outputs
    enc = _encoder()
    alone = enc(torch.tensor([[5, 6, 7]])).last
    attended = enc(torch.tensor([[5, 6, 7, 0, 0]])).last
    assert not torch.allclose(attended[:, :3], alone)


def test_rejects_float_ids() -> None:
    with pytest.raises(ValueError, match=r"text_ids must be \(B, L\) int64"):
        _encoder()(torch.zeros(2, 3))
