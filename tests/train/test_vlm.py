"""The VQA recipe: config, answer-token loss, training, reloading, and the HF path on it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from polymodal.data.synth.shapes_vqa import build_tokenizer
from polymodal.errors import ConfigError
from polymodal.hf.llava import SmallLlavaConfig, build_small_llava
from polymodal.methods.divprune.llava import prune_and_generate
from polymodal.train.vlm import (
    cached_vlm,
    fit_vlm,
    load_vlm,
    load_vlm_config,
    model_mask,
    predict_answers,
    steps_per_epoch,
    training_rows,
)
from polymodal.train.vqa_batches import (
    PromptFormat,
    SceneConversations,
    VQACollator,
)

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "shapes_vlm.yaml"
DENSE = CONFIG.with_name("shapes_vlm_dense.yaml")


def test_the_config_file_states_the_recipe_defaults(tmp_path: Path) -> None:
    assert load_vlm_config(CONFIG) == load_vlm_config()
    partial = tmp_path / "partial.yaml"
    partial.write_text("seed: 3\nmodel:\n  text_layers: 2\n")
    config = load_vlm_config(partial)  # unset sections and keys keep the defaults
    assert config.seed == 3 and config.model.text_layers == 2
    assert config.data.name == "shapes_vqa" and config.model.text_hidden == 128


def test_training_rows_follow_data_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from polymodal.data.synth.shapes_text_vqa import TextAugmentedVQA
    from polymodal.data.synth.shapes_vqa import load_shapes_vqa

    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))
    train = load_shapes_vqa("train", train=8, val=4, test=4)
    plain = training_rows(train, load_vlm_config())
    assert isinstance(plain, SceneConversations) and len(plain) == 2  # 4 questions per scene
    questions = ["data.rows=questions"]
    assert training_rows(train, load_vlm_config(None, questions)) is train
    assert training_rows(train, load_vlm_config(None, [*questions, "attention=mma"])) is train
    texts = training_rows(train, load_vlm_config(None, [*questions, "text.mixture=sft"]))
    assert isinstance(texts, TextAugmentedVQA) and len(texts) == 8


def test_conversations_are_refused_with_mma_or_texts() -> None:
    with pytest.raises(ConfigError, match="attention=mma needs data.rows=questions"):
        load_vlm_config(None, ["attention=mma"])
    with pytest.raises(ConfigError, match="needs data.rows=questions"):
        load_vlm_config(None, ["text.mixture=sft"])
    with pytest.raises(ConfigError, match="data.rows must be one of"):
        load_vlm_config(None, ["data.rows=images"])
    # a config built in code is checked when it trains
    mma = dataclasses.replace(load_vlm_config(), attention="mma")
    with pytest.raises(ConfigError, match="attention=mma needs"):
        fit_vlm(mma)


def test_steps_per_epoch_counts_rows_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from polymodal.data.synth.shapes_vqa import load_shapes_vqa

    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))
    train = load_shapes_vqa("train", train=40, val=4, test=4)  # 10 scenes of 4 questions
    batch = ["data.batch_size=16"]
    assert steps_per_epoch(train, load_vlm_config(None, batch)) == 1  # 10 conversations
    assert steps_per_epoch(train, load_vlm_config(None, [*batch, "data.rows=questions"])) == 3


def test_mma_prediction_lets_the_image_see_the_question(sample: Any) -> None:
    tokenizer = build_tokenizer()
    spec = SmallLlavaConfig(
        vocab_size=tokenizer.get_vocab_size(),
        image_token_id=tokenizer.token_to_id("<image>"),
        image_size=16,
        patch_size=8,
        vision_hidden=16,
        text_hidden=16,
        text_layers=1,
    )
    model = build_small_llava(spec).eval()
    fmt = PromptFormat.from_tokenizer(tokenizer, spec.num_visual_tokens)
    batch = VQACollator(fmt)([sample([7, 8, 9], "yes", 3), sample([7, 8], "red", 0)])
    causal = model_mask(model, "causal", batch.input_ids, batch.attention_mask, batch.labels)
    assert causal is batch.attention_mask  # the default 2D path
    mma = model_mask(model, "mma", batch.input_ids, batch.attention_mask, batch.labels)
    assert mma.shape == (2, 1, 10, 10)
    first_image, question = 1, 5  # row 0: <bos> <image>x4 7 8 9 yes <eos>
    assert mma[0, 0, first_image, question] == 0  # the image sees the question
    assert mma[0, 0, first_image, 8] < 0  # never the answer
    assert predict_answers(model, batch, "mma").shape == (2,)


def test_config_file_parses_and_rejects_other_data() -> None:
    config = load_vlm_config(CONFIG, ["model.text_layers=2"])
    assert config.model.text_layers == 2 and config.data.options["image_size"] == 64
    with pytest.raises(ConfigError, match="shapes_vqa"):
        load_vlm_config(CONFIG, ["data.name=av_digits"])
    with pytest.raises(ConfigError, match="did you mean 'text_layers'"):
        load_vlm_config(CONFIG, ["model.text_layer=2"])
    assert load_vlm_config(CONFIG, ["task.options={question_loss: true}"]).task.options == {
        "question_loss": True
    }
    with pytest.raises(ConfigError, match=r"options among \('question_loss',\)"):
        load_vlm_config(CONFIG, ["task.options={question_los: true}"])
    with pytest.raises(ConfigError, match="question_loss must be true or false"):
        load_vlm_config(CONFIG, ["task.options={question_loss: 3}"])
    with pytest.raises(ConfigError, match="set data.options.grid=4"):  # 64 / 16 = 4 patches
        fit_vlm(load_vlm_config(CONFIG, ["model.patch_size=16"]))


@pytest.mark.slow
def test_training_caches_a_model_whose_hf_path_matches_its_forward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))
    overrides = [
        "data.options={train: 128, val: 32, test: 32}",
        "data.batch_size=32",
        "model.vision_hidden=32",
        "model.text_hidden=32",
        "model.text_layers=2",
        "trainer.max_epochs=1",
        "trainer.progress_bar=false",
    ]
    config = load_vlm_config(CONFIG, overrides)
    trained = cached_vlm(config)
    assert set(trained.metrics) >= {"test_acc", "test_acc_color", "test_acc_count"}
    items = trained.test_items
    assert items is not None and items.correct.shape == items.question_type.shape == (32,)
    assert items.correct.dtype == torch.bool
    torch.testing.assert_close(items.correct.float().mean().item(), trained.metrics["test_acc"])
    history = json.loads((trained.run_dir / "history.json").read_text())
    assert [row["epoch"] for row in history] == [0]  # one validation per epoch
    assert set(history[0]) >= {"val_acc", "color", "count"}
    reloaded = cached_vlm(config)  # from the cache: the same weights
    assert reloaded.run_dir == trained.run_dir
    for name, value in trained.model.state_dict().items():
        torch.testing.assert_close(reloaded.model.state_dict()[name], value)
    assert reloaded.test_items is not None
    torch.testing.assert_close(reloaded.test_items, items)

    vlm = load_vlm(trained.run_dir)
    from polymodal.data.synth.shapes_vqa import load_shapes_vqa

    test = load_shapes_vqa("test", **config.data.options)
    torch.testing.assert_close(items.question_type, test.tensors["question_type"])  # test order
    batch = VQACollator(vlm.fmt)([test[i] for i in range(8)])
    ours = predict_answers(vlm.model, batch)
    prompt_ids, prompt_mask = batch.prompt()
    hf = prune_and_generate(
        vlm.model, prompt_ids, batch.pixel_values, prompt_mask, keep_ratio=1.0, max_new_tokens=1
    )
    torch.testing.assert_close(hf.sequences[:, 0], ours)


class Interrupted(Exception):
    """Stands in for a killed process."""


@pytest.mark.slow
def test_an_interrupted_vlm_run_resumes_to_the_same_weights_and_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from polymodal.cli import main
    from polymodal.train.vlm import VQAModule

    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path / "home"))
    tiny = [
        "data.options={train: 96, val: 16, test: 16}",
        "data.batch_size=16",
        "model.vision_hidden=32",
        "model.text_hidden=32",
        "model.text_layers=1",
        "vision_pretrain.steps=5",
        "trainer.max_epochs=2",
        "trainer.progress_bar=false",
    ]
    assert main(["fit", str(CONFIG), *tiny, f"out_dir={tmp_path / 'straight'}"]) == 0

    start = VQAModule.on_train_epoch_start

    def stop_at_second_epoch(self: VQAModule) -> None:
        if self.current_epoch == 1:
            raise Interrupted
        start(self)

    monkeypatch.setattr(VQAModule, "on_train_epoch_start", stop_at_second_epoch)
    with pytest.raises(Interrupted):
        main(["fit", str(CONFIG), *tiny, f"out_dir={tmp_path / 'resumed'}"])
    monkeypatch.setattr(VQAModule, "on_train_epoch_start", start)
    assert (
        main(["fit", str(CONFIG), *tiny, f"out_dir={tmp_path / 'resumed'}"]) == 2
    )  # needs --resume
    assert main(["fit", str(CONFIG), *tiny, f"out_dir={tmp_path / 'resumed'}", "--resume"]) == 0

    for name in ("metrics.json", "history.json"):
        straight = json.loads((tmp_path / "straight" / name).read_text())
        assert json.loads((tmp_path / "resumed" / name).read_text()) == straight
    expected = load_vlm(tmp_path / "straight").model.state_dict()
    actual = load_vlm(tmp_path / "resumed").model.state_dict()
    for name, value in expected.items():
        torch.testing.assert_close(actual[name], value, rtol=0, atol=0)


def test_vlm_config_keeps_val_every_n_epochs_out_of_its_cache_key_at_the_default():
    assert "val_every_n_epochs" not in load_vlm_config().to_dict()["trainer"]
    every = load_vlm_config(None, ["trainer.val_every_n_epochs=2"]).to_dict()["trainer"]
    assert every["val_every_n_epochs"] == 2


def test_the_stem_and_centre_options_stay_out_of_the_cache_key_at_their_defaults() -> None:
    plain = load_vlm_config().to_dict()
    assert "vision_stem" not in plain["model"] and "centres" not in plain["vision_pretrain"]
    dense = load_vlm_config(DENSE)
    assert dense.model.vision_stem == "conv" and dense.vision_pretrain.centres
    assert dense.to_dict()["model"]["vision_stem"] == "conv"
    assert dense.to_dict()["vision_pretrain"]["centres"] is True
