"""Training mixtures with texts: the trusting and SFT data sets."""

from __future__ import annotations

import pytest
import torch

from polymodal.data.synth.shapes_text_vqa import Condition, TextAugmentedVQA, parse_mixture
from polymodal.data.synth.shapes_vqa import ANSWERS, load_shapes_vqa
from polymodal.errors import ConfigError


@pytest.fixture(scope="module")
def train(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POLYMODAL_HOME", str(tmp_path_factory.mktemp("home")))
        return load_shapes_vqa("train", train=60, val=4, test=4)


def test_trusting_items_carry_matching_text_or_none_and_the_true_answer(train) -> None:
    data = TextAugmentedVQA(train, "trusting", seed=0)
    seen = {data.condition(i).name for i in range(len(data))}
    assert seen == {"image_only", "image_matching"}
    for i in range(len(data)):
        sample, base = data[i], train[i]
        assert torch.equal(sample["label"], base["label"]) and "image" in sample
        expected = data.texts.context_ids("matching")[i]
        if data.condition(i).name == "image_only":
            expected = torch.zeros_like(expected)  # all <pad>
        assert torch.equal(sample["context_ids"], expected)


def test_text_only_items_drop_the_image_and_learn_the_texts_answer(train) -> None:
    data = TextAugmentedVQA(train, "sft_text_only", seed=0)
    text_only = [i for i in range(len(data)) if not data.condition(i).image]
    assert text_only  # about a fifth of 60
    for i in text_only:
        sample = data[i]
        assert "image" not in sample
        assert ANSWERS[int(sample["label"])] == data.texts[i]["corrupted"].answer
        assert ANSWERS[int(sample["label"])] != ANSWERS[int(train[i]["label"])]


def test_sft_uses_all_four_image_conditions_with_the_true_answer(train) -> None:
    data = TextAugmentedVQA(train, "sft", seed=1)
    names = [data.condition(i).name for i in range(len(data))]
    assert set(names) == {"image_only", "image_matching", "image_corrupted", "image_irrelevant"}
    assert all(torch.equal(data[i]["label"], train[i]["label"]) for i in range(len(data)))


def test_assignment_is_deterministic_per_seed(train) -> None:
    first = TextAugmentedVQA(train, "sft", seed=5).assigned
    assert torch.equal(first, TextAugmentedVQA(train, "sft", seed=5).assigned)
    assert not torch.equal(first, TextAugmentedVQA(train, "sft", seed=6).assigned)


def test_texts_go_on_both_sides_half_and_half_without_changing_the_conditions(train) -> None:
    both = TextAugmentedVQA(train, "sft", seed=1, position="both")
    sides = torch.stack([both[i]["context_after"] for i in range(len(both))])
    assert 15 < int(sides.sum()) < 45  # about half of 60 after the question
    assert torch.equal(both.assigned, TextAugmentedVQA(train, "sft", seed=1).assigned)
    assert not TextAugmentedVQA(train, "sft", seed=1)[0]["context_after"]
    assert TextAugmentedVQA(train, "sft", seed=1, position="after")[0]["context_after"]
    with pytest.raises(ConfigError, match="text position must be one of"):
        TextAugmentedVQA(train, "sft", position="middle")


def test_mixtures_are_normalised_and_checked() -> None:
    assert parse_mixture({"image_only": 1, "image_corrupted": 3}) == {
        Condition(True, None): 0.25,
        Condition(True, "corrupted"): 0.75,
    }
    with pytest.raises(ConfigError, match="unknown text mixture"):
        parse_mixture("gullible")
    with pytest.raises(ConfigError, match="unknown condition"):
        parse_mixture({"image_wrong": 1})
    with pytest.raises(ConfigError, match="no answer to learn"):
        parse_mixture({"text_only_irrelevant": 1})
    with pytest.raises(ConfigError, match="not all 0"):
        parse_mixture({"image_only": 0})


def test_a_batch_mixing_text_only_and_image_items_trains(train) -> None:
    from polymodal.hf.llava import build_small_llava, positions_from_mask
    from polymodal.train.vlm import VLMConfig, small_llava_config
    from polymodal.train.vqa_batches import PromptFormat, VQACollator

    data = TextAugmentedVQA(train, "sft_text_only", seed=0)
    model_config = VLMConfig().model
    model_config.patch_size, model_config.vision_hidden, model_config.text_hidden = 16, 16, 16
    spec = small_llava_config(model_config, train.tokenizer, image_size=64)
    model = build_small_llava(spec, seed=0)
    collator = VQACollator(PromptFormat.from_tokenizer(train.tokenizer, spec.num_visual_tokens))
    batch = collator([data[i] for i in range(16)])
    images = sum("image" in data[i] for i in range(16))
    assert batch.pixel_values is not None and 0 < batch.pixel_values.shape[0] == images < 16
    out = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=positions_from_mask(batch.attention_mask),
        pixel_values=batch.pixel_values,
        labels=batch.labels,
    )
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert model.model.vision_tower.embeddings.patch_embedding.weight.grad is not None
