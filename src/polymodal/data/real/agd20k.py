"""AGD20K-style affordance grounding folders: egocentric and exocentric images, GT maps, depth.

The layout of AGD20K (one of its ``Seen``/``Unseen`` folders)::

    ROOT/trainset/egocentric/<affordance>/<object>/<name>.jpg
    ROOT/trainset/exocentric/<affordance>/<object>/<name>.jpg
    ROOT/testset/egocentric/<affordance>/<object>/<name>.jpg
    ROOT/testset/GT/<affordance>/<object>/<name>.png        # 8-bit map per test image

Depth maps (e.g. from a monocular estimator, as BiT-Align uses) are optional: a
``depth/`` tree beside ``egocentric/`` (and ``exo_depth/`` beside ``exocentric/``)
holding ``<name>.png`` (16-bit or 8-bit, scaled to [0, 1]) or ``<name>.npy``
(float, any scale), the same size as its image.

Samples follow :mod:`polymodal.data.synth.affordance_rgbd`: ``train`` pairs each
egocentric image with an exocentric one of the same affordance (cycling through
them in name order) and carries the ``label`` only; ``val`` and ``test`` are
egocentric images with their ``heatmap``. AGD20K has no validation split: ``val``
is every ``val_every``-th test image in name order, and ``test`` is the rest, so
a checkpoint chosen on ``val`` has never seen a ``test`` image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

import polymodal.data.affordance_keys  # noqa: F401  (registers exo_image, exo_depth)
from polymodal.data.dataset import TensorDictDataset
from polymodal.data.registry import register_dataset
from polymodal.errors import ConfigError, DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
DEPTH_SUFFIXES = (".png", ".npy")
SPLITS = ("train", "val", "test")


def _images(folder: Path) -> list[tuple[str, str, Path]]:
    """``(affordance, object, path)`` of every image under ``folder/<aff>/<obj>/``, sorted."""
    if not folder.is_dir():
        raise DataError(
            f"AGD20K folder {folder} does not exist; expected <affordance>/<object>/ images"
        )
    found = [
        (path.parent.parent.name, path.parent.name, path)
        for path in sorted(folder.glob("*/*/*"))
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not found:
        raise DataError(
            f"no images under {folder}/<affordance>/<object>/ ({', '.join(IMAGE_SUFFIXES)})"
        )
    return found


def _read_image(path: Path, size: int) -> tuple[Tensor, tuple[int, int]]:
    """(3, size, size) RGB in [0, 1] and the file's (height, width)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            original = (image.height, image.width)
            rgb = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    except (OSError, UnidentifiedImageError) as error:
        raise DataError(f"{path} is not a readable image: {error}") from error
    return torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255).permute(2, 0, 1), original


def _resize(array: np.ndarray, size: int) -> Tensor:
    from PIL import Image

    resized = Image.fromarray(array.astype(np.float32), mode="F").resize(
        (size, size), Image.Resampling.BILINEAR
    )
    return torch.from_numpy(np.asarray(resized, dtype=np.float32).copy())


def read_map(path: Path, size: int, like: tuple[int, int]) -> Tensor:
    """(size, size) a depth map or GT heatmap file resized like its image.

    PNGs are scaled to [0, 1] by their bit depth; ``.npy`` arrays are read as they are.

    Raises:
        DataError: unreadable file, not 2D, another size than its image (``like``),
            or NaN/infinite values.
    """
    from PIL import Image, UnidentifiedImageError

    if path.suffix == ".npy":
        array = np.load(path, allow_pickle=False).astype(np.float32)
    else:
        try:
            with Image.open(path) as image:
                array = np.asarray(image, dtype=np.float32)
                array = array / (65535.0 if image.mode.startswith("I") else 255.0)
        except (OSError, UnidentifiedImageError) as error:
            raise DataError(f"{path} is not a readable map: {error}") from error
    if array.ndim == 3:  # an RGB-saved grey map
        array = array.mean(axis=-1)
    if array.ndim != 2 or array.shape != like:
        raise DataError(
            f"{path} has shape {array.shape}, but its image is {like}; "
            "save the map at the image's size"
        )
    if not np.isfinite(array).all():
        raise DataError(f"{path} holds NaN or infinite values; fill the missing pixels")
    return _resize(array, size)


def _beside(image: Path, images_dir: str, maps_dir: str, suffixes: tuple[str, ...]) -> Path | None:
    """The map of ``image`` in the ``maps_dir`` tree beside ``images_dir``, if any."""
    parts = list(image.parts)
    index = len(parts) - 1 - parts[::-1].index(images_dir)
    parts[index] = maps_dir
    stem = Path(*parts).with_suffix("")
    return next((stem.with_suffix(s) for s in suffixes if stem.with_suffix(s).is_file()), None)


