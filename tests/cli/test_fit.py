"""``polymodal fit`` and ``eval``: recipe dispatch, VLM runs, and one-line input errors."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

import polymodal.data.synth.histo_omics  # noqa: F401  (registers histo_omics)
from polymodal.cli import main
from polymodal.data.synth.shapes_vqa import load_shapes_vqa
from polymodal.hf.llava import build_small_llava
from polymodal.train.checkpoint import save_weights
from polymodal.train.config import load_config, save_config
from polymodal.train.kfold import pool_dataset
from polymodal.train.recipe import build_from_config
from polymodal.train.vlm import VLMConfig, small_llava_config

TINY_SUBTYPE = [
    "data.options={patients: 16, genes: 300, min_tiles: 2, max_tiles: 4, tile_size: 16}",
    "model.dim=8",
    "model.modalities.genes.hidden=[16]",
    "model.modalities.tiles.depth=2",
]
VLM_DATA = {"train": 8, "val": 8, "test": 12}


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    """The command's stderr, checked to be a single ``polymodal: error:`` line."""
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("polymodal: error: "), err
    return err


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path / "home"))
    return tmp_path


# ----------------------------------------------------------------------------- dispatch


def test_a_shapes_vqa_config_trains_the_vlm(home, monkeypatch, capsys):
    import polymodal.train.vlm as vlm

    seen = []

    def fake_fit(config, resume=False):
        seen.append((config, resume))
        return SimpleNamespace(run_dir=Path(config.out_dir), metrics={"test_acc": 0.5})

    monkeypatch.setattr(vlm, "fit_vlm", fake_fit)
    out = home / "vlm"
    args = ["fit", "configs/shapes_vlm.yaml", "attention=mma", "data.rows=questions"]
    assert main([*args, f"out_dir={out}"]) == 0
    assert isinstance(seen[0][0], VLMConfig) and seen[0][0].attention == "mma"
    assert seen[0][1] is False
    assert json.loads(capsys.readouterr().out) == {"out_dir": str(out), "test_acc": 0.5}
    assert main([*args, f"out_dir={out}", "task.kind=vqa", "--resume"]) == 0
    assert seen[1][1] is True


def test_the_vlm_recipe_takes_no_other_task(home, capsys):
    assert main(["fit", "configs/shapes_vlm.yaml", "task.kind=classification"]) == 2
    assert "unknown config key" in one_line_error(capsys)


def test_eval_retests_a_vlm_run_folder(home, capsys):
    tokenizer = load_shapes_vqa("test", **VLM_DATA).tokenizer
    config = VLMConfig()
    config.data.options = dict(VLM_DATA)
    config.trainer.progress_bar = False
    config.model.patch_size, config.model.vision_hidden = 16, 16
    config.model.text_hidden, config.model.text_layers = 16, 1
    spec = small_llava_config(config.model, tokenizer, image_size=64)
    run = home / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(config.to_dict()))
    (run / "llava_config.json").write_text(json.dumps(spec.to_dict()))
    (run / "metrics.json").write_text("{}")
    tokenizer.save(str(run / "tokenizer.json"))
    save_weights(build_small_llava(spec, seed=0).state_dict(), run / "model.safetensors")

    assert main(["eval", str(run)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert 0.0 <= metrics["test_acc"] <= 1.0
    assert {k for k in metrics if k != "test_acc"} <= {f"test_acc_{t}" for t in _types()}


def _types() -> tuple[str, ...]:
    from polymodal.data.synth.shapes_vqa import QUESTION_TYPES

    return QUESTION_TYPES


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("text", ["- a\n", "3\n"])
def test_a_config_that_is_not_a_mapping_is_named(tmp_path, capsys, text):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    assert main(["fit", str(config)]) == 2
    err = one_line_error(capsys)
    assert f"{config} must hold a mapping of sections" in err and "at its top level" in err


def test_a_zero_batch_size_is_named(capsys):
    assert main(["fit", "configs/fusion_av_digits.yaml", "data.batch_size=0"]) == 2
    assert "data.batch_size must be >= 1, got 0; set e.g. data.batch_size=32" in one_line_error(
        capsys
    )


def test_a_non_positive_learning_rate_is_named(capsys):
    assert main(["fit", "configs/shapes_vlm.yaml", "optim.lr=0"]) == 2
    assert "optim.lr must be > 0, got 0.0" in one_line_error(capsys)


@pytest.mark.parametrize("accelerator", ["gpu", "cuda"])
def test_a_gpu_accelerator_without_a_gpu_is_named(monkeypatch, capsys, accelerator):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    args = ["fit", "configs/fusion_av_digits.yaml", f"trainer.accelerator={accelerator}"]
    assert main(args) == 2
    err = one_line_error(capsys)
    assert f"trainer.accelerator={accelerator}, but this machine has no GPU" in err
    assert "use trainer.accelerator=cpu or auto" in err


def test_eval_of_a_run_whose_config_no_longer_fits_its_weights(home, capsys):
    run = home / "run"
    run.mkdir()
    config = load_config("configs/subtype_fusion.yaml", [*TINY_SUBTYPE, f"out_dir={run}"])
    pool = pool_dataset(config)
    model = build_from_config(config, pool.dataset[0], num_classes=pool.num_classes)
    save_weights(model.state_dict(), run / "model.safetensors")
    config.model.dim = 16  # edited after training
    save_config(config, run / "config.yaml")

    assert main(["eval", str(run)]) == 2
    err = one_line_error(capsys)
    assert f"{run}: config.yaml no longer matches the saved weights" in err
    assert "has shape" in err and "but (16" in err


def test_a_packaged_recipe_is_found_by_its_bare_name(capsys):
    # The bare name reaches the packaged YAML (the batch-size check runs after reading it).
    assert main(["fit", "fusion_av_digits", "data.batch_size=0"]) == 2
    assert "data.batch_size must be >= 1" in one_line_error(capsys)
    assert main(["fit", "no_such_recipe"]) == 2
    error = one_line_error(capsys)
    assert "'no_such_recipe' is neither a file nor a packaged config" in error
    assert "fusion_av_digits" in error and "shapes_vlm" in error
