"""MMA and causal masks: hand-worked 0/1 matrices (1 = the query row may attend), then
the masks of VQA batches on a tiny random LLaVA (what image tokens can and cannot see)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from polymodal.errors import ConfigError, DataError
from polymodal.hf.llava import SmallLlavaConfig, build_small_llava, positions_from_mask
from polymodal.modules.masks import (
    additive_mask,
    allowed_pairs,
    answer_start_from_labels,
    attention_mask_4d,
    causal_mask,
    mma_mask,
    modality_spans,
    vlm_attention_mask,
)
from polymodal.train.vqa_batches import PromptFormat, VQABatch, VQACollator

PAD, BOS, EOS, IMG, ANS = 0, 2, 3, 9, 7  # words are 5, 6 (= "?") and 8


def grid(*rows: str) -> torch.Tensor:
    """Rows of '0'/'1' characters -> (Q, K) bool."""
    return torch.tensor([[c == "1" for c in row] for row in rows])


# Left padding, two question lengths; the answer starts at column 6 in both rows.
LEFT_IDS = torch.tensor(
    [
        [PAD, BOS, IMG, IMG, 5, 6, ANS, EOS],  # question "5 ?"
        [BOS, IMG, IMG, 5, 8, 6, ANS, EOS],  # question "5 8 ?"
    ]
)
LEFT_MASK = (LEFT_IDS != PAD).long()
LEFT_MMA = torch.stack(
    [
        grid(
            #   k: pad bos img img 5 ? ans eos
            "10000000",  # pad: itself only
            "01000000",  # bos
            "01101100",  # img: bos, itself, the question "5 ?"
            "01111100",  # img
            "01111000",  # 5
            "01111100",  # ?
            "01111110",  # answer
            "01111111",  # eos
        ),
        grid(
            #   k: bos img img 5 8 ? ans eos
            "10000000",  # bos
            "11011100",  # img: bos, itself, the question "5 8 ?"
            "11111100",  # img
            "11110000",  # 5
            "11111000",  # 8
            "11111100",  # ?
            "11111110",  # answer
            "11111111",  # eos
        ),
    ]
)
LEFT_CAUSAL = torch.stack(
    [
        grid(
            "10000000",
            "01000000",
            "01100000",
            "01110000",
            "01111000",
            "01111100",
            "01111110",
            "01111111",
        ),
        torch.ones(8, 8, dtype=torch.bool).tril(),
    ]
)

# Right padding: answers at columns 5 and 6, padding after the <eos>.
RIGHT_IDS = torch.tensor(
    [
        [BOS, IMG, IMG, 5, 6, ANS, EOS, PAD],  # question "5 ?"
        [BOS, IMG, 5, 8, 6, ANS, EOS, PAD],  # one visual token, question "5 8 ?"
    ]
)
RIGHT_MASK = (RIGHT_IDS != PAD).long()
RIGHT_MMA = torch.stack(
    [
        grid(
            #   k: bos img img 5 ? ans eos pad
            "10000000",
            "11011000",  # img: bos, itself, "5 ?"
            "11111000",  # img
            "11110000",
            "11111000",
            "11111100",  # answer
            "11111110",  # eos
            "00000001",  # pad: itself only
        ),
        grid(
            #   k: bos img 5 8 ? ans eos pad
            "10000000",
            "11111000",  # img: bos, itself, "5 8 ?"
            "11100000",
            "11110000",
            "11111000",
            "11111100",
            "11111110",
            "00000001",
        ),
    ]
)


def test_spans_of_a_left_padded_batch() -> None:
    spans = modality_spans(LEFT_IDS, LEFT_MASK, IMG, answer_start=6)
    assert spans.image.int().tolist() == [[0, 0, 1, 1, 0, 0, 0, 0], [0, 1, 1, 0, 0, 0, 0, 0]]
    assert spans.question.int().tolist() == [[0, 0, 0, 0, 1, 1, 0, 0], [0, 0, 0, 1, 1, 1, 0, 0]]
    assert spans.answer.int().tolist() == [[0, 0, 0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0, 1, 1]]
    assert spans.valid.int().tolist() == LEFT_MASK.tolist()


def test_mma_of_a_left_padded_batch_with_two_question_lengths() -> None:
    spans = modality_spans(LEFT_IDS, LEFT_MASK, IMG, answer_start=6)
    assert torch.equal(allowed_pairs(spans, "mma"), LEFT_MMA)


def test_causal_of_a_left_padded_batch() -> None:
    spans = modality_spans(LEFT_IDS, LEFT_MASK, IMG, answer_start=6)
    assert torch.equal(allowed_pairs(spans, "causal"), LEFT_CAUSAL)


def test_mma_of_a_right_padded_batch() -> None:
    spans = modality_spans(RIGHT_IDS, RIGHT_MASK, IMG, answer_start=torch.tensor([5, 5]))
    assert torch.equal(allowed_pairs(spans, "mma"), RIGHT_MMA)


def test_image_tokens_see_the_question_and_the_last_prompt_token_never_the_answer() -> None:
    spans = modality_spans(LEFT_IDS, LEFT_MASK, IMG, answer_start=6)
    allowed = allowed_pairs(spans, "mma")
    for b in range(2):
        rows = allowed[b][spans.image[b]]  # (image tokens, T)
        assert bool(rows[:, spans.question[b]].all())
        assert bool(rows[:, 5].all())  # "?", the last prompt token
        assert not bool(rows[:, spans.answer[b]].any())


def test_text_rows_stay_causal() -> None:
    spans = modality_spans(LEFT_IDS, LEFT_MASK, IMG, answer_start=6)
    mma, causal = allowed_pairs(spans, "mma"), allowed_pairs(spans, "causal")
    text = ~spans.image
    assert torch.equal(mma[text], causal[text])


def test_padding_is_blocked_in_both_directions() -> None:
    spans = modality_spans(RIGHT_IDS, RIGHT_MASK, IMG, answer_start=5)
    allowed = allowed_pairs(spans, "mma")
    pad = ~spans.valid
    real_rows_to_pad = allowed.transpose(1, 2)[pad][:, :7]  # pad columns, real rows
    assert not bool(real_rows_to_pad.any())
    assert allowed[pad].int().tolist() == [[0, 0, 0, 0, 0, 0, 0, 1]] * 2  # itself only


def test_prompt_lengths_give_the_same_spans_as_answer_start() -> None:
    left = modality_spans(LEFT_IDS, LEFT_MASK, IMG, prompt_lengths=torch.tensor([5, 6]))
    right = modality_spans(RIGHT_IDS, RIGHT_MASK, IMG, prompt_lengths=torch.tensor([5, 5]))
    assert torch.equal(allowed_pairs(left), LEFT_MMA)
    assert torch.equal(allowed_pairs(right), RIGHT_MMA)


def test_each_of_several_images_sees_the_text_after_it_not_the_later_image() -> None:
    ids = torch.tensor([[BOS, IMG, 5, IMG, 8, 6, ANS]])  # image, words, image, question
    spans = modality_spans(ids, None, IMG, answer_start=6)
    expected = grid(
        # k: bos img 5 img 8 ? ans
        "1000000",
        "1110110",  # first image: "5", "8", "?" but not the second image
        "1110000",
        "1111110",  # second image: "8", "?"
        "1111100",
        "1111110",
        "1111111",
    )
    assert torch.equal(allowed_pairs(spans)[0], expected)


def test_without_an_image_mma_is_causal() -> None:
    ids = torch.tensor([[BOS, 5, 8, 6, ANS]])
    spans = modality_spans(ids, None, IMG, answer_start=4)
    assert torch.equal(mma_mask(spans), causal_mask(spans))


def test_additive_mask_is_zero_or_the_dtype_minimum() -> None:
    allowed = grid("10", "11")
    mask = additive_mask(allowed[None], torch.float16)
    low = torch.finfo(torch.float16).min
    expected = torch.tensor([[[[0.0, low], [0.0, 0.0]]]], dtype=torch.float16)
    assert mask.dtype == torch.float16
    torch.testing.assert_close(mask, expected, rtol=0, atol=0)


def test_the_4d_mask_has_shape_b_1_t_t_and_the_rule_of_allowed_pairs() -> None:
    spans = modality_spans(LEFT_IDS, LEFT_MASK, IMG, answer_start=6)
    mask = attention_mask_4d(spans, "mma", torch.float32)
    assert mask.shape == (2, 1, 8, 8)
    assert torch.equal(mask[:, 0] == 0, LEFT_MMA)


def test_attention_under_the_mask_is_finite_on_padding_rows() -> None:
    spans = modality_spans(LEFT_IDS, LEFT_MASK, IMG, answer_start=6)
    q, k, v = torch.randn(3, 2, 1, 8, 4, generator=torch.Generator().manual_seed(0))
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mma_mask(spans))
    assert bool(out.isfinite().all())
    torch.testing.assert_close(out[0, 0, 0], v[0, 0, 0])  # a padding row reads itself


def test_an_image_inside_the_answer_is_an_error() -> None:
    with pytest.raises(DataError, match="before the answer"):
        modality_spans(LEFT_IDS, LEFT_MASK, IMG, answer_start=3)


def test_prompt_lengths_with_padding_inside_a_row_is_an_error() -> None:
    ids = torch.tensor([[BOS, IMG, PAD, 5, ANS]])
    with pytest.raises(DataError, match="one run"):
        modality_spans(ids, (ids != PAD).long(), IMG, prompt_lengths=torch.tensor([3]))


def test_unknown_attention_rule_is_a_config_error() -> None:
    spans = modality_spans(LEFT_IDS, LEFT_MASK, IMG)
    with pytest.raises(ConfigError, match="causal"):
        attention_mask_4d(spans, "bidirectional")


# ------------------------------------------------------------- VQA batches on a LLaVA

LLAVA_IMG = 4  # the tiny LLaVA's <image> id; <pad>, <bos>, <eos> as above
TINY = SmallLlavaConfig(
    vocab_size=24,
    image_token_id=LLAVA_IMG,
    image_size=16,
    patch_size=8,
    vision_hidden=16,
    vision_layers=1,
    text_hidden=32,
    text_layers=2,
)
M = TINY.num_visual_tokens  # 4
FMT = PromptFormat(BOS, EOS, PAD, LLAVA_IMG, M, answer_ids=torch.arange(20, 24))


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
        attention, batch.input_ids, batch.attention_mask, LLAVA_IMG, batch.labels, model.dtype
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
    mask = vlm_attention_mask("mma", BATCH.input_ids, BATCH.attention_mask, LLAVA_IMG, BATCH.labels)
    allowed = mask[:, 0] == 0
    for b in range(2):
        image_rows = allowed[b, IMAGE_COLUMNS[b]]
        assert bool(image_rows[:, QUESTION_COLUMNS[b]].all())
        assert not bool(image_rows[:, 9:].any())  # answer and <eos>


def test_recipe_batch_under_causal_image_rows_see_no_later_token() -> None:
    mask = vlm_attention_mask(
        "causal", BATCH.input_ids, BATCH.attention_mask, LLAVA_IMG, BATCH.labels
    )
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


def test_labels_shaped_unlike_the_input_ids_are_a_data_error_naming_both() -> None:
    labels = BATCH.labels[:, :-1]
    with pytest.raises(DataError, match=r"labels have shape \(2, 10\), input_ids \(2, 11\)"):
        vlm_attention_mask("mma", BATCH.input_ids, BATCH.attention_mask, LLAVA_IMG, labels)
