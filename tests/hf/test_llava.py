"""The small LLaVA and the helpers LLaVA methods share, on a tiny random model."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch

from polymodal.errors import ConfigError, DataError
from polymodal.hf.llava import (
    SmallLlavaConfig,
    build_small_llava,
    image_features,
    image_token_mask,
    positions_from_mask,
)
from polymodal.modules.conv_stem import ConvStem

IMAGE = 4
TINY = SmallLlavaConfig(
    vocab_size=40,
    image_token_id=IMAGE,
    image_size=16,
    patch_size=8,
    vision_hidden=16,
    vision_layers=1,
    text_hidden=32,
    text_layers=1,
)


@pytest.fixture(scope="module")
def model() -> Any:
    return build_small_llava(TINY, seed=0).eval()


def test_the_config_gives_one_visual_token_per_patch() -> None:
    assert TINY.num_visual_tokens == 4  # (16 / 8)²
    hf = TINY.to_hf()
    assert hf.image_token_index == IMAGE and hf.image_seq_length == 4


def test_an_image_size_that_is_no_multiple_of_the_patch_is_rejected() -> None:
    with pytest.raises(ConfigError, match="multiple of patch_size"):
        SmallLlavaConfig(vocab_size=40, image_token_id=IMAGE, image_size=20, patch_size=8).to_hf()


def test_the_same_seed_builds_the_same_weights() -> None:
    first, second = build_small_llava(TINY, seed=3), build_small_llava(TINY, seed=3)
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_image_features_are_one_token_per_patch_in_the_text_width(model: Any) -> None:
    with torch.no_grad():
        features = image_features(model, torch.rand(2, 3, 16, 16))
    assert features.shape == (2, 4, TINY.text_hidden)


def test_image_token_mask_marks_the_placeholders_and_checks_their_count(model: Any) -> None:
    input_ids = torch.tensor([[2, IMAGE, IMAGE, IMAGE, IMAGE, 7], [IMAGE] * 4 + [7, 8]])
    mask = image_token_mask(model, input_ids, 4)
    assert mask.tolist() == [[False, True, True, True, True, False], [True] * 4 + [False] * 2]
    with pytest.raises(DataError, match=r"exactly 3 <image> placeholders .* found \[4, 4\]"):
        image_token_mask(model, input_ids, 3)


def test_positions_count_real_tokens_from_zero_left_padding_included() -> None:
    attention_mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 0]])
    assert positions_from_mask(attention_mask).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 3]]


def test_a_conv_stem_keeps_the_token_count_and_reloads_by_its_config() -> None:
    spec = dataclasses.replace(TINY, image_size=32, patch_size=4, vision_stem="conv")
    model = build_small_llava(spec, seed=0).eval()
    assert isinstance(model.model.vision_tower.embeddings.patch_embedding, ConvStem)
    with torch.no_grad():
        pixels = torch.rand(2, 3, 32, 32)
        features = image_features(model, pixels)
        assert features.shape == (2, spec.num_visual_tokens, TINY.text_hidden)  # 64
        again = build_small_llava(SmallLlavaConfig(**spec.to_dict()), seed=1)
        again.load_state_dict(model.state_dict())  # same modules, so the weights fit
        torch.testing.assert_close(image_features(again.eval(), pixels), features)


def test_an_unknown_vision_stem_is_refused() -> None:
    with pytest.raises(ConfigError, match="vision_stem must be one of"):
        dataclasses.replace(TINY, vision_stem="resnet").to_hf()
