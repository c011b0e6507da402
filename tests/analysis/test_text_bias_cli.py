"""``polymodal analyze text-bias`` on a small-VLM run folder and on a Hugging Face folder."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import pytest
import yaml

from polymodal.analysis.text_bias.cli import add_text_bias_parser
from polymodal.analysis.text_bias.probe import word_level_processor
from polymodal.data.synth.shapes_vqa import load_shapes_vqa
from polymodal.hf.llava import build_small_llava
from polymodal.train.checkpoint import save_weights
from polymodal.train.vlm import VLMConfig, small_llava_config

DATA = {"train": 8, "val": 8, "test": 12}
TINY_MODEL = {"patch_size": 16, "vision_hidden": 16, "text_hidden": 16, "text_layers": 1}


def run_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="analyze")
    add_text_bias_parser(parser.add_subparsers(dest="analysis", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


@pytest.fixture()
def model_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path / "home"))
    tokenizer = load_shapes_vqa("test", **DATA).tokenizer
    config = VLMConfig()
    config.data.options = dict(DATA)
    for key, value in TINY_MODEL.items():
        setattr(config.model, key, value)
    spec = small_llava_config(config.model, tokenizer, image_size=64)
    return config, spec, tokenizer, build_small_llava(spec, seed=0)


def test_a_small_vlm_run_gets_table_json_and_plot(model_parts, tmp_path: Path, capsys) -> None:
    config, spec, tokenizer, model = model_parts
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


def test_a_hugging_face_folder_is_probed_through_its_processor(model_parts, tmp_path: Path):
    _, _, tokenizer, model = model_parts
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


def test_a_folder_that_is_no_checkpoint_is_reported(tmp_path: Path) -> None:
    from polymodal.errors import ConfigError

    with pytest.raises(ConfigError, match="neither a VLM run folder"):
        run_command(["text-bias", str(tmp_path)])
