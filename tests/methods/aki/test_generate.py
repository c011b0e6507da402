"""MMA prefill + cached greedy decoding against full recomputation, on a tiny random LLaVA."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from polymodal.errors import DataError
from polymodal.hf.llava import SmallLlavaConfig, build_small_llava
from polymodal.methods.aki.generate import mma_generate
from polymodal.methods.aki.reference import generate_without_cache

PAD, BOS, IMG = 0, 2, 4
TINY = SmallLlavaConfig(
    vocab_size=40,
    image_token_id=IMG,
    image_size=16,
    patch_size=8,
    vision_hidden=16,
    vision_layers=1,
    text_hidden=32,
    text_layers=2,
)
M = TINY.num_visual_tokens  # 4
STEPS = 8


@pytest.fixture(scope="module")
def model() -> Any:
    return build_small_llava(TINY, seed=0).eval()


@pytest.fixture(scope="module")
def prompts() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Three left-padded prompts (<bos>, 4 <image>, questions of 2, 5 and 3 words) and images."""
    generator = torch.Generator().manual_seed(0)
    rows = [
        [BOS] + [IMG] * M + torch.randint(5, 40, (words,), generator=generator).tolist()
        for words in (2, 5, 3)
    ]
    length = max(map(len, rows))
    input_ids = torch.full((3, length), PAD)
    attention_mask = torch.zeros(3, length, dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, length - len(row) :] = torch.tensor(row)
        attention_mask[i, length - len(row) :] = 1
    return input_ids, attention_mask, torch.rand(3, 3, 16, 16, generator=generator)


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_cached_mma_generation_equals_full_recomputation(prompts: Any, implementation: str) -> None:
    model = build_small_llava(TINY, seed=0).eval()
    model.set_attn_implementation(implementation)
    cached = mma_generate(model, *prompts, max_new_tokens=STEPS)
    recomputed = generate_without_cache(model, *prompts, max_new_tokens=STEPS)
    assert cached.shape == (3, STEPS)
    assert torch.equal(cached, recomputed)


def test_generation_stops_at_eos_the_same_way_in_both(model: Any, prompts: Any) -> None:
    eos = int(mma_generate(model, *prompts, max_new_tokens=STEPS)[0, 2])  # row 0's third token
    cached = mma_generate(model, *prompts, max_new_tokens=STEPS, eos_token_id=eos, pad_token_id=1)
    recomputed = generate_without_cache(
        model, *prompts, max_new_tokens=STEPS, eos_token_id=eos, pad_token_id=1
    )
    assert cached[0, 2:].tolist() == [eos] + [1] * (STEPS - 3)
    assert torch.equal(cached, recomputed)


def test_causal_prefill_generates_what_transformers_generate_does(model: Any, prompts: Any) -> None:
    input_ids, attention_mask, pixel_values = prompts
    ours = mma_generate(model, *prompts, max_new_tokens=STEPS, attention="causal")
    with torch.no_grad():
        theirs = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            pixel_values=pixel_values,
            max_new_tokens=STEPS,
            do_sample=False,
        )[:, input_ids.shape[1] :]
    assert torch.equal(ours, theirs)


def test_the_mma_prefill_changes_what_is_generated(model: Any, prompts: Any) -> None:
    mma = mma_generate(model, *prompts, max_new_tokens=STEPS)
    causal = mma_generate(model, *prompts, max_new_tokens=STEPS, attention="causal")
    assert not torch.equal(mma, causal)


def test_right_padded_prompts_are_an_error(model: Any, prompts: Any) -> None:
    input_ids, attention_mask, pixel_values = prompts
    right = attention_mask.flip(-1)
    with pytest.raises(DataError, match="left-padded"):
        mma_generate(model, input_ids, right, pixel_values, max_new_tokens=2)
