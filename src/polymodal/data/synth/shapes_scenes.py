"""Shapes-Scenes: small scenes of coloured shapes with a target for every task kind.

Each sample is a picture of one to three objects (the Shapes renderer, free layout)
and carries:

- ``image`` (3, S, S) float in [0, 1];
- ``label`` (): the shape of the largest object (classification, semi-supervised);
- ``heatmap`` (S, S): the objects' pixel coverage in [0, 1] (dense prediction);
- ``tokens`` (L,): the caption ``<bos> colour shape ... <eos>``, objects left to
  right (sequence generation; padded by collate);
- ``text_ids`` (L,): the same objects named in another order (top to bottom) and
  other words, as a document to retrieve from the image (contrastive retrieval);
- ``label_mask`` (): True for the first ``labelled_per_class`` training samples of
  each class when that option is set (semi-supervised), else absent.

It is the generated data the task tests and ``--quick`` recipes train on: small,
fast to build (about a second per 1,000 samples), cached by its options and code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from polymodal.data.dataset import TensorDictDataset, build_splits, padded_rows
from polymodal.data.options import check_option_types
from polymodal.data.registry import register_dataset
from polymodal.data.synth.shapes_render import COLORS, SHAPES, coverage, render, sample_scene
from polymodal.errors import ConfigError

VERSION = "1"
SPLITS = ("train", "val", "test")
SPECIALS = ("<pad>", "<bos>", "<eos>")
VOCAB = (*SPECIALS, *COLORS, *SHAPES, "and", "above", "a")
"""Caption vocabulary: id 0 pads the text, 1 and 2 start and end a caption."""
BOS, EOS = 1, 2


@dataclass(frozen=True)
class ShapesScenesConfig:
    """Everything a build depends on (the cache key)."""

    seed: int = 0
    train: int = 2000
    val: int = 400
    test: int = 400
    image_size: int = 32
    max_objects: int = 3
    labelled_per_class: int | None = None

    def size(self, split: str) -> int:
        return int(getattr(self, split))


def _ids(words: list[str]) -> list[int]:
    return [VOCAB.index(w) for w in words]


def _split(config: ShapesScenesConfig, split: str) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng([config.seed, SPLITS.index(split)])
    n, size = config.size(split), config.image_size
    images = np.zeros((n, 3, size, size), dtype=np.uint8)
    heatmaps = np.zeros((n, size, size), dtype=np.float32)
    labels = np.zeros(n, dtype=np.int64)
    captions, documents = [], []
    for i in range(n):
        scene = sample_scene(rng, size, 1, config.max_objects, textured=0.3, layout="free")
        images[i] = render(scene, size, rng)
        heatmaps[i] = coverage(scene, size)
        table = scene.objects
        labels[i] = int(table[int(np.argmax(table[:, 5])), 0])  # the largest object's shape
        named = [(COLORS[int(o[1])], SHAPES[int(o[0])]) for o in table]
        by_x = [named[j] for j in np.argsort(table[:, 3], kind="stable")]
        by_y = [named[j] for j in np.argsort(table[:, 4], kind="stable")]
        captions.append([BOS, *_ids([w for pair in by_x for w in pair]), EOS])
        words = " above ".join(f"a {c} {s}" for c, s in by_y).split()
        documents.append(_ids(words))
    tensors = {
        "image": torch.from_numpy(images).to(torch.float16) / 255,
        "label": torch.from_numpy(labels),
        "heatmap": torch.from_numpy(heatmaps).to(torch.float16),
        "tokens": padded_rows(captions, -100),
        "text_ids": padded_rows(documents, 0),
    }
    if config.labelled_per_class is not None and split == "train":
        mask = torch.zeros(n, dtype=torch.bool)
        for c in range(len(SHAPES)):
            mask[torch.nonzero(tensors["label"] == c).flatten()[: config.labelled_per_class]] = True
        tensors["label_mask"] = mask
    return tensors


def build_shapes_scenes(**options: Any) -> Path:
    """Build (or find in the cache) every split; returns the cache folder."""
    check_option_types(ShapesScenesConfig, options, "shapes_scenes")
    config = ShapesScenesConfig(**options)
    if config.image_size < 16 or min(config.train, config.val, config.test) < 1:
        raise ConfigError("shapes_scenes needs image_size >= 16 and at least one sample per split")

    make = lambda split: _split(config, split)  # noqa: E731
    return build_splits("shapes_scenes", VERSION, config, make, SPLITS, code=(__name__,))


class ShapesScenes(TensorDictDataset):
    """One split; ``vocab``, ``bos`` and ``eos`` size and drive a caption decoder."""

    num_classes = len(SHAPES)
    vocab = VOCAB
    bos, eos = BOS, EOS
    padded = {"tokens": -100, "text_ids": 0}


@register_dataset("shapes_scenes")
def load_shapes_scenes(split: str, **options: Any) -> ShapesScenes:
    """The ``split`` of Shapes-Scenes built with ``options`` (see :class:`ShapesScenesConfig`)."""
    if split not in SPLITS:
        raise ConfigError(f"Shapes-Scenes has splits {SPLITS}, not {split!r}")
    folder = build_shapes_scenes(**options)
    return ShapesScenes(TensorDictDataset.load(folder / f"{split}.safetensors").tensors)
