"""A tiny random LLaVA and left-padded prompts, shared by the DivPrune and FastV tests."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from polymodal.hf.llava import SmallLlavaConfig, build_small_llava

IMAGE, PAD, BOS = 4, 0, 2
TINY_LLAVA = SmallLlavaConfig(
    vocab_size=40,
    image_token_id=IMAGE,
    image_size=32,
    patch_size=8,
    vision_hidden=32,
    vision_layers=1,
    text_hidden=32,
    text_layers=4,
)
"""16 visual tokens, a 4-layer LM (FastV can prune after layers 1-3)."""


@pytest.fixture(scope="module")
def model() -> Any:
    return build_small_llava(TINY_LLAVA, seed=0).eval()


@pytest.fixture(scope="module")
def prompts() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Three left-padded prompts (<bos>, 16 <image>, 4-6 words) and their images."""
    M = TINY_LLAVA.num_visual_tokens
    generator = torch.Generator().manual_seed(0)
    rows = []
    for words in (4, 6, 5):
        text = torch.randint(5, 40, (words,), generator=generator).tolist()
        rows.append([BOS] + [IMAGE] * M + text)
    length = max(map(len, rows))
    input_ids = torch.full((3, length), PAD)
    attention_mask = torch.zeros(3, length, dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, length - len(row) :] = torch.tensor(row)
        attention_mask[i, length - len(row) :] = 1
    pixel_values = torch.rand(3, 3, 32, 32, generator=generator)
    return input_ids, attention_mask, pixel_values
