"""Tests of the per-modality encoders: token shapes and input checks."""

import pytest
import torch
from torch.testing import assert_close

from polymodal.modules.encoders import ImageCNN, SpectrogramEncoder, TabularMLP, ViTEncoder, pool


def test_pool_is_token_mean() -> None:
    tokens = torch.tensor([[[1.0, 2.0], [3.0, 6.0]]])
    assert_close(pool(tokens), torch.tensor([[2.0, 4.0]]))


def test_image_cnn_gives_grid_tokens() -> None:
    torch.manual_seed(0)
    enc = ImageCNN(in_channels=1, dim=16, depth=3)
    tokens = enc(torch.randn(2, 1, 28, 28))
    # 28 -> 14 -> 7 -> 4 per side
    assert tokens.shape == (2, 16, 16)
    assert enc.num_tokens((1, 28, 28)) == 16
    assert enc.dim == 16


def test_image_cnn_non_square_rgb() -> None:
    enc = ImageCNN(in_channels=3, dim=8, depth=2)
    tokens = enc(torch.randn(1, 3, 10, 17))
    assert tokens.shape == (1, 3 * 5, 8)
    assert enc.num_tokens((3, 10, 17)) == 15


def test_image_cnn_rejects_wrong_channels() -> None:
    with pytest.raises(ValueError, match=r"ImageCNN expects input of shape \(B, 1"):
        ImageCNN(in_channels=1, dim=8)(torch.randn(2, 3, 28, 28))


@pytest.mark.parametrize(("cls_token", "n"), [(True, 17), (False, 16)])
def test_vit_tokens_with_and_without_cls(cls_token: bool, n: int) -> None:
    torch.manual_seed(0)
    enc = ViTEncoder(28, 7, 1, dim=16, depth=1, num_heads=2, cls_token=cls_token)
    tokens = enc(torch.randn(2, 1, 28, 28))
    assert tokens.shape == (2, n, 16)
    assert enc.num_tokens() == n


def test_vit_rejects_other_image_size() -> None:
    enc = ViTEncoder(28, 7, 1, dim=16, depth=1, num_heads=2)
    with pytest.raises(ValueError, match="ViTEncoder"):
        enc(torch.randn(2, 1, 32, 32))


def test_vit_rejects_patch_that_does_not_divide_image() -> None:
    with pytest.raises(ValueError, match="must divide"):
        ViTEncoder(28, 5, 1, dim=16, depth=1, num_heads=2)


def test_spectrogram_encoder_gives_time_tokens() -> None:
    torch.manual_seed(0)
    enc = SpectrogramEncoder(n_mels=40, dim=16, depth=3)
    tokens = enc(torch.randn(2, 40, 101))
    # T: 101 -> 51 -> 26 -> 13
    assert tokens.shape == (2, 13, 16)
    assert enc.num_tokens((40, 101)) == 13


def test_spectrogram_encoder_is_invariant_to_level() -> None:
    torch.manual_seed(0)
    enc = SpectrogramEncoder(n_mels=8, dim=8, depth=2).eval()
    x = torch.randn(2, 8, 20)
    assert_close(enc(x), enc(3.0 * x - 7.0), atol=1e-4, rtol=1e-4)


def test_spectrogram_encoder_zero_input_is_finite() -> None:
    enc = SpectrogramEncoder(n_mels=8, dim=8, depth=2).eval()
    assert torch.isfinite(enc(torch.zeros(1, 8, 20))).all()


def test_spectrogram_encoder_rejects_other_mel_count() -> None:
    with pytest.raises(ValueError, match=r"\(B, 40, \*\)"):
        SpectrogramEncoder(n_mels=40, dim=8)(torch.randn(1, 64, 20))


def test_tabular_mlp_one_token() -> None:
    enc = TabularMLP(12, dim=8, hidden=(16,))
    assert enc(torch.randn(3, 12)).shape == (3, 1, 8)
    assert enc.num_tokens() == 1


def test_tabular_mlp_k_tokens() -> None:
    enc = TabularMLP(12, dim=8, hidden=(16, 16), tokens=5)
    assert enc(torch.randn(3, 12)).shape == (3, 5, 8)
    assert enc.num_tokens() == 5


def _small_vit() -> ViTEncoder:
    torch.manual_seed(0)
    return ViTEncoder(8, 4, 1, dim=8, depth=3, num_heads=2).eval()


def test_vit_zero_hook_is_identity() -> None:
    enc = _small_vit()
    x = torch.randn(2, 1, 8, 8)
    seen: list[int] = []

    def zero(i: int, t: torch.Tensor) -> torch.Tensor:
        seen.append(i)
        return t + torch.zeros_like(t)

    assert_close(enc(x, hook=zero), enc(x))
    assert seen == [0, 1, 2]


def test_vit_hidden_states_match_manual_forward() -> None:
    enc = _small_vit()
    x = torch.randn(2, 1, 8, 8)
    out = enc(x, output_hidden_states=True)
    t = enc.embed(x)
    want = [t]
    for block in enc.blocks:
        t = block(t).output
        want.append(t)
    assert len(out.hidden_states) == 4  # embeddings + 3 blocks
    for got, expected in zip(out.hidden_states, want, strict=True):
        assert got.shape == (2, 5, 8)
        assert_close(got, expected)
    assert_close(out.last, enc.norm(want[-1]))
    assert_close(out.last, enc(x))


def test_vit_hook_on_block_one_changes_only_later_layers() -> None:
    enc = _small_vit()
    x = torch.randn(2, 1, 8, 8)
    plain = enc(x, output_hidden_states=True).hidden_states

    def shift(i: int, t: torch.Tensor) -> torch.Tensor:
        return t + 1.0 if i == 1 else t

    hooked = enc(x, output_hidden_states=True, hook=shift).hidden_states
    # hidden_states[0] is the embedding, [1] the output of block 0: before the hook
    assert_close(hooked[0], plain[0])
    assert_close(hooked[1], plain[1])
    for k in (2, 3):
        assert not torch.allclose(hooked[k], plain[k])


def test_vit_hook_may_add_prompt_tokens() -> None:
    enc = _small_vit()
    x = torch.randn(2, 1, 8, 8)
    prompts = torch.randn(3, 2, 8)  # one set of P = 2 prompts per block

    def deep_prompts(i: int, t: torch.Tensor) -> torch.Tensor:
        # after block 0, replace the previous block's prompts (tokens 1..2) with new ones
        rest = t[:, 1:] if i == 0 else t[:, 3:]
        return torch.cat([t[:, :1], prompts[i].expand(t.shape[0], -1, -1), rest], dim=1)

    out = enc(x, output_hidden_states=True, hook=deep_prompts)
    assert out.hidden_states[0].shape == (2, 5, 8)
    assert [h.shape[1] for h in out.hidden_states[1:]] == [7, 7, 7]
    assert out.last.shape == (2, 7, 8)
