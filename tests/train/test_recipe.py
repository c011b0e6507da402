"""End-to-end recipe tests on a tiny AV-Digits build (seconds, not minutes)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from polymodal.errors import ConfigError
from polymodal.train.config import load_config
from polymodal.train.predictions import Predictions
from polymodal.train.recipe import evaluate, fit, read_run

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "fusion_av_digits.yaml"
TINY = [
    "data.options={train: 320, val: 64, test: 64, voices: 20}",
    "data.batch_size=32",
    "model.dim=16",
    "trainer.max_epochs=4",
    "trainer.patience=null",
    "trainer.progress_bar=false",
]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def home(tmp_path_factory, monkeypatch_module):
    folder = tmp_path_factory.mktemp("polymodal-home")
    monkeypatch_module.setenv("POLYMODAL_HOME", str(folder))
    return folder


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "polymodal.cli", *args]


def test_killed_run_resumes_to_exactly_the_uninterrupted_result(home, tmp_path):
    straight = fit(load_config(CONFIG, [*TINY, f"out_dir={tmp_path / 'straight'}"]))
    killed_dir = tmp_path / "killed"
    process = subprocess.Popen(
        cli("fit", str(CONFIG), *TINY, f"out_dir={killed_dir}"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    last = killed_dir / "checkpoints" / "last.ckpt"
    while process.poll() is None and not last.exists():
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (killed_dir / "metrics.json").exists()

    with pytest.raises(ConfigError, match="pass --resume"):
        fit(load_config(CONFIG, [*TINY, f"out_dir={killed_dir}"]))
    resumed = fit(load_config(CONFIG, [*TINY, f"out_dir={killed_dir}"]), resume=True)

    assert resumed.metrics == straight.metrics
    expected = load_file(str(straight.out_dir / "model.safetensors"))
    actual = load_file(str(resumed.out_dir / "model.safetensors"))
    for name, tensor in expected.items():
        torch.testing.assert_close(actual[name], tensor, rtol=0, atol=0)

    assert evaluate(resumed.out_dir)["test_acc"] == pytest.approx(resumed.metrics["test_acc"])
    best = resumed.out_dir / "checkpoints" / "best.ckpt"
    assert evaluate(best)["test_acc"] == pytest.approx(resumed.metrics["test_acc"])


def test_fit_keeps_the_best_epochs_per_item_test_predictions_in_test_order(home, tmp_path):
    config = load_config(CONFIG, [*TINY, "trainer.max_epochs=1", f"out_dir={tmp_path / 'run'}"])
    result = fit(config)
    saved = Predictions.load(result.out_dir / "test_predictions.safetensors")
    assert saved.logits.shape == (64, 10)
    from polymodal.train.datamodule import MultimodalDataModule

    test_labels = MultimodalDataModule(config.data, seed=0).dataset("test").tensors["label"]
    torch.testing.assert_close(saved.labels, test_labels.long())
    assert saved.correct().mean() == pytest.approx(result.metrics["test_acc"])
    cached = read_run(result.out_dir)
    assert cached is not None and cached.metrics == result.metrics
    torch.testing.assert_close(cached.predictions.logits, result.predictions.logits)


def test_two_process_gloo_ddp_training_runs(home, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "POLYMODAL_HOME": str(home)}
    result = subprocess.run(
        cli(
            "fit",
            str(CONFIG),
            *TINY,
            "trainer.max_epochs=2",
            "trainer.devices=2",
            "trainer.strategy=ddp",
            f"out_dir={out}",
        ),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    assert 0.0 <= metrics["test_acc"] <= 1.0
    # Each rank tested every other item; the saved predictions are back in test order.
    saved = Predictions.load(out / "test_predictions.safetensors")
    config = load_config(CONFIG, TINY)
    from polymodal.train.datamodule import MultimodalDataModule

    test_labels = MultimodalDataModule(config.data, seed=0).dataset("test").tensors["label"]
    torch.testing.assert_close(saved.labels, test_labels.long())
    assert saved.correct().mean() == pytest.approx(metrics["test_acc"])


def test_determinism_only_warns_where_the_run_lands_on_cuda(monkeypatch):
    from polymodal.train.recipe import deterministic_mode

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert deterministic_mode("cpu") is True and deterministic_mode("auto") is True
    assert deterministic_mode("gpu") == "warn" and deterministic_mode("CUDA") == "warn"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert deterministic_mode("auto") == "warn" and deterministic_mode("cpu") is True


def test_val_every_n_epochs_validates_only_those_epochs(home, tmp_path):
    config = load_config(
        CONFIG, [*TINY, "trainer.val_every_n_epochs=2", f"out_dir={tmp_path / 'run'}"]
    )
    fit(config)
    lines = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    validated = sorted({int(r["epoch"]) for r in rows if r.get("val_acc")})
    assert validated == [1, 3]  # epochs 0..3, every second one
    assert (
        "val_every_n_epochs"
        in load_config(CONFIG, ["trainer.val_every_n_epochs=2"]).to_dict()["trainer"]
    )
    assert "val_every_n_epochs" not in load_config(CONFIG).to_dict()["trainer"]


def test_val_every_n_epochs_below_one_is_refused():
    with pytest.raises(ConfigError, match=r"trainer.val_every_n_epochs must be >= 1, got 0"):
        load_config(CONFIG, ["trainer.val_every_n_epochs=0"])
