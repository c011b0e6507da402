"""Affordance-RGBD: rendered RGB-D scenes for weakly supervised affordance grounding.

Built like AGD20K from the z-buffer renderer of :mod:`.affordance_render`:

- ``train`` samples pair an **egocentric** view (``image`` (3, S, S), ``depth``
  (1, S, S): the object alone) with an **exocentric** view of the same object and
  affordance (``exo_image``, ``exo_depth``: a hand touches the part in use), and
  carry the image-level ``label`` (the affordance index in :data:`AFFORDANCES`)
  only — no map;
- ``val`` (seen objects, new renders) and ``test`` (the **unseen** objects
  :data:`UNSEEN`) are egocentric views with a ``heatmap`` (S, S): a Gaussian over
  the affording part, maximum 1; ``test_seen`` is like ``val`` (seen objects).

Every sample also names its ``object`` (index into :data:`OBJECTS` order). With
``label: object`` every view (exocentric ones too) is a sample labelled by its
object, for pre-training an RGB backbone by object recognition; ``test`` then
holds seen objects, as a classifier cannot name objects it never saw.

About 5,000 images build in seconds at S = 64; cached by options and code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

import polymodal.data.affordance_keys  # noqa: F401  (registers exo_image, exo_depth, object)
from polymodal.data.dataset import TensorDictDataset, build_splits
from polymodal.data.options import check_option_types
from polymodal.data.registry import register_dataset
from polymodal.data.synth.affordance_render import (
    AFFORDANCES,
    OBJECTS,
    SEEN,
    UNSEEN,
    affordances_of,
    part_heatmap,
    render_scene,
)
from polymodal.errors import ConfigError

VERSION = "1"
SPLITS = ("train", "val", "test", "test_seen")
LABELS = ("affordance", "object")
OBJECT_NAMES = tuple(OBJECTS)


@dataclass(frozen=True)
class AffordanceConfig:
    """Everything a build depends on (the cache key).

    Attributes:
        train: exocentric/egocentric training pairs.
        val, test, test_seen: egocentric evaluation views (``test``: unseen objects).
        size: image side S (a multiple of 8).
        shared_colour: probability that a part has the body's colour and texture.
        clutter: at most this many distractor blobs per scene.
    """

    seed: int = 0
    train: int = 2000
    val: int = 300
    test: int = 500
    test_seen: int = 300
    size: int = 64
    shared_colour: float = 0.75
    clutter: int = 1

    def count(self, split: str) -> int:
        return int(getattr(self, split))


def _draw(objects: tuple[str, ...], rng: np.random.Generator) -> tuple[str, str]:
    obj = objects[rng.integers(len(objects))]
    offered = affordances_of(obj)
    return obj, offered[rng.integers(len(offered))]


def _split(config: AffordanceConfig, split: str) -> dict[str, Tensor]:
    rng = np.random.default_rng([config.seed, SPLITS.index(split), 53])
    objects = UNSEEN if split == "test" else SEEN
    rows: dict[str, list[np.ndarray]] = {}
    for _ in range(config.count(split)):
        while True:  # redraw the rare pose that hides the affording part
            obj, affordance = _draw(objects, rng)
            ego = render_scene(
                obj, affordance, config.size, rng, False, config.shared_colour, config.clutter
            )
            heat = part_heatmap(ego, obj, affordance)
            if heat.any():
                break
        sample = {
            "image": ego.image,
            "depth": ego.depth,
            "label": np.array(AFFORDANCES.index(affordance), dtype=np.int64),
            "object": np.array(OBJECT_NAMES.index(obj), dtype=np.int64),
        }
        if split == "train":
            exo = render_scene(
                obj, affordance, config.size, rng, True, config.shared_colour, config.clutter
            )
            sample |= {"exo_image": exo.image, "exo_depth": exo.depth}
        else:
            sample["heatmap"] = heat
        for key, value in sample.items():
            rows.setdefault(key, []).append(value)
    out = {key: torch.from_numpy(np.stack(values)) for key, values in rows.items()}
    for key in ("image", "depth", "exo_image", "exo_depth", "heatmap"):
        if key in out:
            out[key] = out[key].to(torch.float16)
    return out


def build_affordance_rgbd(**options: Any) -> Path:
    """Build (or find in the cache) every split; returns the cache folder."""
    check_option_types(AffordanceConfig, options, "affordance_rgbd")
    config = AffordanceConfig(**options)
    if config.size < 16 or config.size % 8:
        raise ConfigError(
            f"affordance_rgbd size must be a multiple of 8 and >= 16, got {config.size}"
        )
    if min(config.count(s) for s in SPLITS) < 1:
        raise ConfigError("affordance_rgbd needs at least one sample per split")
    return build_splits(
        "affordance_rgbd",
        VERSION,
        config,
        lambda split: _split(config, split),
        SPLITS,
        code=(__name__, "polymodal.data.synth.affordance_render"),
    )


class AffordanceRGBD(TensorDictDataset):
    """One split (module doc); ``affordances`` and ``objects`` name the label indices."""

    affordances = AFFORDANCES
    objects = OBJECT_NAMES


def _object_views(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """Every view of a split as its own sample labelled by its object (exocentric
    views become extra samples), without maps."""
    views = {"image": [tensors["image"]], "depth": [tensors["depth"]]}
    if "exo_image" in tensors:
        views["image"].append(tensors["exo_image"])
        views["depth"].append(tensors["exo_depth"])
    repeats = len(views["image"])
    return {k: torch.cat(v) for k, v in views.items()} | {
        "label": tensors["object"].repeat(repeats),
        "object": tensors["object"].repeat(repeats),
    }


@register_dataset("affordance_rgbd")
def load_affordance_rgbd(split: str, label: str = "affordance", **options: Any) -> AffordanceRGBD:
    """The ``split`` of Affordance-RGBD built with ``options`` (:class:`AffordanceConfig`).

    Args:
        split: one of :data:`SPLITS`.
        label: ``"affordance"`` (default) or ``"object"`` (module doc).
    """
    if split not in SPLITS:
        raise ConfigError(f"affordance_rgbd has splits {SPLITS}, not {split!r}")
    if label not in LABELS:
        raise ConfigError(f"affordance_rgbd label must be one of {LABELS}, got {label!r}")
    folder = build_affordance_rgbd(**options)
    if label == "object" and split == "test":
        split = "test_seen"
    tensors = TensorDictDataset.load(folder / f"{split}.safetensors").tensors
    if label == "object":
        tensors = _object_views(tensors)
    dataset = AffordanceRGBD(tensors)
    if label == "object":
        dataset.num_classes = len(SEEN)  # type: ignore[attr-defined]
    return dataset
