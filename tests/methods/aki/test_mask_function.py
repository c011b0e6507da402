"""MMA as a mask function through transformers' create_causal_mask, against the tensor form."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from polymodal.hf.llava import SmallLlavaConfig, build_small_llava, positions_from_mask
from polymodal.methods.aki.mask_function import mma_overlay, transformers_mma_mask
from polymodal.modules.masks import allowed_pairs, mma_mask, modality_spans

PAD, BOS, IMG = 0, 2, 4
TINY = SmallLlavaConfig(
    vocab_size=20,
    image_token_id=IMG,
    image_size=16,
    patch_size=8,
    vision_hidden=16,
    vision_layers=1,
    text_hidden=16,
    text_layers=1,
    heads=2,
)
M = TINY.num_visual_tokens  # 4
# Left-padded prompts (no answer: a prefill) and a right-padded batch with answers.
LEFT = torch.tensor([[PAD, PAD, BOS] + [IMG] * M + [5, 6], [BOS] + [IMG] * M + [7, 5, 8, 6]])
RIGHT = torch.tensor([[BOS] + [IMG] * M + [5, 6, 9, 3, PAD], [BOS] + [IMG] * M + [7, 5, 6, 9, 3]])


def _spans(ids: torch.Tensor, answer_start: Any = None) -> Any:
    return modality_spans(ids, (ids != PAD).long(), IMG, answer_start=answer_start)


@pytest.fixture(scope="module")
def text_config() -> Any:
    return TINY.to_hf().text_config


@pytest.mark.parametrize("ids, answer_start", [(LEFT, None), (RIGHT, torch.tensor([7, 8]))])
def test_eager_form_equals_the_tensor_form_on_real_rows(
    text_config: Any, ids: torch.Tensor, answer_start: Any
) -> None:
    spans = _spans(ids, answer_start)
    text_config._attn_implementation = "eager"
    ours = mma_mask(spans)[:, 0]
    theirs = transformers_mma_mask(text_config, spans)[:, 0]
    real = spans.valid
    torch.testing.assert_close(theirs[real], ours[real], rtol=0, atol=0)


@pytest.mark.parametrize("ids, answer_start", [(LEFT, None), (RIGHT, torch.tensor([7, 8]))])
def test_sdpa_form_is_a_bool_mask_of_the_same_pairs_on_real_rows(
    text_config: Any, ids: torch.Tensor, answer_start: Any
) -> None:
    spans = _spans(ids, answer_start)
    text_config._attn_implementation = "sdpa"
    theirs = transformers_mma_mask(text_config, spans)[:, 0]
    assert theirs.dtype == torch.bool
    real = spans.valid
    assert torch.equal(theirs[real], allowed_pairs(spans)[real])


def test_overlay_opens_only_image_rows_onto_question_columns() -> None:
    spans = _spans(LEFT)
    b, q, k = torch.meshgrid(torch.arange(2), torch.arange(9), torch.arange(9), indexing="ij")
    opened = mma_overlay(spans)(b, torch.zeros_like(b), q, k)
    assert torch.equal(opened, spans.image[:, :, None] & spans.question[:, None, :])


def test_model_outputs_at_real_positions_agree_between_the_two_forms() -> None:
    model = build_small_llava(TINY, seed=0).eval()
    model.set_attn_implementation("eager")
    spans = _spans(LEFT)
    pixels = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    positions = positions_from_mask(spans.valid.long())
    text_config = model.model.language_model.config
    with torch.no_grad():
        logits = [
            model(
                input_ids=LEFT,
                pixel_values=pixels,
                attention_mask=mask,
                position_ids=positions,
                use_cache=False,
            ).logits
            for mask in (mma_mask(spans), transformers_mma_mask(text_config, spans))
        ]
    torch.testing.assert_close(logits[1][spans.valid], logits[0][spans.valid])
