"""Every task kind trains through ``polymodal fit`` on generated data, and an
interrupted run resumes to exactly the numbers and weights of an uninterrupted one."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch
from safetensors.torch import load_file

from polymodal.cli import main
from polymodal.errors import ConfigError
from polymodal.train import recipe
from polymodal.train.config import load_config

TINY = [
    "data.options={train: 64, val: 24, test: 24, image_size: 16, labelled_per_class: 3}",
    "data.batch_size=16",
    "trainer.max_epochs=2",
    "trainer.progress_bar=false",
    "model.dim=24",
]
RECIPES = {
    "classification": ("shapes_classify", ["model.modalities.image.depth=1"]),
    "masked_reconstruction": (
        "shapes_mae",
        ["model.options.depth=1", "model.options.decoder_dim=24"],
    ),
    "contrastive_retrieval": ("shapes_retrieval", ["model.modalities.text_ids.depth=1"]),
    "dense_prediction": ("shapes_segmentation", ["model.options.depth=1"]),
    "sequence_generation": (
        "shapes_captions",
        ["model.modalities.image.depth=1", "model.options.depth=1"],
    ),
    "semi_supervised": ("shapes_semi_supervised", ["task.options.threshold=0.3"]),
    "multilabel_classification": (
        "abn_blip_encoder",
        ["data.options={train: 32, val: 8, test: 8, size: 16}", "model.modalities.ct.depth=1"],
    ),
    "report_generation": (
        "abn_blip",
        [
            "data.options={train: 32, val: 8, test: 8, size: 16}",
            "model.options.depth=1",
            "model.options.hidden=32",
            "model.options.lm_hidden=32",
        ],
    ),
    "weak_grounding": (
        "bit_align",
        [
            "data.options={train: 32, val: 8, test: 8, test_seen: 8, size: 16}",
            "model.options.depth=1",
            "model.options.patch_size=4",
            "model.options.text_encoder=none",
        ],
    ),
}
MONITORED = {
    "classification": "best_val_acc",
    "masked_reconstruction": "best_val_mse",
    "contrastive_retrieval": "best_val_recall@1",
    "dense_prediction": "best_val_dice",
    "sequence_generation": "best_val_token_acc",
    "semi_supervised": "best_val_acc",
    "multilabel_classification": "best_val_auroc",
    "report_generation": "best_val_clinical_macro_f1",
    "weak_grounding": "best_val_kld",
}


@pytest.fixture(autouse=True)
def home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path_factory.getbasetemp() / "polymodal-home"))


class Interrupted(Exception):
    """Stands in for a killed process."""


class StopAtSecondEpoch(L.Callback):
    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.current_epoch == 1:
            raise Interrupted


def fit_cli(kind: str, out: Path, *extra: str) -> int:
    config, overrides = RECIPES[kind]
    return main(["fit", config, *TINY, *overrides, f"out_dir={out}", *extra])


@pytest.mark.parametrize("kind", list(RECIPES))
def test_every_task_fits_and_resumes_bit_exactly(kind, tmp_path, monkeypatch):
    assert fit_cli(kind, tmp_path / "straight") == 0
    straight = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    assert straight["epochs"] == 2 and MONITORED[kind] in straight
    assert all(v == v for v in straight.values()), straight  # no NaN

    build = recipe._trainer

    def interrupting(*args, **kwargs):
        trainer = build(*args, **kwargs)
        trainer.callbacks.append(StopAtSecondEpoch())
        return trainer

    monkeypatch.setattr(recipe, "_trainer", interrupting)
    with pytest.raises(Interrupted):
        fit_cli(kind, tmp_path / "resumed")
    monkeypatch.setattr(recipe, "_trainer", build)
    assert (tmp_path / "resumed" / "checkpoints" / "last.ckpt").is_dir()
    assert not (tmp_path / "resumed" / "metrics.json").exists()

    assert fit_cli(kind, tmp_path / "resumed", "--resume") == 0
    resumed = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    assert resumed == straight
    expected = load_file(str(tmp_path / "straight" / "model.safetensors"))
    actual = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert expected.keys() == actual.keys()
    for name, tensor in expected.items():
        torch.testing.assert_close(actual[name], tensor, rtol=0, atol=0)


def test_eval_re_tests_a_run_of_any_task(tmp_path, capsys):
    assert fit_cli("dense_prediction", tmp_path / "run", "trainer.max_epochs=1") == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run")]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["test_dice"] == pytest.approx(metrics["test_dice"])


def test_mae_weights_initialise_a_classifier_with_a_key_map_and_freezing(tmp_path):
    assert fit_cli("masked_reconstruction", tmp_path / "mae", "trainer.max_epochs=1") == 0
    mae = load_file(str(tmp_path / "mae" / "model.safetensors"))
    code = fit_cli(
        "classification",
        tmp_path / "cls",
        "trainer.max_epochs=1",
        f"model.init_from={tmp_path / 'mae'}",
        'model.init_map={"encoder.": "encoders.image."}',
        "model.freeze=[encoders.image.*]",
    )
    assert code == 0
    tuned = load_file(str(tmp_path / "cls" / "model.safetensors"))
    # Frozen: the classifier's encoder is still exactly the pre-trained one.
    for name, value in mae.items():
        if name.startswith("encoder."):
            new = "encoders.image." + name.removeprefix("encoder.")
            torch.testing.assert_close(tuned[new], value, rtol=0, atol=0)


def test_a_task_whose_target_the_data_lacks_names_it():
    config = load_config("shapes_segmentation")
    sample = {"image": torch.zeros(3, 32, 32), "label": torch.tensor(1)}
    with pytest.raises(ConfigError, match=r"dense_prediction.*\['heatmap'\]"):
        recipe.build_from_config(config, sample)


def test_an_unknown_task_kind_lists_the_known_ones():
    with pytest.raises(ConfigError, match="masked_reconstruction"):
        recipe.build_from_config(load_config(None, ["task.kind=detection"]), {})


def test_a_task_without_a_default_model_asks_for_a_builder():
    config = load_config("abn_blip", ["model.options={}"])
    sample = {
        "ct": torch.zeros(16, 16, 16),
        "labels": torch.zeros(16),
        "tokens": torch.ones(3).long(),
    }
    with pytest.raises(ConfigError, match="model.options.builder"):
        recipe.build_from_config(config, sample, num_labels=16)
