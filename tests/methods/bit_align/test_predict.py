import csv

import numpy as np
import pytest
from PIL import Image

from polymodal.cli import main
from polymodal.train.predict import predict


@pytest.mark.slow
def test_predict_writes_maps_overlays_and_the_grounded_affordance(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path / "home"))
    run = tmp_path / "run"
    tiny = [
        "data.options={train: 16, val: 4, test: 4, test_seen: 4, size: 16}",
        "data.batch_size=8",
        "trainer.max_epochs=1",
        "trainer.progress_bar=false",
        "model.dim=16",
        "model.options.depth=1",
        "model.options.patch_size=4",
        "model.options.text_encoder=none",
    ]
    assert main(["fit", "bit_align", *tiny, f"out_dir={run}"]) == 0
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    picture = np.zeros((20, 20, 3), dtype=np.uint8)
    picture[5:15, 5:15] = 200
    Image.fromarray(picture).save(scenes / "mug.png")
    np.save(scenes / "mug.depth.npy", np.linspace(0, 1, 256, dtype=np.float32).reshape(1, 16, 16))
    files = predict(run, scenes, tmp_path / "out")
    overlay = np.asarray(Image.open(tmp_path / "out" / "overlays" / "mug.png"))
    heat = np.asarray(Image.open(tmp_path / "out" / "heatmaps" / "mug.png"))
    assert overlay.shape == (16, 16, 3) and heat.shape == (16, 16) and heat.max() == 255
    # where the map peaks, red is laid over the (grey) picture
    peak = np.unravel_index(heat.argmax(), heat.shape)
    assert overlay[peak][0] > overlay[peak][1] == overlay[peak][2]
    rows = list(csv.reader((tmp_path / "out" / "affordances.csv").open()))
    assert rows[0] == ["name", "affordance"] and rows[1][0] == "mug"
    assert rows[1][1] in ("grasp", "cut", "pour", "contain", "sit", "hit")
    assert tmp_path / "out" / "heatmaps.safetensors" in files
