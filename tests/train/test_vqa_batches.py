"""VQA batches: prompts, conversations, labels, pixel normalisation, and context texts
before or after the question (text-only rows included)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from polymodal.data.synth.shapes_vqa import ANSWERS, build_tokenizer
from polymodal.errors import ConfigError
from polymodal.hf.llava import SmallLlavaConfig, build_small_llava
from polymodal.train.vlm import predict_answers
from polymodal.train.vqa_batches import (
    PIXEL_MEAN,
    PromptFormat,
    SceneConversations,
    VQACollator,
    normalize_pixels,
)

M = 4  # visual tokens in the hand-made batches
SampleFactory = Callable[[list[int], str, int], dict[str, torch.Tensor]]


def test_collator_left_pads_and_labels_only_the_answer_and_eos(sample: SampleFactory) -> None:
    fmt = PromptFormat.from_tokenizer(build_tokenizer(), M)
    yes, red = int(fmt.answer_ids[ANSWERS.index("yes")]), int(fmt.answer_ids[ANSWERS.index("red")])
    batch = VQACollator(fmt)([sample([7, 8, 9], "yes", 3), sample([7, 8], "red", 0)])
    # <bos>=2, <image>=4, <eos>=3, <pad>=0
    assert batch.input_ids.tolist() == [
        [2, 4, 4, 4, 4, 7, 8, 9, yes, 3],
        [0, 2, 4, 4, 4, 4, 7, 8, red, 3],
    ]
    assert batch.attention_mask[1].tolist() == [0] + [1] * 9
    assert batch.labels.tolist() == [[-100] * 8 + [yes, 3], [-100] * 8 + [red, 3]]
    assert batch.answer_ids.tolist() == [yes, red]
    prompt_ids, _ = batch.prompt()
    assert prompt_ids[:, -1].tolist() == [9, 8]


def test_a_conversation_asks_every_question_about_one_image_in_turn(sample: SampleFactory) -> None:
    fmt = PromptFormat.from_tokenizer(build_tokenizer(), M)
    yes, red = int(fmt.answer_ids[ANSWERS.index("yes")]), int(fmt.answer_ids[ANSWERS.index("red")])
    single = sample([7], "yes", 3)
    batch = VQACollator(fmt)([[sample([7, 8, 9], "yes", 3), sample([7, 8], "red", 0)], [single]])
    assert batch.input_ids.tolist() == [
        [2, 4, 4, 4, 4, 7, 8, 9, yes, 7, 8, red, 3],
        [0, 0, 0, 0, 0, 2, 4, 4, 4, 4, 7, yes, 3],
    ]
    assert batch.labels[0].tolist() == [-100] * 8 + [yes, -100, -100, red, 3]
    assert batch.pixel_values is not None and batch.pixel_values.shape[0] == 2  # one per image
    assert batch.answer_ids.tolist() == [yes, red, yes]  # one per question


def test_scene_conversations_group_consecutive_items_of_a_scene() -> None:
    items = [{"scene": torch.tensor(s), "index": torch.tensor(i)} for i, s in enumerate([0, 0, 1])]
    grouped = SceneConversations(items, torch.tensor([0, 0, 1]))  # type: ignore[arg-type]
    assert len(grouped) == 2
    assert [int(x["index"]) for x in grouped[0]] == [0, 1]
    assert [int(x["index"]) for x in grouped[1]] == [2]


def test_pixels_are_normalised_with_clip_statistics() -> None:
    image = torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1).expand(2, 3, 4, 4)
    torch.testing.assert_close(normalize_pixels(image), torch.zeros(2, 3, 4, 4))


# ---------------------------------------------------------------- context texts


def context_sample(
    words: list[int], answer: str, context: list[int] | None = None, image: bool = True
) -> dict[str, torch.Tensor]:
    text = torch.zeros(12, dtype=torch.long)
    text[: len(words)] = torch.tensor(words)
    out = {
        "text_ids": text,
        "label": torch.tensor(ANSWERS.index(answer)),
        "question_type": torch.tensor(0),
    }
    if image:
        out["image"] = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(len(words)))
    if context is not None:
        padded = torch.zeros(16, dtype=torch.long)
        padded[: len(context)] = torch.tensor(context)
        out["context_ids"] = padded
    return out


@pytest.fixture(scope="module")
def fmt() -> PromptFormat:
    return PromptFormat.from_tokenizer(build_tokenizer(), M)


def answer_id(fmt: PromptFormat, answer: str) -> int:
    return int(fmt.answer_ids[ANSWERS.index(answer)])


def test_context_goes_before_the_question(fmt: PromptFormat) -> None:
    yes = answer_id(fmt, "yes")
    batch = VQACollator(fmt)([context_sample([7, 8], "yes", context=[50, 51, 52])])
    # <bos>=2, <image>=4, <eos>=3
    assert batch.input_ids.tolist() == [[2, 4, 4, 4, 4, 50, 51, 52, 7, 8, yes, 3]]
    assert batch.labels.tolist() == [[-100] * 10 + [yes, 3]]


def test_context_goes_after_the_question(fmt: PromptFormat) -> None:
    red = answer_id(fmt, "red")
    collator = VQACollator(fmt, context_position="after")
    batch = collator([context_sample([7, 8], "red", context=[50, 51]), context_sample([7], "red")])
    assert batch.input_ids.tolist() == [
        [2, 4, 4, 4, 4, 7, 8, 50, 51, red, 3],
        [0, 0, 0, 2, 4, 4, 4, 4, 7, red, 3],
    ]


def test_a_samples_own_side_wins_over_the_collators(fmt: PromptFormat) -> None:
    red = answer_id(fmt, "red")
    after = context_sample([7, 8], "red", context=[50])
    after["context_after"] = torch.tensor(True)
    before = context_sample([7, 8], "red", context=[50])
    before["context_after"] = torch.tensor(False)
    batch = VQACollator(fmt, context_position="after")([after, before])
    assert batch.input_ids.tolist() == [
        [2, 4, 4, 4, 4, 7, 8, 50, red, 3],
        [2, 4, 4, 4, 4, 50, 7, 8, red, 3],
    ]


def test_an_all_pad_context_is_no_context(fmt: PromptFormat) -> None:
    with_empty = VQACollator(fmt)([context_sample([7, 8, 9], "no", context=[])])
    without = VQACollator(fmt)([context_sample([7, 8, 9], "no")])
    assert with_empty.input_ids.tolist() == without.input_ids.tolist()


def test_text_only_rows_have_no_image_tokens_and_no_pixels(fmt: PromptFormat) -> None:
    no = answer_id(fmt, "no")
    samples = [
        context_sample([7, 8], "no", context=[50], image=False),
        context_sample([7, 8, 9], "no"),
    ]
    batch = VQACollator(fmt)(samples)
    assert batch.input_ids.tolist() == [
        [0, 0, 0, 0, 2, 50, 7, 8, no, 3],
        [2, 4, 4, 4, 4, 7, 8, 9, no, 3],
    ]
    assert batch.pixel_values is not None and batch.pixel_values.shape == (1, 3, 16, 16)
    only_text = VQACollator(fmt)([context_sample([7], "no", image=False)])
    assert only_text.pixel_values is None


def test_a_mixed_batch_answers_as_the_rows_would_alone(fmt: PromptFormat) -> None:
    tokenizer = build_tokenizer()
    spec = SmallLlavaConfig(
        vocab_size=tokenizer.get_vocab_size(),
        image_token_id=4,
        image_size=16,
        patch_size=8,  # 4 visual tokens
        vision_hidden=16,
        text_hidden=16,
        text_layers=1,
        heads=2,
    )
    model = build_small_llava(spec, seed=0).eval()
    samples = [
        context_sample([7, 8], "yes", context=[50, 51]),
        context_sample([9, 10, 11], "no", context=[52], image=False),
        context_sample([12], "red"),
    ]
    collator = VQACollator(fmt)

    def last_logits(rows: list[dict[str, torch.Tensor]]) -> torch.Tensor:
        ids, mask = collator(rows).prompt()
        pixels = collator(rows).pixel_values
        out = model(input_ids=ids, attention_mask=mask, pixel_values=pixels)
        return out.logits[:, -1]  # (B, V) next-token logits

    together = last_logits(samples)
    alone = torch.cat([last_logits([s]) for s in samples])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)
    swapped = dict(samples[0], image=samples[2]["image"])  # the images do matter
    assert not torch.allclose(last_logits([swapped]), alone[:1], atol=1e-5)
    predicted = predict_answers(model, collator(samples))
    assert predicted.tolist() == alone.argmax(-1).tolist()


def test_an_unknown_position_is_rejected(fmt: PromptFormat) -> None:
    with pytest.raises(ConfigError, match="'before' or 'after'"):
        VQACollator(fmt, context_position="middle")


def test_question_loss_labels_every_question_word_too(sample: SampleFactory) -> None:
    fmt = PromptFormat.from_tokenizer(build_tokenizer(), M)
    yes, red = int(fmt.answer_ids[ANSWERS.index("yes")]), int(fmt.answer_ids[ANSWERS.index("red")])
    turns = [[sample([7, 8, 9], "yes", 3), sample([7, 8], "red", 0)]]
    plain, text = VQACollator(fmt)(turns), VQACollator(fmt, question_loss=True)(turns)
    assert torch.equal(plain.input_ids, text.input_ids)
    # <bos> <image>×4 unlabelled; both questions' words, both answers and <eos> labelled
    assert text.labels.tolist() == [[-100] * 5 + [7, 8, 9, yes, 7, 8, red, 3]]
