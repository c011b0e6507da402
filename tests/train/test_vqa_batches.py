"""VQA batches: prompts, conversations, labels and pixel normalisation."""

from __future__ import annotations

from collections.abc import Callable

import torch

from polymodal.data.synth.shapes_vqa import ANSWERS, build_tokenizer
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
