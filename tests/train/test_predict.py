"""``polymodal predict`` on runs of every task kind, on a folder of PNG files."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from polymodal.cli import main
from polymodal.train.predict import predict

pytestmark = pytest.mark.slow

TINY = [
    "data.options={train: 48, val: 16, test: 16, image_size: 16}",
    "data.batch_size=16",
    "trainer.max_epochs=1",
    "trainer.progress_bar=false",
    "model.dim=24",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POLYMODAL_HOME", str(folder / "home"))
        for recipe in (
            "shapes_classify",
            "shapes_segmentation",
            "shapes_captions",
            "shapes_retrieval",
            "shapes_mae",
        ):
            assert main(["fit", recipe, *TINY, f"out_dir={folder / recipe}"]) == 0
        yield folder


@pytest.fixture
def pictures(tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("one", "two", "three"):
        pixels = (rng.random((20, 24, 3)) * 255).astype(np.uint8)  # not the model's 16 x 16
        Image.fromarray(pixels).save(folder / f"{name}.png")
    return folder


def test_classification_writes_classes_and_probabilities(runs, pictures, tmp_path):
    predict(runs / "shapes_classify", pictures, tmp_path / "out")
    rows = list(csv.DictReader((tmp_path / "out" / "predictions.csv").open()))
    assert [r["name"] for r in rows] == ["one", "three", "two"]
    for row in rows:
        p = [float(row[f"p_{c}"]) for c in range(4)]
        assert sum(p) == pytest.approx(1.0, abs=1e-5)
        assert int(row["class"]) == int(np.argmax(p))


def test_dense_prediction_writes_a_png_per_input_at_the_model_resolution(runs, pictures, tmp_path):
    files = predict(runs / "shapes_segmentation", pictures, tmp_path / "out")
    assert len(files) == 4
    heatmap = np.asarray(Image.open(tmp_path / "out" / "heatmaps" / "two.png"))
    assert heatmap.shape == (16, 16) and heatmap.dtype == np.uint8
    saved = load_file(str(tmp_path / "out" / "heatmaps.safetensors"))["heatmap"]
    assert saved.shape == (3, 16, 16) and 0 <= float(saved.min()) <= float(saved.max()) <= 1
    # the PNG is the map of the same (sorted) sample, in 8 bits
    np.testing.assert_allclose(heatmap / 255, saved[2].numpy(), atol=0.5 / 255 + 1e-6)


def test_generation_writes_decoded_text(runs, pictures, tmp_path):
    predict(runs / "shapes_captions", pictures, tmp_path / "out")
    records = [json.loads(line) for line in (tmp_path / "out" / "generated.jsonl").open()]
    assert [r["name"] for r in records] == ["one", "three", "two"]
    for record in records:
        assert record["tokens"][0] == 1  # BOS
        assert "<bos>" not in record["text"] and "<eos>" not in record["text"]


def test_retrieval_embeds_the_side_the_inputs_feed(runs, pictures, tmp_path):
    predict(runs / "shapes_retrieval", pictures, tmp_path / "out")
    embeddings = load_file(str(tmp_path / "out" / "embeddings.safetensors"))
    assert set(embeddings) == {"query"}  # pictures are queries; documents are texts
    torch.testing.assert_close(embeddings["query"].norm(dim=-1), torch.ones(3))


def test_reconstruction_writes_images(runs, pictures, tmp_path):
    predict(runs / "shapes_mae", pictures, tmp_path / "out")
    image = np.asarray(Image.open(tmp_path / "out" / "reconstructions" / "one.png"))
    assert image.shape == (16, 16, 3)


def test_the_command_reports_bad_input_in_one_line(runs, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main(
        [
            "predict",
            str(runs / "shapes_classify"),
            str(tmp_path / "empty"),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    assert "no input for this model's modalities (image)" in capsys.readouterr().err


def test_a_volume_segmentation_is_written_as_nifti_on_each_inputs_grid(tmp_path):
    nib = pytest.importorskip("nibabel")
    run = tmp_path / "segment"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POLYMODAL_HOME", str(tmp_path / "home"))
        tiny = [
            "data.options={train: 8, val: 4, test: 4, size: 16}",
            "data.batch_size=4",
            "trainer.max_epochs=1",
            "trainer.progress_bar=false",
            "model.dim=24",
            "model.options={patch_size: 4, depth: 1}",
        ]
        assert main(["fit", "fratmae_segment", *tiny, f"out_dir={run}"]) == 0
        inputs = tmp_path / "cases"
        inputs.mkdir()
        affine = np.diag([5.0, 5.0, 8.0, 1.0])  # x, y, z voxel sizes: a 20 x 24 x 12 grid
        affine[:3, 3] = (-50.0, 30.0, 100.0)
        for kind, value in (("ct", 40.0), ("pet", 2.0)):
            volume = np.full((20, 24, 12), value, dtype=np.float32)
            nib.save(nib.Nifti1Image(volume, affine), str(inputs / f"p7_{kind}.nii.gz"))
        files = predict(run, inputs, tmp_path / "out")
    mask = nib.load(str(tmp_path / "out" / "masks" / "p7.nii.gz"))
    assert tmp_path / "out" / "masks" / "p7.nii.gz" in files
    assert mask.shape == (20, 24, 12)
    np.testing.assert_allclose(mask.affine, affine)
    assert set(np.unique(np.asarray(mask.dataobj))) <= {0, 1}


def test_a_report_model_writes_a_report_for_a_single_nifti_volume(tmp_path):
    nib = pytest.importorskip("nibabel")
    run = tmp_path / "reports"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POLYMODAL_HOME", str(tmp_path / "home"))
        tiny = [
            "data.options={train: 8, val: 4, test: 4, size: 16}",
            "data.batch_size=4",
            "trainer.max_epochs=1",
            "trainer.progress_bar=false",
            "model.options.depth=1",
            "model.options.hidden=32",
            "model.options.lm_hidden=32",
        ]
        assert main(["fit", "abn_blip", *tiny, f"out_dir={run}"]) == 0
        scan = tmp_path / "scan.nii.gz"
        nib.save(
            nib.Nifti1Image(
                np.full((20, 20, 20), 40.0, np.float32), np.diag([20.0, 20.0, 20.0, 1.0])
            ),
            str(scan),
        )
        predict(run, scan, tmp_path / "out")
    record = json.loads((tmp_path / "out" / "reports.jsonl").read_text())
    assert record["name"] == "scan" and record["report"].startswith("PULMONARY ARTERIES:")
    assert (tmp_path / "out" / "reports" / "scan.txt").read_text().strip() == record["report"]
