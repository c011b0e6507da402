"""The hybrid ViT's convolutional stem: the patch embedding's grid, a wider view."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from polymodal.errors import ConfigError
from polymodal.modules.conv_stem import ConvStem


def columns_seen(embedding: nn.Module, size: int, patch: int) -> int:
    """How many pixel columns the middle token's output depends on (by its gradient)."""
    torch.manual_seed(0)
    pixels = torch.rand(1, 3, size, size, requires_grad=True)
    grid = embedding(pixels)
    middle = size // patch // 2
    grid[0, :, middle, middle].sum().backward()
    assert pixels.grad is not None
    return int((pixels.grad.abs().sum(dim=(0, 1, 2)) > 0).sum())


def test_the_stem_keeps_the_patch_grid() -> None:
    stem = ConvStem(3, 24, patch_size=4)
    assert stem(torch.rand(2, 3, 96, 96)).shape == (2, 24, 24, 24)  # 576 tokens, as p = 4
    assert ConvStem(3, 24, patch_size=8)(torch.rand(1, 3, 64, 64)).shape == (1, 24, 8, 8)


def test_a_token_sees_the_receptive_field_not_its_patch() -> None:
    stem = ConvStem(3, 8, patch_size=4, width=16)
    # Two stride-2 3x3 convolutions: 1 + 2 + 4 = 7 pixels, step 4; then dilation 1
    # and 2 at step 4 add 8 and 16: 31 pixels.
    assert stem.receptive_field == 31
    assert columns_seen(stem, 64, 4) == 31
    assert columns_seen(nn.Conv2d(3, 8, 4, stride=4), 64, 4) == 4  # CLIP's: its own patch


def test_the_final_projection_has_the_weight_clip_reads_its_dtype_from() -> None:
    stem = ConvStem(3, 32, patch_size=4)
    assert stem.weight.shape == (32, 64, 1, 1) and stem.weight.dtype == torch.float32


def test_a_patch_size_that_is_no_power_of_two_is_refused() -> None:
    with pytest.raises(ConfigError, match="power of two.*vision_stem=patch"):
        ConvStem(3, 8, patch_size=6)
