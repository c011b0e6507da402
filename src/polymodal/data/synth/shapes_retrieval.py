"""Shapes-Retrieval: image+text queries that find image+text documents.

A **document** is a scene of three or four coloured shapes (the Shapes renderer,
``grid`` layout) with a partial description — its background and one relation
between two of its objects ("striped background ; a blue square is left of a red
circle"). A **query** is a crop of one object of the target scene, drawn alone on a
fresh background, with a question about that object's place ("this object is left
of a blue square and above a green diamond"). The crop says *which object* (colour,
shape, size: low-level cues); the text says *where it is* (relations: high-level
cues); neither identifies the target alone, both together do — every query is
checked to match exactly one document of its collection.

A share of documents carries only the image or only a text (then a full
description: the objects left to right and top to bottom); a share of queries only
the text (then naming the object too) or only an image (the whole target scene,
re-rendered with another background and colour jitter).

**Hard negatives.** Documents come in twins, ``2k`` and ``2k + 1``: the twin is the
same scene with one attribute changed (one object's colour or shape, or two objects
swapped). A query's ``hard_negative`` is its target's twin.

Per split, two tensor files (sizes ``documents`` and ``queries``):

- documents: ``image`` (D, 3, S, S), ``text_ids`` (D, L) word ids (0 pads; decode
  with :func:`decode`), ``image_mask``/``text_ids_mask`` (D,) bool, ``scene``
  (D, 4, 7) object table (present, shape, colour, size, x, y, radius);
- queries: ``image``, ``text_ids``, masks as above, ``target`` and ``hard_negative``
  (Q,) document rows, ``kind`` (Q,) 0 both, 1 text only, 2 image only.

Building 20,000 documents with their queries takes well under a minute; builds are
cached by their options and code.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from polymodal.data.cache import cached_build
from polymodal.data.dataset import padded_rows
from polymodal.data.options import check_option_types
from polymodal.data.synth.shapes_render import (
    BACKGROUNDS,
    COLORS,
    FIELDS,
    SHAPES,
    SIZES,
    Scene,
    render,
    sample_scene,
)
from polymodal.errors import ConfigError

VERSION = "1"
SPLITS = ("train", "val", "test")
PARTS = ("documents", "queries")
KINDS = ("both", "text", "image")
MAX_OBJECTS = 4
GRID = 4
"""Cells per side: a small object fills one cell, a large one a 2×2 block."""

WORDS = (
    "<pad>",
    *COLORS,
    *SHAPES,
    *SIZES,
    *BACKGROUNDS,
    "a",
    "is",
    "left",
    "right",
    "of",
    "above",
    "below",
    "and",
    "this",
    "object",
    "background",
    ";",
    ",",
    "to",
    "top",
    "bottom",
)
"""Word vocabulary of the texts; id 0 pads."""

_HORIZONTAL = ("left", "right")
_VERTICAL = ("above", "below")


@dataclass(frozen=True)
class ShapesRetrievalConfig:
    """Everything a build depends on (the cache key).

    Args:
        seed: seed of every draw.
        train, val, test: documents per split (even: twins come in pairs); each split
            has half as many queries.
        image_size: image side, a multiple of 4 (the grid).
        image_only_documents, text_only_documents: shares of documents without text,
            without image.
        text_only_queries, image_only_queries: shares of queries of those kinds.
    """

    seed: int = 0
    train: int = 6000
    val: int = 1000
    test: int = 2000
    image_size: int = 48
    image_only_documents: float = 0.15
    text_only_documents: float = 0.1
    text_only_queries: float = 0.15
    image_only_queries: float = 0.1

    def size(self, split: str) -> int:
        return int(getattr(self, split))


def encode(text: str) -> list[int]:
    """Word ids of a text made of :data:`WORDS`."""
    return [WORDS.index(w) for w in text.split()]


def decode(ids: Tensor) -> str:
    """The text of a (L,) row of word ids (padding dropped)."""
    return " ".join(WORDS[int(i)] for i in ids if int(i) != 0)


def _name(row: np.ndarray, size: bool = False) -> str:
    """'red circle' (or 'small red circle') of an object table row."""
    words = [COLORS[int(row[1])], SHAPES[int(row[0])]]
    return " ".join([SIZES[int(row[2])], *words] if size else words)


def _relation(a: np.ndarray, b: np.ndarray, axis: str) -> str | None:
    """'left'/'right' (or 'above'/'below') of object a relative to b; None when level."""
    column = FIELDS.index("x" if axis == "x" else "y")
    gap = float(a[column] - b[column])
    if abs(gap) < 1.0:  # same column (row) of the grid
        return None
    words = _HORIZONTAL if axis == "x" else _VERTICAL
    return words[0] if gap < 0 else words[1]


def _twin(scene: Scene, touched: list[int], rng: np.random.Generator) -> Scene:
    """The scene with one attribute of one ``touched`` object changed: its colour or
    shape, or (for two objects of one size) their places swapped, which flips their
    relations."""
    objects = scene.objects.copy()
    k = touched[int(rng.integers(len(touched)))]
    others = [
        j
        for j in touched
        if objects[j, 2] == objects[k, 2] and tuple(objects[j, :2]) != tuple(objects[k, :2])
    ]
    change = int(rng.integers(3 if others else 2))
    if change < 2:  # 0 shape, 1 colour: any other value
        levels = len(SHAPES) if change == 0 else len(COLORS)
        objects[k, change] = (objects[k, change] + rng.integers(1, levels)) % levels
    else:  # swap what two equally large objects are, keeping the places
        j = others[int(rng.integers(len(others)))]
        objects[[k, j], :2] = objects[[j, k], :2]
    return Scene(objects, scene.background)


def _facts(scenes: list[Scene]) -> dict[tuple[str, str, str], set[tuple[int, int]]]:
    """``(object, relation, other) -> {(document, object row)}`` over a collection,
    objects named with their size."""
    facts: dict[tuple[str, str, str], set[tuple[int, int]]] = defaultdict(set)
    for d, scene in enumerate(scenes):
        rows = scene.objects
        for i, a in enumerate(rows):
            for j, b in enumerate(rows):
                if i == j:
                    continue
                for axis in "xy":
                    relation = _relation(a, b, axis)
                    if relation is not None:
                        facts[(_name(a, True), relation, _name(b, True))].add((d, i))
    return facts


Fact = tuple[str, str, str]  # (object, relation, other object)


def _question(scene: Scene, rng: np.random.Generator) -> tuple[list[int], Fact, Fact] | None:
    """An object and its relations to two others, one horizontal and one vertical: the
    rows of the three objects (asked-about object first) and the two facts."""
    rows = scene.objects
    for k in rng.permutation(len(rows)):
        a = rows[k]
        others = [j for j in range(len(rows)) if j != k]
        across = [(j, r) for j in others if (r := _relation(a, rows[j], "x"))]
        down = [(j, r) for j in others if (r := _relation(a, rows[j], "y"))]
        pairs = [(x, y) for x in across for y in down if x[0] != y[0]]  # three objects
        if pairs:
            (jx, rx), (jy, ry) = pairs[int(rng.integers(len(pairs)))]
            name = _name(a, True)
            facts = (name, rx, _name(rows[jx], True)), (name, ry, _name(rows[jy], True))
            return [int(k), jx, jy], *facts
    return None


def _phrase(fact: Fact) -> str:
    _, relation, other = fact
    return f"{relation} of a {other}" if relation in _HORIZONTAL else f"{relation} a {other}"


def _document_text(scene: Scene, rng: np.random.Generator, full: bool) -> str:
    """Partial: the background and one relation; full: every object in both orders."""
    rows = scene.objects
    if full:
        order = [np.argsort(rows[:, FIELDS.index(c)], kind="stable") for c in "xy"]
        by_x, by_y = (" ".join(_name(rows[i], True) for i in o) for o in order)
        return f"left to right {by_x} ; top to bottom {by_y}"
    background = f"{BACKGROUNDS[scene.background]} background"
    pairs = [(i, j) for i in range(len(rows)) for j in range(len(rows)) if i != j]
    for p in rng.permutation(len(pairs)):
        i, j = pairs[p]
        axis = "xy"[int(rng.integers(2))]
        relation = _relation(rows[i], rows[j], axis)
        if relation is not None:
            fact = (_name(rows[i]), relation, _name(rows[j], True))
            return f"{background} ; a {fact[0]} is {_phrase(fact)}"
    return background


def _crop(row: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """(3, S, S) uint8: the object alone, centred, on a fresh background."""
    alone = row.copy()
    cell = size / GRID  # keep the grid: a small object fills one cell, a large one 2×2
    alone[3] = alone[4] = size / 2 if alone[2] else size / 2 - cell / 2
    return render(Scene(alone[None], int(rng.integers(len(BACKGROUNDS)))), size, rng)


def _table(scene: Scene) -> np.ndarray:
    """(MAX_OBJECTS, 7) float32: present flag then the FIELDS of each object."""
    out = np.zeros((MAX_OBJECTS, 1 + len(FIELDS)), dtype=np.float32)
    out[: len(scene), 0] = 1
    out[: len(scene), 1:] = scene.objects
    return out


def _modalities(rng: np.random.Generator, n: int, no_text: float, no_image: float) -> np.ndarray:
    """(n,) kind per row: 0 both, 1 text only, 2 image only."""
    u = rng.random(n)
    return np.where(u < no_image, 1, np.where(u < no_image + no_text, 2, 0))


def _build(config: ShapesRetrievalConfig, split: str) -> dict[str, dict[str, Tensor]]:
    rng = np.random.default_rng([config.seed, SPLITS.index(split)])
    n, size = config.size(split), config.image_size
    # Twins: each base scene gets a question, and its twin changes an object it names.
    scenes: list[Scene] = []
    questions: list[tuple[list[int], Fact, Fact]] = []
    while len(scenes) < n:
        base = sample_scene(rng, size, 3, MAX_OBJECTS, textured=0.6, layout="grid", grid=GRID)
        asked = _question(base, rng) if len(base) >= 3 else None
        if asked is not None:
            scenes += [base, _twin(base, asked[0], rng)]
            questions.append(asked)
    doc_kind = _modalities(rng, n, config.image_only_documents, config.text_only_documents)
    facts = _facts(scenes)
    docs: dict[str, list[Any]] = {"image": [], "text": [], "scene": []}
    for d, scene in enumerate(scenes):
        docs["image"].append(render(scene, size, rng))
        docs["text"].append(_document_text(scene, rng, full=doc_kind[d] == 1))
        docs["scene"].append(_table(scene))
    queries: dict[str, list[Any]] = {"image": [], "text": [], "target": [], "kind": []}
    query_kind = _modalities(rng, n // 2, config.text_only_queries, config.image_only_queries)
    for pair, (objects, across, down) in enumerate(questions):
        d, kind = 2 * pair, int(query_kind[pair])
        if {doc for doc, _ in facts[across] & facts[down]} != {d}:
            continue  # another document matches too: not a well-posed query
        if kind == 2:  # the whole scene again, another background and jitter
            again = Scene(scenes[d].objects, int(rng.integers(len(BACKGROUNDS))))
            image, text = render(again, size, rng), ""
        else:
            subject = "this object" if kind == 0 else f"a {across[0]}"
            text = f"{subject} is {_phrase(across)} and {_phrase(down)}"
            image = _crop(scenes[d].objects[objects[0]], size, rng)
        queries["image"].append(image)
        queries["text"].append(text)
        queries["target"].append(d)
        queries["kind"].append(kind)
    if not queries["target"]:
        raise ConfigError(f"shapes_retrieval could pose no unique query on {split}; add documents")
    target = np.array(queries["target"])
    q_kind = np.array(queries["kind"])
    return {
        "documents": _tensors(docs["image"], docs["text"], doc_kind != 1, doc_kind != 2)
        | {"scene": torch.from_numpy(np.stack(docs["scene"]))},
        "queries": _tensors(queries["image"], queries["text"], q_kind != 1, q_kind != 2)
        | {
            "target": torch.from_numpy(target),
            "hard_negative": torch.from_numpy(target + 1),  # the twin of base 2k is 2k + 1
            "kind": torch.from_numpy(q_kind),
        },
    }


def _tensors(
    images: list[np.ndarray], texts: list[str], has_image: np.ndarray, has_text: np.ndarray
) -> dict[str, Tensor]:
    """Images (zeroed where absent), padded word ids (one pad where absent) and masks."""
    image = torch.from_numpy(np.stack(images)).to(torch.float16) / 255
    image[torch.from_numpy(~has_image)] = 0
    ids = [encode(t) if keep else [] for t, keep in zip(texts, has_text, strict=True)]
    return {
        "image": image,
        "text_ids": padded_rows([row or [0] for row in ids], 0),
        "image_mask": torch.from_numpy(has_image.copy()),
        "text_ids_mask": torch.from_numpy(has_text.copy()),
    }


def build_shapes_retrieval(**options: Any) -> Path:
    """Build (or find in the cache) every split; returns the cache folder holding
    ``<split>_documents.safetensors`` and ``<split>_queries.safetensors``."""
    check_option_types(ShapesRetrievalConfig, options, "shapes_retrieval")
    unknown = sorted(set(options) - {f.name for f in fields(ShapesRetrievalConfig)})
    if unknown:
        known = list(asdict(ShapesRetrievalConfig()))
        raise ConfigError(f"shapes_retrieval has no options {unknown}; it has {known}")
    config = ShapesRetrievalConfig(**options)
    if config.image_size % GRID or config.image_size < 32:
        raise ConfigError(
            f"shapes_retrieval needs image_size a multiple of {GRID} and >= 32, "
            f"got {config.image_size}"
        )
    sizes = [config.size(s) for s in SPLITS]
    if min(sizes) < 4 or any(s % 2 for s in sizes):
        raise ConfigError(f"shapes_retrieval needs an even number >= 4 of documents, got {sizes}")

    def build(folder: Path) -> dict[str, Any]:
        sizes = {}
        for split in SPLITS:
            for part, tensors in _build(config, split).items():
                save_file(
                    {k: v.contiguous() for k, v in tensors.items()}, folder / _file(split, part)
                )
                sizes[f"{split}_{part}"] = len(tensors["image"])
        return {"sizes": sizes}

    return cached_build("shapes_retrieval", VERSION, asdict(config), build, code=(__name__,))


def _file(split: str, part: str) -> str:
    return f"{split}_{part}.safetensors"


@dataclass(frozen=True)
class RetrievalSplit:
    """One split: its document collection and its queries (tensor dicts, see module doc)."""

    documents: dict[str, Tensor]
    queries: dict[str, Tensor]

    def texts(self, part: str) -> list[str]:
        """The decoded texts of ``part`` (``""`` where a row has none)."""
        rows = getattr(self, part)
        return [
            decode(ids) if has else ""
            for ids, has in zip(rows["text_ids"], rows["text_ids_mask"], strict=True)
        ]


def load_shapes_retrieval(split: str, **options: Any) -> RetrievalSplit:
    """The ``split`` of Shapes-Retrieval built with ``options`` (:class:`ShapesRetrievalConfig`)."""
    if split not in SPLITS:
        raise ConfigError(f"Shapes-Retrieval has splits {SPLITS}, not {split!r}")
    folder = build_shapes_retrieval(**options)
    parts = {p: load_file(folder / _file(split, p)) for p in PARTS}
    return RetrievalSplit(**parts)
