"""Training masks for VQA batches on a tiny random LLaVA: what image tokens can and cannot see."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from polymodal.hf.llava import SmallLlavaConfig, build_small_llava, positions_from_mask
from polymodal.methods.aki.batch import answer_start_from_labels, vlm_attention_mask
from polymodal.train.vqa_batches import PromptFormat, VQABatch, VQACollator

PAD, BOS, EOS, IMG = 0, 2, 3, 4
TINY = SmallLlavaConfig(
    vocab_size=24,
    image_token_id=IMG,
    image_size=16,
    patch_size=8,
    vision_hidden=16,
    vision_layers=1,
    text_hidden=32,
    text_layers=2,
)
M = TINY.num_visual_tokens  # 4
FMT = PromptFormat(BOS, EOS, PAD, IMG, M, answer_ids=torch.arange(20, 24))


def collate(questions: list[list[int]], answers: list[int]) -> VQABatch:
    """A VQA batch as the training recipe builds it (left-padded, answer and <eos> labelled)."""
    generator = torch.Generator().manual_seed(0)
    samples = [
        {
            "text_ids": torch.tensor(words + [PAD] * (6 - len(words))),
            "label": torch.tensor(answer),
            "image": torch.rand(3, 16, 16, generator=generator),
            "question_type": torch.tensor(0),
        }
        for words, answer in zip(questions, answers, strict=True)
    ]
    return VQACollator(FMT)(samples)


# Row 0: pad pad bos img×4 "5 6" ans eos; row 1: bos img×4 "7 5 8 6" ans eos (T = 11).
BATCH = collate([[5, 6], [7, 5, 8, 6]], [1, 2])
IMAGE_COLUMNS = [slice(3, 7), slice(1, 5)]
QUESTION_COLUMNS = [slice(7, 9), slice(5, 9)]


@pytest.fixture(scope="module")
def model() -> Any:
    return build_small_llava(TINY, seed=0).eval()


def forward(model: Any, batch: VQABatch, attention: str, **kwargs: Any) -> Any:
    mask = vlm_attention_mask(
        attention, batch.input_ids, batch.attention_mask, IMG, batch.labels, model.dtype
    )
    return model(
        input_ids=batch.input_ids,
        pixel_values=batch.pixel_values,
        attention_mask=mask,
        position_ids=positions_from_mask(batch.attention_mask),
        labels=batch.labels,
        use_cache=False,
        **kwargs,
    )


def test_answer_starts_at_the_first_labelled_column() -> None:
    labels = torch.tensor([[-100, -100, 7, 3], [-100, -100, -100, -100], [5, 3, -100, -100]])
    assert answer_start_from_labels(labels).tolist() == [2, 4, 0]


def test_recipe_batch_image_rows_see_the_question_and_not_the_answer() -> None:
    mask = vlm_attention_mask("mma", BATCH.input_ids, BATCH.attention_mask, IMG, BATCH.labels)
    allowed = mask[:, 0] == 0
    for b in range(2):
        image_rows = allowed[b, IMAGE_COLUMNS[b]]
        assert bool(image_rows[:, QUESTION_COLUMNS[b]].all())
        assert not bool(image_rows[:, 9:].any())  # answer and <eos>


def test_recipe_batch_under_causal_image_rows_see_no_later_token() -> None:
    mask = vlm_attention_mask("causal", BATCH.input_ids, BATCH.attention_mask, IMG, BATCH.labels)
    allowed = mask[:, 0] == 0
    for b in range(2):
        assert not bool(allowed[b, IMAGE_COLUMNS[b]][:, QUESTION_COLUMNS[b]].any())


def test_forward_and_backward_under_mma_give_finite_loss_and_gradients() -> None:
    model = build_small_llava(TINY, seed=0).train()
    out = forward(model, BATCH, "mma")
    out.loss.backward()
    trained = [
        *model.model.language_model.parameters(),
        *model.model.multi_modal_projector.parameters(),
    ]
    assert bool(out.loss.isfinite())
    assert all(p.grad is not None and bool(p.grad.isfinite().all()) for p in trained)


@pytest.mark.parametrize("attention, changes", [("mma", True), ("causal", False)])
def test_image_logits_depend_on_the_question_only_under_mma(
    model: Any, attention: str, changes: bool
) -> None:
    other = collate([[5, 8], [7, 5, 8, 6]], [1, 2])  # row 0 asks "5 8" instead of "5 6"
    with torch.no_grad():
        first = forward(model, BATCH, attention).logits[0, IMAGE_COLUMNS[0]]
        second = forward(model, other, attention).logits[0, IMAGE_COLUMNS[0]]
    difference = float((first - second).abs().max())
    assert (difference > 1e-3) if changes else (difference == 0.0)


def test_the_answer_never_reaches_the_image_hidden_states(model: Any) -> None:
    other = collate([[5, 6], [7, 5, 8, 6]], [3, 2])  # row 0 answers differently
    assert not torch.equal(other.input_ids, BATCH.input_ids)
    with torch.no_grad():
        first = forward(model, BATCH, "mma", output_hidden_states=True).hidden_states
        second = forward(model, other, "mma", output_hidden_states=True).hidden_states
    for layer_first, layer_second in zip(first, second, strict=True):
        image = layer_first[0, IMAGE_COLUMNS[0]]
        torch.testing.assert_close(layer_second[0, IMAGE_COLUMNS[0]], image, rtol=0, atol=0)


def test_causal_4d_mask_matches_the_default_2d_path_at_real_tokens(model: Any) -> None:
    with torch.no_grad():
        ours = forward(model, BATCH, "causal").logits
        default = model(
            input_ids=BATCH.input_ids,
            pixel_values=BATCH.pixel_values,
            attention_mask=BATCH.attention_mask,
            position_ids=positions_from_mask(BATCH.attention_mask),
            use_cache=False,
        ).logits
    real = BATCH.attention_mask.bool()
    torch.testing.assert_close(ours[real], default[real])
