"""The VQA collator with context texts before or after the question, and text-only rows."""

from __future__ import annotations

import pytest
import torch

from polymodal.data.synth.shapes_vqa import ANSWERS, build_tokenizer
from polymodal.errors import ConfigError
from polymodal.hf.llava import SmallLlavaConfig, build_small_llava
from polymodal.train.vlm import predict_answers
from polymodal.train.vqa_batches import PromptFormat, VQACollator

M = 4  # visual tokens in the hand-made batches


def sample(
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
    batch = VQACollator(fmt)([sample([7, 8], "yes", context=[50, 51, 52])])
    # <bos>=2, <image>=4, <eos>=3
    assert batch.input_ids.tolist() == [[2, 4, 4, 4, 4, 50, 51, 52, 7, 8, yes, 3]]
    assert batch.labels.tolist() == [[-100] * 10 + [yes, 3]]


def test_context_goes_after_the_question(fmt: PromptFormat) -> None:
    red = answer_id(fmt, "red")
    collator = VQACollator(fmt, context_position="after")
    batch = collator([sample([7, 8], "red", context=[50, 51]), sample([7], "red")])
    assert batch.input_ids.tolist() == [
        [2, 4, 4, 4, 4, 7, 8, 50, 51, red, 3],
        [0, 0, 0, 2, 4, 4, 4, 4, 7, red, 3],
    ]


def test_an_all_pad_context_is_no_context(fmt: PromptFormat) -> None:
    with_empty = VQACollator(fmt)([sample([7, 8, 9], "no", context=[])])
    without = VQACollator(fmt)([sample([7, 8, 9], "no")])
    assert with_empty.input_ids.tolist() == without.input_ids.tolist()


def test_text_only_rows_have_no_image_tokens_and_no_pixels(fmt: PromptFormat) -> None:
    no = answer_id(fmt, "no")
    samples = [sample([7, 8], "no", context=[50], image=False), sample([7, 8, 9], "no")]
    batch = VQACollator(fmt)(samples)
    assert batch.input_ids.tolist() == [
        [0, 0, 0, 0, 2, 50, 7, 8, no, 3],
        [2, 4, 4, 4, 4, 7, 8, 9, no, 3],
    ]
    assert batch.pixel_values is not None and batch.pixel_values.shape == (1, 3, 16, 16)
    only_text = VQACollator(fmt)([sample([7], "no", image=False)])
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
        sample([7, 8], "yes", context=[50, 51]),
        sample([9, 10, 11], "no", context=[52], image=False),
        sample([12], "red"),
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
