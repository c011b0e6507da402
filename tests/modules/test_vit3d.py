"""Tests of the volume and video ViTs and their sin-cos positions (masking: test_masking.py)."""

import math

import pytest
import torch
from torch.testing import assert_close

from polymodal.errors import ConfigError
from polymodal.modules.vit3d import (
    VideoViT,
    VolumeViT,
    sincos_1d,
    sincos_3d,
)


def test_sincos_1d_hand_values() -> None:
    # dim 4: frequencies 1 and 10000 ** -0.5 = 0.01
    table = sincos_1d(torch.tensor([0, 1]), 4)
    want = torch.tensor(
        [[0.0, 0.0, 1.0, 1.0], [math.sin(1), math.sin(0.01), math.cos(1), math.cos(0.01)]]
    )
    assert_close(table, want)


def test_sincos_3d_hand_values() -> None:
    # dim 6: one frequency (1) per axis, row = [sin z, cos z, sin y, cos y, sin x, cos x]
    table = sincos_3d((2, 3, 4), 6)
    assert table.shape == (24, 6)
    assert_close(table[0], torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0]))
    s1, c1 = math.sin(1), math.cos(1)
    assert_close(table[5], torch.tensor([0.0, 1.0, s1, c1, s1, c1]))  # (0, 1, 1)
    # (1, 2, 3) sits at row 1 * 12 + 2 * 4 + 3 = 23
    want = [s1, c1, math.sin(2), math.cos(2), math.sin(3), math.cos(3)]
    assert_close(table[23], torch.tensor(want))


def test_sincos_3d_rejects_width_not_divisible_by_six() -> None:
    with pytest.raises(ConfigError, match="divisible by 6"):
        sincos_3d((2, 2, 2), 8)


def _volume() -> VolumeViT:
    torch.manual_seed(0)
    return VolumeViT((8, 8, 4), (4, 4, 2), in_channels=1, dim=12, depth=2, num_heads=2).eval()


def test_volume_vit_shapes_and_hidden_states() -> None:
    enc = _volume()
    x = torch.randn(2, 1, 8, 8, 4)
    assert enc.grid == (2, 2, 2)
    assert enc(x).shape == (2, 9, 12)  # CLS + 8 patches
    out = enc(x, output_hidden_states=True)
    assert len(out.hidden_states) == 3
    assert_close(out.last, enc(x))


def test_volume_vit_rejects_wrong_size() -> None:
    with pytest.raises(ValueError, match=r"VolumeViT expects input of shape \(B, 1, 8, 8, 4\)"):
        _volume()(torch.randn(2, 1, 8, 8, 8))


def test_volume_vit_encode_visible() -> None:
    enc = _volume()
    out = enc.encode_visible(torch.randn(2, 1, 8, 8, 4), 0.75, torch.Generator().manual_seed(0))
    assert out.last.shape == (2, 1 + 2, 12)  # CLS + round(0.25 * 8)
    assert out.mask.shape == (2, 8)
    assert out.ids_restore.shape == (2, 8)


def test_video_vit_is_volume_vit_over_time_first_layout() -> None:
    torch.manual_seed(0)
    video = VideoViT(
        frames=4, image_size=8, tubelet=2, patch_size=4, in_channels=3, dim=12, depth=1, num_heads=2
    )
    volume = VolumeViT(
        (4, 8, 8), (2, 4, 4), in_channels=3, dim=12, depth=1, num_heads=2, cls_token=False
    )
    volume.load_state_dict(video.state_dict())
    x = torch.randn(2, 4, 3, 8, 8)  # (B, T, C, H, W)
    tokens = video(x)
    assert tokens.shape == (2, 8, 12)  # (4 / 2) * (8 / 4) ** 2 tubes
    assert_close(tokens, volume(x.transpose(1, 2)))


def test_video_vit_rejects_channels_first_clip() -> None:
    video = VideoViT(frames=4, image_size=8, tubelet=2, patch_size=4, dim=12, num_heads=2)
    with pytest.raises(ValueError, match="VideoViT"):
        video(torch.randn(1, 3, 4, 8, 8))


def test_conv_stem_video_vit_keeps_the_tube_grid_and_refuses_odd_patches() -> None:
    from polymodal.modules.vit3d import ConvStemVideoViT

    plain = VideoViT(frames=4, image_size=16, tubelet=2, patch_size=8, in_channels=1, dim=12)
    stem = ConvStemVideoViT(frames=4, image_size=16, tubelet=2, patch_size=8, in_channels=1, dim=12)
    clip = torch.rand(3, 4, 1, 16, 16)
    assert stem.grid == plain.grid == (2, 2, 2)
    assert stem(clip).shape == plain(clip).shape == (3, 8, 12)
    # Tokens of the first time slice see only its two frames (BatchNorm in eval mode:
    # in training its batch statistics span every frame).
    stem.eval()
    later = clip.clone()
    later[:, 2:] = 0.0
    torch.testing.assert_close(stem.patch_tokens(clip)[:, :4], stem.patch_tokens(later)[:, :4])
    with pytest.raises(ConfigError, match="divisible by 4"):
        ConvStemVideoViT(frames=4, image_size=12, tubelet=2, patch_size=6, in_channels=1, dim=12)


def test_conv_stem_width_sets_the_channels_of_its_two_stages() -> None:
    from polymodal.modules.vit3d import ConvStemVideoViT

    stem = ConvStemVideoViT(
        frames=4, image_size=16, tubelet=2, patch_size=8, in_channels=1, dim=12, stem_width=5
    )
    first, second = (
        m for m in stem.patch_embed if isinstance(m, torch.nn.Conv3d) and m.bias is None
    )
    assert first.weight.shape == (5, 1, 1, 3, 3) and second.weight.shape == (10, 5, 1, 3, 3)
    assert stem(torch.rand(2, 4, 1, 16, 16)).shape == (2, 8, 12)
