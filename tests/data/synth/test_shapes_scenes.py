"""Shapes-Scenes: a tiny build's samples, its targets, and the coverage map."""

from __future__ import annotations

from itertools import cycle
from pathlib import Path

import numpy as np
import pytest
import torch

from polymodal.data.synth import shapes_scenes
from polymodal.data.synth.shapes_render import COLORS, SHAPES, Scene, coverage
from polymodal.data.synth.shapes_scenes import BOS, EOS, VOCAB, load_shapes_scenes

TINY = {"train": 24, "val": 3, "test": 3, "image_size": 16}


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))
    return tmp_path


def _scene(*objects: tuple[str, str, float, float, float]) -> Scene:
    """(shape, colour, x, y, radius) rows on a plain background."""
    rows = [(SHAPES.index(s), COLORS.index(c), int(r > 3), x, y, r) for s, c, x, y, r in objects]
    return Scene(np.array(rows, dtype=np.float32), background=0)


def test_samples_have_the_documented_keys_shapes_and_dtypes() -> None:
    data = load_shapes_scenes("train", **TINY, labelled_per_class=2)
    assert len(data) == 24 and data.num_classes == 4 and data.vocab == VOCAB
    for i in range(len(data)):
        s = data[i]
        assert set(s) == {"image", "label", "heatmap", "tokens", "text_ids", "label_mask"}
        assert s["image"].shape == (3, 16, 16) and s["image"].dtype == torch.float32
        assert float(s["image"].min()) >= 0.0 and float(s["image"].max()) <= 1.0
        assert s["heatmap"].shape == (16, 16) and s["heatmap"].dtype == torch.float32
        assert float(s["heatmap"].min()) >= 0.0 and float(s["heatmap"].max()) <= 1.0
        assert s["label"].shape == () and s["label"].dtype == torch.int64
        assert 0 <= int(s["label"]) < 4
        tokens, text = s["tokens"].tolist(), s["text_ids"].tolist()
        assert tokens[0] == BOS and tokens[-1] == EOS and -100 not in tokens
        assert BOS not in tokens[1:-1] and EOS not in tokens[1:-1]
        assert s["text_ids"].dtype == torch.int64 and 0 not in text
        objects = (len(tokens) - 2) // 2  # a colour and a shape per object
        assert 1 <= objects <= 3 and len(text) == 4 * objects - 1  # "a c s" + "above"s
    assert "label_mask" not in load_shapes_scenes("val", **TINY, labelled_per_class=2)[0]
    assert "label_mask" not in load_shapes_scenes("train", **TINY)[0]


def test_label_mask_marks_the_first_labelled_per_class_training_samples_of_each_class() -> None:
    tensors = load_shapes_scenes("train", **TINY, labelled_per_class=2).tensors
    labels, mask = tensors["label"], tensors["label_mask"]
    for c in range(4):
        members = torch.nonzero(labels == c).flatten().tolist()
        assert torch.nonzero(mask & (labels == c)).flatten().tolist() == members[:2]


def test_label_caption_document_and_heatmap_of_known_scenes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    two = _scene(("circle", "red", 4.0, 10.0, 2.0), ("triangle", "blue", 11.0, 5.0, 3.5))
    one = _scene(("square", "green", 8.0, 8.0, 3.0))
    scenes = cycle([two, one])  # two samples per split: each split sees both in order
    monkeypatch.setattr(shapes_scenes, "sample_scene", lambda *a, **k: next(scenes))
    data = load_shapes_scenes("test", train=2, val=2, test=2, image_size=16)
    first, second = data[0], data[1]
    assert int(first["label"]) == SHAPES.index("triangle")  # the larger object
    assert int(second["label"]) == SHAPES.index("square")
    words = [VOCAB[i] for i in first["tokens"][1:-1].tolist()]
    assert words == ["red", "circle", "blue", "triangle"]  # left to right
    document = [VOCAB[i] for i in first["text_ids"].tolist()]
    # top to bottom
    assert document == ["a", "blue", "triangle", "above", "a", "red", "circle"]
    want = torch.from_numpy(coverage(two, 16)).float()
    torch.testing.assert_close(first["heatmap"], want, atol=1e-3, rtol=0)


def test_coverage_is_one_at_an_object_centre_and_zero_far_away() -> None:
    # pixel (row 8, column 8) has its centre at (8.5, 8.5)
    circle = _scene(("circle", "red", 8.5, 8.5, 3.0))
    cover = coverage(circle, 16)
    assert cover.shape == (16, 16) and cover.dtype == np.float32
    assert cover[8, 8] == 1.0
    assert cover[8, 11] == 0.5  # 3 pixels right: on the edge, half covered
    assert cover[0, 0] == 0.0 and cover[8, 15] == 0.0
    both = _scene(("circle", "red", 8.5, 8.5, 3.0), ("circle", "blue", 11.5, 8.5, 1.0))
    assert coverage(both, 16)[8, 11] == 1.0  # the largest coverage over objects


@pytest.mark.parametrize(
    "shape",
    [
        "circle",
        "square",
        "triangle",
        "diamond",
    ],
)
def test_coverage_is_float32_for_every_shape(shape: str) -> None:
    assert coverage(_scene((shape, "red", 8.0, 8.0, 3.0)), 16).dtype == np.float32
