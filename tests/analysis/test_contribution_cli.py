"""``polymodal analyze contribution`` on a run folder (an untrained model is enough)."""

import json

import pytest

import polymodal.data.synth.histo_omics  # noqa: F401  (registers histo_omics)
from polymodal.cli import main
from polymodal.train.checkpoint import save_weights
from polymodal.train.config import load_config, save_config
from polymodal.train.kfold import pool_dataset
from polymodal.train.recipe import build_from_config

TINY = [
    "data.options={patients: 16, genes: 300, min_tiles: 2, max_tiles: 4, tile_size: 16}",
    "model.dim=8",
    "model.modalities.genes.hidden=[16]",
    "model.modalities.tiles.depth=2",
]


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path / "home"))
    run = tmp_path / "run"
    run.mkdir()
    config = load_config("configs/subtype_fusion.yaml", [*TINY, f"out_dir={run}"])
    pool = pool_dataset(config)
    model = build_from_config(config, pool.dataset[0], pool.num_classes)
    save_config(config, run / "config.yaml")
    save_weights(model.state_dict(), run / "model.safetensors")
    return run


def test_writes_contributions_and_tile_rankings(run_dir, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["analyze", "contribution", str(run_dir), "--out", str(out), "--split", "all"]
    args += ["--samples", "5"]
    assert main([*args, "--heatmaps", "2", "--units", "genes=chunks:4"]) == 0
    summary = json.loads((out / "contribution.json").read_text())
    assert summary["samples"] == 5 and summary["units"] == {"tiles": 4, "genes": 4}
    assert sum(summary["m"].values()) == pytest.approx(1.0)
    assert sum(summary["m_per_sample"].values()) == pytest.approx(1.0)
    assert (out / "contribution.png").is_file() and (out / "tiles_tiles.png").is_file()
    assert "m (pooled)" in capsys.readouterr().out


def test_patch_units_give_heatmaps(run_dir, tmp_path):
    out = tmp_path / "out"
    args = ["analyze", "contribution", str(run_dir), "--out", str(out), "--samples", "3"]
    assert main([*args, "--units", "tiles=patches:8", "genes=whole", "--fill", "zero"]) == 0
    summary = json.loads((out / "contribution.json").read_text())
    assert summary["units"] == {"tiles": 4, "genes": 1}  # a 2 x 2 grid of 8-pixel patches
    assert (out / "heatmaps_tiles.png").is_file()


def test_bad_unit_specs_are_reported(run_dir, capsys):
    assert main(["analyze", "contribution", str(run_dir), "--units", "tiles=pixels"]) == 2
    assert "bad unit spec 'pixels'" in capsys.readouterr().err
    assert main(["analyze", "contribution", str(run_dir), "--units", "audio=whole"]) == 2
    assert "the model reads ['tiles', 'genes']" in capsys.readouterr().err