def _view(
    path: Path, images_dir: str, depth_dir: str, size: int, depth: bool
) -> tuple[dict[str, Tensor], tuple[int, int]]:
    """``image`` (and ``depth``) of one file, and the file's (height, width)."""
    image, original = _read_image(path, size)
    view = {"image": image}
    if depth:
        depth_path = _beside(path, images_dir, depth_dir, DEPTH_SUFFIXES)
        if depth_path is None:
            raise DataError(
                f"no depth map for {path} in the {depth_dir}/ tree ({', '.join(DEPTH_SUFFIXES)}); "
                "add one or load with depth=False"
            )
        view["depth"] = read_map(depth_path, size, original)[None]
    return view, original


def load_agd20k_split(
    root: str | Path, split: str, size: int = 224, depth: bool = True, val_every: int = 5
) -> TensorDictDataset:
    """One split of an AGD20K-style folder (module doc).

    Args:
        root: the folder holding ``trainset/`` and ``testset/``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        size: images and maps are resized to (size, size).
        depth: read the depth trees too.
        val_every: every n-th test image (name order) is a validation image.

    Returns:
        A data set with ``affordances`` naming the label indices (sorted folder names
        of ``trainset/egocentric``).

    Raises:
        ConfigError: an unknown split or ``val_every`` < 2.
        DataError: a missing folder, image, GT map or depth map; a GT map that sums to
            zero; an unreadable or wrongly sized map; an affordance in ``testset`` that
            ``trainset`` lacks.
    """
    if split not in SPLITS:
        raise ConfigError(f"AGD20K splits are {SPLITS}, not {split!r}")
    if val_every < 2:
        raise ConfigError(
            f"val_every must be >= 2 (every n-th test image is validation), got {val_every}"
        )
    root = Path(root).expanduser()
    ego_train = _images(root / "trainset" / "egocentric")
    affordances = tuple(sorted({a for a, _, _ in ego_train}))
    rows: dict[str, list[Tensor]] = {}
    if split == "train":
        exo = _images(root / "trainset" / "exocentric")
        by_affordance = {a: [p for b, _, p in exo if b == a] for a in affordances}
        seen = dict.fromkeys(affordances, 0)
        for affordance, _, path in ego_train:
            partners = by_affordance[affordance]
            if not partners:
                raise DataError(
                    f"no exocentric images of {affordance!r} under {root / 'trainset/exocentric'}"
                )
            partner = partners[seen[affordance] % len(partners)]
            seen[affordance] += 1
            sample, _ = _view(path, "egocentric", "depth", size, depth)
            exo_view, _ = _view(partner, "exocentric", "exo_depth", size, depth)
            sample |= {f"exo_{k}": v for k, v in exo_view.items()}
            sample["label"] = torch.tensor(affordances.index(affordance))
            for key, value in sample.items():
                rows.setdefault(key, []).append(value)
    else:
        test = _images(root / "testset" / "egocentric")
        chosen = [
            t for i, t in enumerate(test) if (i % val_every == val_every - 1) == (split == "val")
        ]
        if not chosen:
            raise DataError(f"the {split} split of {root / 'testset'} is empty; lower val_every")
        for affordance, _, path in chosen:
            if affordance not in affordances:
                raise DataError(f"test affordance {affordance!r} ({path}) has no training images")
            sample, original = _view(path, "egocentric", "depth", size, depth)
            gt = _beside(path, "egocentric", "GT", (".png",))
            if gt is None:
                raise DataError(f"no ground-truth map for {path} in the GT/ tree (<name>.png)")
            heatmap = read_map(gt, size, original)
            if float(heatmap.sum()) <= 0:
                raise DataError(f"ground-truth map {gt} sums to 0; drop the image or fix its map")
            sample |= {"heatmap": heatmap, "label": torch.tensor(affordances.index(affordance))}
            for key, value in sample.items():
                rows.setdefault(key, []).append(value)
    dataset = TensorDictDataset({k: torch.stack(v) for k, v in rows.items()})
    dataset.affordances = affordances  # type: ignore[attr-defined]
    return dataset


@register_dataset("agd20k")
def load_agd20k(split: str, root: str | None = None, **options: Any) -> TensorDictDataset:
    """Registry entry ``agd20k``: ``data.options.root`` and :func:`load_agd20k_split` options."""
    if not root:
        raise ConfigError(
            "dataset 'agd20k' needs data.options.root (the folder with trainset/ and testset/)"
        )
    return load_agd20k_split(root, split, **options)
