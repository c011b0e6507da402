"""Tests of the patch segmenter: map shape and which pixels each patch token writes."""

import pytest
import torch
from torch.testing import assert_close

from polymodal.errors import ConfigError
from polymodal.modules.encoders import ViTEncoder
from polymodal.modules.segmenter import PatchSegmenter, build_segmenter


def test_heatmap_has_the_image_height_and_width() -> None:
    torch.manual_seed(0)
    model = build_segmenter("none", {"image": {"shape": [3, 8, 12]}}, dim=12, depth=1, num_heads=2)
    assert model.encoder.grid == (2, 3)  # default patch_size 4
    assert model({"image": torch.rand(2, 3, 8, 12)}).heatmap.shape == (2, 8, 12)


def test_each_patch_token_writes_its_own_patch_block() -> None:
    # a 4 x 9 image in 2 x 3 patches: a 2 x 3 grid of tokens
    model = PatchSegmenter("image", ViTEncoder((4, 9), (2, 3), 1, dim=4, depth=1, num_heads=2))
    tokens = torch.zeros(2, 1 + 6, 4)
    tokens[:, 0, 0] = -1000.0  # CLS: must not reach the map
    tokens[:, 1:, 0] = torch.arange(6.0) + torch.tensor([[0.0], [10.0]])  # token n of sample b
    model.encoder.forward = lambda x: tokens  # type: ignore[method-assign]
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.weight[:, 0] = 1.0
        model.head.bias.copy_(torch.arange(6.0) / 100)  # value q = i * P_w + j inside a patch
    heatmap = model({"image": torch.zeros(2, 1, 4, 9)}).heatmap
    r, c = torch.meshgrid(torch.arange(4), torch.arange(9), indexing="ij")
    token = (r // 2) * 3 + c // 3
    inside = (r % 2) * 3 + c % 3
    want = torch.stack([token + inside / 100, token + 10 + inside / 100]).float()
    assert_close(heatmap, want)


def test_build_segmenter_reads_one_image_modality() -> None:
    with pytest.raises(ConfigError, match="reads one image modality"):
        build_segmenter("none", {"image": {"shape": [3, 8, 8]}, "depth": {"shape": [1, 8, 8]}})
    with pytest.raises(ConfigError, match=r"needs a \(C, H, W\) modality"):
        build_segmenter("none", {"audio": {"shape": [40, 100]}})
