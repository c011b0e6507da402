"""``polymodal fit av_ssl`` end to end: on generated clips, and on folders of video files."""

import json
import shutil
from pathlib import Path

import pytest

from polymodal.cli import main

TINY = [
    "data.batch_size=8",
    "trainer.max_epochs=1",
    "trainer.progress_bar=false",
    "model.dim=12",
    "model.modalities.video.depth=1",
]


@pytest.fixture(autouse=True)
def home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path_factory.getbasetemp() / "polymodal-home"))


@pytest.mark.slow
def test_fit_trains_on_labelled_and_unlabelled_clip_folders(tmp_path: Path, write_clip) -> None:
    folders = {}
    for name, labelled in (
        ("labelled", True),
        ("unlabelled", False),
        ("val", True),
        ("test", True),
    ):
        folder = tmp_path / name
        folder.mkdir()
        rows = []
        for k in range(4):
            write_clip(folder / f"c{k}.mp4", frames=8, value=60 + 60 * (k % 2))
            rows.append(f"c{k}.mp4,{'bright' if k % 2 else 'dim'}\n")
        if labelled:
            (folder / "labels.csv").write_text("clip,label\n" + "".join(rows))
        folders[name] = str(folder)
    data = ", ".join(f"{k}: {v}" for k, v in folders.items())
    run = tmp_path / "run"
    overrides = [
        "data.name=av_video_folders",
        f"data.options={{{data}, frames: 8, size: 16}}",
        "model.options.box_side=8",
        *TINY,
        f"out_dir={run}",
    ]
    assert main(["fit", "av_ssl", *overrides]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["test_acc"] <= 1.0 and metrics["epochs"] == 1
    shutil.rmtree(run)


@pytest.mark.slow
def test_fit_trains_on_av_digits_video_with_the_mix_and_contrastive_terms(tmp_path: Path) -> None:
    run = tmp_path / "run"
    data = (
        "data.options={train: 40, val: 10, test: 10, voices: 20, size: 16, labelled_per_class: 1}"
    )
    overrides = [data, "model.options.box_side=8", "trainer.log_every_n_steps=1", *TINY]
    overrides.append(f"out_dir={run}")
    assert main(["fit", "av_ssl", *overrides]) == 0
    logged = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train_mix", "train_contrastive", "train_pseudo_share"} <= set(logged)
