"""Tests of the masked autoencoder: patch order, the round trip, the visible pass, the output."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from polymodal.errors import ConfigError
from polymodal.modules.encoders import ViTEncoder
from polymodal.modules.mae import build_mae, patchify, unpatchify
from polymodal.modules.masking import unshuffle


def _voxel_picker(conv: nn.Conv2d | nn.Conv3d, channels: int) -> None:
    """Make output channel o of ``conv`` copy the voxel that patchify puts at value o:
    values are ordered (p_d, p_h, p_w, C), so o = flat_position * C + c."""
    with torch.no_grad():
        conv.weight.zero_()
        positions = conv.weight[0, 0].numel()
        for position in range(positions):
            for c in range(channels):
                conv.weight[position * channels + c, c].view(-1)[position] = 1.0


def test_patchify_order_equals_conv3d_patch_embedding_tokens() -> None:
    patch = (2, 3, 2)
    conv = nn.Conv3d(2, 2 * 3 * 2 * 2, patch, stride=patch, bias=False)
    _voxel_picker(conv, channels=2)
    x = torch.randn(2, 2, 4, 6, 4)  # (B, C, D, H, W): a 2 x 2 x 2 grid of patches
    tokens = conv(x).flatten(2).transpose(1, 2)  # a VolumeViT's token order
    assert tokens.shape == (2, 8, 24)
    assert torch.equal(patchify(x, patch), tokens)


def test_patchify_of_an_image_as_one_slice_equals_conv2d_tokens() -> None:
    conv = nn.Conv2d(3, 2 * 4 * 3, (2, 4), stride=(2, 4), bias=False)
    _voxel_picker(conv, channels=3)
    x = torch.randn(2, 3, 4, 8)  # a 2 x 2 grid of 2 x 4 patches
    tokens = conv(x).flatten(2).transpose(1, 2)  # a ViTEncoder's token order
    assert torch.equal(patchify(x.unsqueeze(2), (1, 2, 4)), tokens)


def test_patchify_hand_values() -> None:
    x = torch.arange(16.0).view(1, 1, 1, 4, 4)
    patches = patchify(x, (1, 2, 2))
    assert patches[0].tolist() == [
        [0.0, 1.0, 4.0, 5.0],
        [2.0, 3.0, 6.0, 7.0],
        [8.0, 9.0, 12.0, 13.0],
        [10.0, 11.0, 14.0, 15.0],
    ]


def test_unpatchify_inverts_patchify() -> None:
    x = torch.randn(2, 3, 4, 6, 8)
    patches = patchify(x, (2, 3, 4))
    assert patches.shape == (2, 2 * 2 * 2, 2 * 3 * 4 * 3)
    assert torch.equal(unpatchify(patches, (2, 3, 4), (3, 4, 6, 8)), x)
    assert torch.equal(patchify(unpatchify(patches, (2, 3, 4), (3, 4, 6, 8)), (2, 3, 4)), patches)


@pytest.mark.parametrize("cls_token", [True, False])
def test_encode_visible_with_ratio_zero_gives_the_forward_tokens_once_unshuffled(
    cls_token: bool,
) -> None:
    torch.manual_seed(0)
    enc = ViTEncoder(8, 4, 1, dim=8, depth=2, num_heads=2, cls_token=cls_token).eval()
    x = torch.randn(2, 1, 8, 8)
    out = enc.encode_visible(x, 0.0, torch.Generator().manual_seed(5))
    full = enc(x)
    cls = int(cls_token)
    assert out.last.shape == (2, 4 + cls, 8) and out.mask.sum() == 0
    patches = unshuffle(out.last[:, cls:], torch.zeros(8), out.ids_restore)
    assert_close(patches, full[:, cls:], atol=1e-5, rtol=1e-5)
    assert_close(out.last[:, :cls], full[:, :cls], atol=1e-5, rtol=1e-5)


def test_encode_visible_keeps_round_share_of_patches() -> None:
    enc = ViTEncoder(8, 2, 1, dim=8, depth=1, num_heads=2)  # 16 patches
    out = enc.encode_visible(torch.randn(3, 1, 8, 8), 0.75, torch.Generator().manual_seed(0))
    assert out.last.shape == (3, 1 + 4, 8)
    assert out.mask.sum(dim=1).tolist() == [12.0] * 3


SHAPES = {"image": [3, 8, 8], "ct": [4, 8, 8], "video": [4, 3, 8, 8]}


@pytest.mark.parametrize("modality", list(SHAPES))
def test_reconstruction_equals_the_input_on_visible_patches(modality: str) -> None:
    torch.manual_seed(0)
    mae = build_mae(
        "none",
        {modality: {"shape": SHAPES[modality]}},
        dim=12,
        patch_size=4,
        depth=1,
        num_heads=2,
        decoder_dim=12,
        mask_ratio=0.5,
    ).eval()
    x = torch.rand(2, *SHAPES[modality])
    out = mae({modality: x})
    n = {"image": 4, "ct": 4, "video": 8}[modality]  # image 2x2, ct 1x2x2, video 2x2x2
    assert out.mask.shape == (2, n) and out.mask.sum(dim=1).tolist() == [n / 2] * 2
    assert out.reconstruction.shape == x.shape
    truth = patchify(mae.as_volume(x), mae.patch)
    assert_close(out.target, truth)
    shown = patchify(mae.as_volume(out.reconstruction), mae.patch)
    visible, hidden = out.mask == 0, out.mask == 1
    assert torch.equal(shown[visible], truth[visible])
    assert torch.equal(shown[hidden], out.prediction[hidden])


def test_norm_pix_target_has_zero_mean_unit_variance_per_patch() -> None:
    torch.manual_seed(0)
    mae = build_mae("none", {"image": {"shape": [1, 8, 8]}}, dim=12, decoder_dim=12, norm_pix=True)
    out = mae({"image": torch.rand(2, 1, 8, 8)})
    assert_close(out.target.mean(dim=-1), torch.zeros(2, 4), atol=1e-5, rtol=0)
    assert_close(out.target.var(dim=-1), torch.ones(2, 4), atol=1e-3, rtol=0)


def test_norm_pix_reconstruction_keeps_the_input_layout() -> None:
    mae = build_mae("none", {"image": {"shape": [1, 8, 8]}}, dim=12, decoder_dim=12, norm_pix=True)
    x = torch.rand(2, 1, 8, 8)
    assert mae({"image": x}).reconstruction.shape == x.shape


def test_build_mae_refuses_two_modalities() -> None:
    with pytest.raises(ConfigError, match="one MAE per modality"):
        build_mae("none", {"image": {"shape": [3, 8, 8]}, "depth": {"shape": [1, 8, 8]}})


def test_build_mae_refuses_a_shape_it_cannot_patch() -> None:
    with pytest.raises(ConfigError, match="cannot patch 'audio'"):
        build_mae("none", {"audio": {"shape": [40, 100]}})


def test_mae_names_its_modality_when_the_batch_lacks_it() -> None:
    mae = build_mae("none", {"image": {"shape": [1, 8, 8]}}, dim=12, decoder_dim=12)
    with pytest.raises(ConfigError, match="reads 'image'"):
        mae({"audio": torch.zeros(1, 8)})
