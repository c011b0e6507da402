"""``polymodal adapt`` on a run folder (an untrained model is enough)."""

import csv
import json

import pytest

from polymodal.cli import main
from polymodal.cli.adapt import METHOD_NAMES
from polymodal.methods.abpem import METHODS
from polymodal.train.checkpoint import save_weights
from polymodal.train.config import load_config, save_config
from polymodal.train.datamodule import MultimodalDataModule
from polymodal.train.recipe import build_model

TINY = [
    "data.options={train: 30, val: 20, test: 20, voices: 20, image_noise: 0.0, "
    "image_occlusion: 0, audio_snr_db: 10.0}",
    "model.dim=16",
    "model.options.num_heads=2",
]


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    pytest.importorskip("espeakng_loader", reason="AV-Digits needs espeakng-loader")
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path / "home"))
    run = tmp_path / "run"
    run.mkdir()
    config = load_config("configs/abpem_av_digits.yaml", [*TINY, f"out_dir={run}"])
    model, _ = build_model(config, MultimodalDataModule(config.data, seed=0))
    save_config(config, run / "config.yaml")
    save_weights(model.state_dict(), run / "model.safetensors")
    return run


def test_writes_per_batch_accuracy_a_summary_and_a_plot(run_dir, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["adapt", str(run_dir), "--method", "none", "abpem", "--batch-size", "8"]
    assert main([*args, "--corrupt", "audio:wind:5", "image:fog:3", "--out", str(out)]) == 0
    with (out / "per_batch.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    # 2 corruptions x 2 methods x 3 batches (20 samples in batches of 8)
    assert len(rows) == 12 and [r["size"] for r in rows[:3]] == ["8", "8", "4"]
    summary = json.loads((out / "summary.json").read_text())
    assert [(r["corruption"], r["method"]) for r in summary["results"]] == [
        ("audio:wind:5", "none"),
        ("audio:wind:5", "abpem"),
        ("image:fog:3", "none"),
        ("image:fog:3", "abpem"),
    ]
    wind_abpem = [r for r in rows if r["corruption"] == "audio:wind:5" and r["method"] == "abpem"]
    correct = sum(int(r["correct"]) for r in wind_abpem)
    assert summary["results"][1]["accuracy"] == pytest.approx(correct / 20)
    assert (out / "adapt.png").is_file()
    assert "audio:wind:5" in capsys.readouterr().out


def test_an_unknown_corruption_is_reported(run_dir, capsys):
    assert main(["adapt", str(run_dir), "--corrupt", "audio:hail:5"]) == 2
    assert "unknown audio corruption 'hail'" in capsys.readouterr().err


def test_the_parser_lists_every_method():
    assert tuple(METHODS) == METHOD_NAMES


def test_zero_samples_is_a_one_line_error(tmp_path, capsys):
    assert main(["adapt", str(tmp_path), "--samples", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--samples must be a whole number >= 1 or 'all'" in err
