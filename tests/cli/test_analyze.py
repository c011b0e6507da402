"""``polymodal analyze``: contribution on a run folder (an untrained model is enough), and
text-bias on a small-VLM run folder and on a Hugging Face folder."""

import csv
import json
from pathlib import Path

import pytest
import yaml

import polymodal.data.synth.histo_omics  # noqa: F401  (registers histo_omics)
from polymodal.analysis.text_bias.probe import word_level_processor
from polymodal.cli import main
from polymodal.data.registry import build_dataset
from polymodal.data.synth.shapes_vqa import load_shapes_vqa
from polymodal.hf.llava import build_small_llava
from polymodal.train.checkpoint import save_weights
from polymodal.train.config import load_config, save_config
from polymodal.train.kfold import pool_dataset
from polymodal.train.recipe import build_from_config
from polymodal.train.vlm import VLMConfig, small_llava_config

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
    model = build_from_config(config, pool.dataset[0], num_classes=pool.num_classes)
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


def test_samples_all_takes_every_sample(run_dir, tmp_path):
    out = tmp_path / "out"
    args = ["analyze", "contribution", str(run_dir), "--out", str(out), "--split", "val"]
    assert main([*args, "--samples", "all", "--heatmaps", "0"]) == 0
    config = load_config(run_dir / "config.yaml")
    expected = len(build_dataset("histo_omics", "val", **config.data.options))
    assert json.loads((out / "contribution.json").read_text())["samples"] == expected


def test_zero_samples_is_a_one_line_error(tmp_path, capsys):
    assert main(["analyze", "contribution", str(tmp_path), "--samples", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--samples must be a whole number >= 1 or 'all', got '0'" in err


def test_bad_unit_specs_are_reported(run_dir, capsys):
    assert main(["analyze", "contribution", str(run_dir), "--units", "tiles=pixels"]) == 2
    assert "bad unit spec 'pixels'" in capsys.readouterr().err
    assert main(["analyze", "contribution", str(run_dir), "--units", "audio=whole"]) == 2
    assert "the model reads ['tiles', 'genes']" in capsys.readouterr().err


# ----------------------------------------------------------------------------- text-bias

DATA = {"train": 8, "val": 8, "test": 12}
TINY_MODEL = {"patch_size": 16, "vision_hidden": 16, "text_hidden": 16, "text_layers": 1}


def run_command(argv: list[str]) -> int:
    return main(["analyze", *argv])


@pytest.fixture()
def vlm_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path / "home"))
    tokenizer = load_shapes_vqa("test", **DATA).tokenizer
    config = VLMConfig()
    config.data.options = dict(DATA)
    for key, value in TINY_MODEL.items():
        setattr(config.model, key, value)
    spec = small_llava_config(config.model, tokenizer, image_size=64)
    return config, spec, tokenizer, build_small_llava(spec, seed=0)


def test_a_small_vlm_run_gets_table_json_and_plot(vlm_parts, tmp_path: Path, capsys) -> None:
    config, spec, tokenizer, model = vlm_parts
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(config.to_dict()))
    (run / "llava_config.json").write_text(json.dumps(spec.to_dict()))
    (run / "metrics.json").write_text("{}")
    tokenizer.save(str(run / "tokenizer.json"))
    save_weights(model.state_dict(), run / "model.safetensors")

    assert run_command(["text-bias", str(run), "--samples", "5", "--position", "both"]) == 0
    out = run / "text_bias"
    with (out / "text_bias.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 14  # 7 conditions, 2 positions
    assert {r["position"] for r in rows} == {"before", "after"}
    corrupted = next(r for r in rows if r["condition"] == "image_corrupted")
    counts = [int(corrupted[k]) for k in ("text", "image", "same", "neither")]
    assert sum(counts) == 5
    summary = json.loads((out / "text_bias.json").read_text())
    assert summary["samples"] == 5 and summary["data_options"] == DATA
    assert len(summary["positions"]["after"]["answers"]["image_only"]) == 5
    assert (out / "text_bias.png").stat().st_size > 0
    assert "| position | condition |" in (out / "text_bias.md").read_text()
    assert "image_corrupted" in capsys.readouterr().out


def test_a_hugging_face_folder_is_probed_through_its_processor(vlm_parts, tmp_path: Path):
    _, _, tokenizer, model = vlm_parts
    folder = tmp_path / "hf"
    model.save_pretrained(folder)
    word_level_processor(tokenizer, 64, 16).save_pretrained(folder)
    out = tmp_path / "out"
    argv = ["text-bias", str(folder), "--samples", "3", "--out", str(out), "--instruction", ""]
    argv += ["--max-new-tokens", "1"] + [f"-o{k}={v}" for k, v in DATA.items()]
    assert run_command(argv) == 0
    summary = json.loads((out / "text_bias.json").read_text())
    answers = summary["positions"]["before"]["answers"]
    assert len(answers) == 7 and all(len(a) == 3 for a in answers.values())


def test_a_folder_that_is_no_checkpoint_is_reported(tmp_path: Path, capsys) -> None:
    assert run_command(["text-bias", str(tmp_path)]) == 2
    assert "neither a VLM run folder" in capsys.readouterr().err
