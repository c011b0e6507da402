import numpy as np
import pytest
import torch

from polymodal.data.cache import read_manifest
from polymodal.data.synth.affordance_render import (
    CAMERA_Z,
    FAR,
    OBJECTS,
    SEEN,
    UNSEEN,
    Part,
    _ellipsoid_hits,
    affordances_of,
    part_heatmap,
    render_scene,
)
from polymodal.data.synth.affordance_rgbd import (
    OBJECT_NAMES,
    build_affordance_rgbd,
    load_affordance_rgbd,
)
from polymodal.errors import ConfigError

TINY = {"train": 6, "val": 3, "test": 4, "test_seen": 2, "size": 32}


def test_a_sphere_is_hit_at_its_front_with_outward_normals():
    # unit sphere at the origin; the ray through (0.6, 0) meets it at z = 0.8
    xy = np.array([[0.0, 0.0], [0.6, 0.0], [2.0, 0.0]])
    z, normals = _ellipsoid_hits(xy, np.zeros((1, 3)), np.eye(3)[None])
    np.testing.assert_allclose(z[0, :2], [1.0, 0.8])
    assert z[0, 2] == -np.inf
    np.testing.assert_allclose(normals[0, 1], [0.6, 0.0, 0.8])


def test_the_depth_buffer_keeps_the_nearest_surface(monkeypatch):
    # a small sphere in front of a large one: the centre pixel shows the small one's front
    objects = {
        "pair": (
            Part("back", "contain", (0, 0, -0.5), (0.8, 0.8, 0.8)),
            Part("front", "grasp", (0, 0, 0.5), (0.2, 0.2, 0.2)),
        )
    }
    monkeypatch.setattr("polymodal.data.synth.affordance_render.OBJECTS", objects)
    monkeypatch.setattr("polymodal.data.synth.affordance_render._rotation", lambda rng: np.eye(3))
    scene = render_scene("pair", "grasp", 33, np.random.default_rng(0), clutter=0)
    centre = scene.part[16, 16]
    assert centre == 1  # the front sphere
    # its front lies at z = (0.5 + 0.2) * scale, scale in [0.8, 1]; shifts only move x and y
    scale = (CAMERA_Z - scene.depth[0, 16, 16] * FAR) / 0.7
    assert 0.8 - 1e-5 <= scale <= 1.0 + 1e-5
    assert scene.depth[0, 0, 0] > scene.depth[0, 16, 16]  # the table lies behind


def test_heatmap_is_a_gaussian_over_the_visible_affording_part():
    scene = render_scene("mug", "grasp", 48, np.random.default_rng(1), clutter=0)
    heat = part_heatmap(scene, "mug", "grasp")
    assert heat.max() == pytest.approx(1.0)
    peak = np.unravel_index(heat.argmax(), heat.shape)
    handle = np.argwhere(scene.part == 1).mean(axis=0)
    assert np.abs(np.array(peak) - handle).max() <= 1.5
    assert heat[scene.part == 0].mean() < heat[scene.part == 1].mean()


def test_exocentric_views_add_a_hand_in_contact_with_the_part():
    rng_ego, rng_exo = np.random.default_rng(2), np.random.default_rng(2)
    ego = render_scene("knife", "cut", 48, rng_ego, clutter=0)
    exo = render_scene("knife", "cut", 48, rng_exo, exocentric=True, clutter=0)
    # same pose and colours; the hand hides object pixels and lies in front of them
    hidden = (ego.part >= 0) & (exo.part < 0)
    assert hidden.sum() > 0
    assert (exo.depth[0][hidden] < ego.depth[0][hidden]).all()


def test_every_affordance_of_an_unseen_object_is_taught_on_seen_ones():
    taught = {a for obj in SEEN for a in affordances_of(obj)}
    assert set(SEEN).isdisjoint(UNSEEN) and set(SEEN) | set(UNSEEN) == set(OBJECTS)
    for obj in UNSEEN:
        assert set(affordances_of(obj)) <= taught


def test_splits_hold_the_right_views_objects_and_targets(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))
    train = load_affordance_rgbd("train", **TINY)
    test = load_affordance_rgbd("test", **TINY)
    assert set(train[0]) == {"image", "depth", "exo_image", "exo_depth", "label", "object"}
    assert set(test[0]) == {"image", "depth", "heatmap", "label", "object"}
    assert {OBJECT_NAMES[i] for i in test.tensors["object"].tolist()} <= set(UNSEEN)
    assert {OBJECT_NAMES[i] for i in train.tensors["object"].tolist()} <= set(SEEN)
    assert (test.tensors["heatmap"].flatten(1).sum(1) > 0).all()
    objects = load_affordance_rgbd("train", label="object", **TINY)
    assert len(objects) == 2 * len(train)  # exocentric views are samples of their own
    torch.testing.assert_close(objects.tensors["label"][:6], train.tensors["object"])
    assert "heatmap" not in load_affordance_rgbd("test", label="object", **TINY)[0]


def test_builds_are_cached_with_a_manifest_and_deterministic(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))
    folder = build_affordance_rgbd(**TINY)
    manifest = read_manifest(folder)
    assert manifest is not None and manifest["sizes"]["train"] == 6
    assert build_affordance_rgbd(**TINY) == folder
    first = load_affordance_rgbd("val", **TINY).tensors["image"]
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path / "other"))
    torch.testing.assert_close(load_affordance_rgbd("val", **TINY).tensors["image"], first)


def test_bad_options_are_named():
    with pytest.raises(ConfigError, match="multiple of 8"):
        build_affordance_rgbd(size=30)
    with pytest.raises(ConfigError, match="label must be one of"):
        load_affordance_rgbd("train", label="colour", **TINY)
    with pytest.raises(ConfigError, match="splits"):
        load_affordance_rgbd("dev", **TINY)
