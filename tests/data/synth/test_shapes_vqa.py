"""Shapes-VQA: scenes, rendering, questions, tokenizer and the cached build."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from polymodal.data.cache import read_manifest
from polymodal.data.synth.shapes_render import (
    COLORS,
    RGB,
    SHAPES,
    Scene,
    coverage,
    render,
    sample_scene,
)
from polymodal.data.synth.shapes_vqa import (
    ANSWERS,
    NUMBERS,
    QUESTION_TYPES,
    ShapesVQA,
    ask,
    build_shapes_vqa,
    build_tokenizer,
    encode,
    load_shapes_vqa,
)
from polymodal.errors import ConfigError, DataError

SMALL = {"train": 40, "val": 10, "test": 30}


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))
    return tmp_path


def scene(*objects: tuple[str, str, float, float]) -> Scene:
    """A plain-background scene from (shape, colour, x, y) with small objects."""
    rows = [(SHAPES.index(s), COLORS.index(c), 0, x, y, 5.0) for s, c, x, y in objects]
    return Scene(np.array(rows, dtype=np.float32), background=0)


def test_samples_follow_the_documented_layout(cache: Path) -> None:
    data = load_shapes_vqa("test", **SMALL)
    sample = data[3]
    assert sample["image"].shape == (3, 64, 64) and sample["image"].dtype == torch.float32
    assert float(sample["image"].min()) >= 0.0 and float(sample["image"].max()) <= 1.0
    assert sample["text_ids"].shape == (12,) and sample["text_ids"].dtype == torch.int64
    assert 0 <= int(sample["label"]) < len(ANSWERS)
    assert 0 <= int(sample["question_type"]) < len(QUESTION_TYPES)
    assert len(data) == 30 and int(sample["index"]) == 3


def test_the_build_is_deterministic_and_cached(cache: Path, tmp_path: Path) -> None:
    first = build_shapes_vqa(**SMALL)
    assert build_shapes_vqa(**SMALL) == first
    manifest = read_manifest(first)
    assert manifest is not None and manifest["sizes"] == SMALL
    other = read_manifest(build_shapes_vqa(**SMALL, seed=1))
    assert other is not None
    assert other["files"]["test.safetensors"] != manifest["files"]["test.safetensors"]


def test_answers_agree_with_the_stored_scenes(cache: Path) -> None:
    data = load_shapes_vqa("train", **SMALL)
    for i in range(len(data)):
        objects = data.scenes[i][data.scenes[i][:, 0] > 0]  # present rows
        shapes, colors = objects[:, 1].long().tolist(), objects[:, 2].long().tolist()
        words = data.question(i).split()
        answer = ANSWERS[int(data[i]["label"])]
        kind = QUESTION_TYPES[int(data[i]["question_type"])]
        if kind == "count":
            assert answer == NUMBERS[len(objects) - 1]
        elif kind == "color":
            shape = SHAPES.index(words[-2])
            assert shapes.count(shape) == 1
            assert answer == COLORS[colors[shapes.index(shape)]]
        elif kind == "shape":
            color = COLORS.index(words[-3])
            assert colors.count(color) == 1
            assert answer == SHAPES[shapes[colors.index(color)]]
        elif kind == "exist":
            pair = (COLORS.index(words[-3]), SHAPES.index(words[-2]))
            assert (pair in zip(colors, shapes, strict=True)) == (answer == "yes")


def test_a_lone_object_is_counted_and_never_compared() -> None:
    lone = scene(("circle", "red", 20.0, 30.0))
    seen = {ask(lone, np.random.default_rng(seed)) for seed in range(40)}
    kinds = {QUESTION_TYPES[q.kind] for q in seen}
    assert kinds == {"color", "shape", "count", "exist"}
    assert ("how many objects are there ?", "one") in {(q.text, q.answer) for q in seen}
    assert ("what color is the circle ?", "red") in {(q.text, q.answer) for q in seen}


def test_left_of_compares_x_positions_and_needs_a_gap() -> None:
    pair = scene(("square", "blue", 50.0, 10.0), ("triangle", "green", 12.0, 40.0))
    relations = {
        (q.text, q.answer)
        for q in (ask(pair, np.random.default_rng(seed)) for seed in range(60))
        if QUESTION_TYPES[q.kind] == "relation"
    }
    assert relations == {
        ("is the blue square left of the green triangle ?", "no"),
        ("is the green triangle left of the blue square ?", "yes"),
    }
    close = scene(("square", "blue", 30.0, 10.0), ("triangle", "green", 33.0, 40.0))
    kinds = {ask(close, np.random.default_rng(s)).kind for s in range(60)}
    assert QUESTION_TYPES.index("relation") not in kinds


def test_colour_questions_skip_shapes_that_repeat() -> None:
    twins = scene(("circle", "red", 10.0, 10.0), ("circle", "blue", 40.0, 40.0))
    for seed in range(40):
        question = ask(twins, np.random.default_rng(seed))
        assert question.text != "what color is the circle ?"


def test_render_draws_the_object_colour_inside_and_background_outside() -> None:
    red = scene(("square", "red", 32.0, 32.0))
    image = render(red, 64, np.random.default_rng(0)).astype(float)  # (3, 64, 64)
    centre, corner = image[:, 32, 32], image[:, 2, 2]
    assert np.abs(centre - RGB[COLORS.index("red")]).max() <= 15.5  # colour jitter ±15
    assert np.ptp(corner) <= 24  # a muted, low-saturation background
    # The square's half-side is 0.85 r = 4.25 px: the 8×8 pixels whose centres lie
    # within 3.5 px are fully covered, the ring of 36 at 4.5 px a quarter (anti-aliasing).
    contrast = np.abs(image - image[:, :1, :1]).sum(axis=0)  # (64, 64)
    full = contrast[32, 32]
    assert (contrast > 0.9 * full).sum() == 64
    assert (contrast > 0.1 * full).sum() == 100


def test_free_layout_keeps_objects_apart() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        drawn = sample_scene(rng, 64, 6, 6, layout="free")
        xs, ys, rs = drawn.column("x"), drawn.column("y"), drawn.column("radius")
        for a in range(len(drawn)):
            for b in range(a):
                gap = np.hypot(xs[a] - xs[b], ys[a] - ys[b])
                assert gap >= 1.2 * (rs[a] + rs[b]) + 2 - 1e-4


def test_grid_layout_gives_each_object_its_own_cells() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        drawn = sample_scene(rng, 64, 6, 6, layout="grid", grid=8)
        taken = np.zeros((8, 8), dtype=int)
        for _, _, big, x, y, radius in drawn.objects:
            span = 1 + int(big)  # a small object fills one 8-pixel cell, a large one 2x2
            left, top = (x - 4 * span) / 8, (y - 4 * span) / 8
            assert left == int(left) and top == int(top)  # centred on its cells
            assert 1.2 * radius <= 4 * span * 1.05  # the bounding circle stays inside
            taken[int(top) : int(top) + span, int(left) : int(left) + span] += 1
        assert len(drawn) == 6 and taken.max() == 1


def test_dense_layout_spreads_objects_over_several_patches_of_a_24_grid() -> None:
    rng = np.random.default_rng(4)
    for _ in range(30):
        drawn = sample_scene(rng, 96, 6, 6, layout="dense", grid=24)
        colors = set(drawn.column("color").astype(int).tolist())
        assert 1 <= len(colors) <= 3  # a palette of two or three colours
        for _, _, big, x, y, radius in drawn.objects:
            span = 16 * (1 + int(big))  # object cells are 4x4 patches of 4 pixels
            assert (x - span / 2) % 16 == 0 and (y - span / 2) % 16 == 0
            assert 2 * radius >= 3 * 4 * (1 + int(big))  # at least 3 patches across
    # Most of the 576 patches show no object at all: redundant tokens.
    covered = coverage(drawn, 96) > 0
    assert covered.mean() < 0.5
    with pytest.raises(ConfigError, match="multiple of 4"):
        sample_scene(rng, 96, layout="dense", grid=18)


def test_dense_counts_name_a_colour_and_count_only_it() -> None:
    scene_ = scene(
        ("circle", "red", 8.0, 8.0), ("square", "red", 40.0, 8.0), ("circle", "blue", 8.0, 40.0)
    )
    counts = {
        (q.text, q.answer)
        for q in (ask(scene_, np.random.default_rng(seed), 64, by_color=True) for seed in range(60))
        if QUESTION_TYPES[q.kind] == "count"
    }
    assert counts == {
        ("how many red objects are there ?", "two"),
        ("how many blue objects are there ?", "one"),
    }


def test_dense_build_asks_colour_counts(cache: Path) -> None:
    data = load_shapes_vqa("val", train=8, val=40, test=4, image_size=96, layout="dense", grid=24)
    assert data[0]["image"].shape == (3, 96, 96)
    counts = [data.question(i) for i in range(len(data)) if data.question(i).startswith("how")]
    assert counts and all(q.split()[2] in COLORS for q in counts)
    with pytest.raises(ConfigError, match="grid=24 for 4-pixel patches"):
        build_shapes_vqa(image_size=96, layout="dense", grid=20)


def test_tokenizer_has_fixed_special_ids_and_rejects_unknown_words() -> None:
    tokenizer = build_tokenizer()
    specials = ("<pad>", "<bos>", "<eos>", "<image>")
    assert [tokenizer.token_to_id(t) for t in specials] == [0, 2, 3, 4]
    ids = encode(tokenizer, ["what color is the circle ?"])
    assert ids.shape == (1, 12) and ids[0, 6:].tolist() == [0] * 6
    with pytest.raises(DataError, match="outside the Shapes-VQA vocabulary"):
        encode(tokenizer, ["what colour is the circle ?"])


def test_bad_options_name_the_problem(cache: Path) -> None:
    with pytest.raises(ConfigError, match="valid options"):
        build_shapes_vqa(objects=3)
    with pytest.raises(ConfigError, match="max_objects"):
        build_shapes_vqa(max_objects=7)
    with pytest.raises(ConfigError, match="splits"):
        load_shapes_vqa("dev", **SMALL)
    assert isinstance(load_shapes_vqa("val", **SMALL), ShapesVQA)
