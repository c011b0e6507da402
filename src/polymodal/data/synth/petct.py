"""PET/CT phantoms: paired torso volumes with tracer-dependent uptake, lesions and reports.

Each case is a torso from the salivary glands to the bladder on a (D, H, W) grid
(D cranio-caudal, H anterior→posterior, W right→left; default 32³ at
(18.75, 12.5, 12.5) mm: 600 × 400 × 400 mm). Organs are ellipsoids and cylinders
with per-case size, position and intensity jitter:

- **CT** in Hounsfield units: air −1000, body soft tissue 40, lungs −850, heart 45,
  liver 60, kidneys 35, bladder 10, salivary glands 30, spine 700; noise σ 12 HU
  after a partial-volume blur (σ 0.6 voxel).
- **PET** in SUV, by tracer. FDG-like: brain-like cap at the top 6, heart 4,
  liver 2.2, kidneys 3, bladder 15, salivary 1.5, background 0.8. PSMA-like:
  salivary 10, kidneys 14, liver 4.5, bladder 8, heart 1, background 0.4. The
  scanner's resolution blurs it (σ 1.0 or 1.4 voxel, by scanner) and a
  multiplicative noise depends on the injected dose.
- **Lesions**: 1–3 spheres in liver, lungs or soft tissue, radius 15–32.5 mm ×
  ``lesion_scale`` (1.2–2.6 voxels on a 32³ grid at scale 1).
  A *hot* lesion takes up 2.5–6× its organ; a *cold* one barely (1.1–1.6×).
  Half the lesions show in CT (±40–80 HU), half are PET-only; a *calcified*
  lesion is CT-bright (+350 HU). The lesion mask is every lesion's sphere.
- **Label** (case-level, ``label``): 1 = *malignant-like*, a hot lesion without
  calcification; 0 = *benign-like*, every lesion cold or calcified. Neither
  modality decides it alone: PET shows which lesions are hot, CT which are
  calcified.
- **Metadata text** per case: tracer, dose, scanner and age band, e.g.
  ``"FDG PET/CT, 310 MBq, scanner B, age 60-69"``, UTF-8 bytes as ``text_ids``.

Samples carry ``ct`` and ``pet`` normalised for a network (CT: HU / 1000 clipped
to [−1, 1]; PET: SUV / 10 clipped to [0, 3]; :func:`to_units` undoes it), their
``ct_spacing``/``pet_spacing`` in mm, ``heatmap`` the lesion mask, ``label``,
and ``text_ids``. Splits share no case. About 1,000
cases of 32³ build in under a minute, cached by their options and this code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from torch import Tensor

from polymodal.data.dataset import TensorDictDataset, build_splits, padded_rows
from polymodal.data.options import check_option_types
from polymodal.data.registry import register_dataset
from polymodal.errors import ConfigError

VERSION = "1"
SPLITS = ("train", "val", "test")
TRACERS = ("FDG", "PSMA")
SCANNERS = ("A", "B")
AGE_BANDS = ("40-49", "50-59", "60-69", "70-79")
CT_SCALE, PET_SCALE = 1000.0, 10.0
"""Network inputs are HU / CT_SCALE and SUV / PET_SCALE."""

# Per organ: CT HU, then SUV under FDG and under PSMA.
ORGANS: dict[str, tuple[float, float, float]] = {
    "body": (40.0, 0.8, 0.4),
    "lungs": (-850.0, 0.5, 0.2),
    "heart": (45.0, 4.0, 1.0),
    "liver": (60.0, 2.2, 4.5),
    "kidneys": (35.0, 3.0, 14.0),
    "bladder": (10.0, 15.0, 8.0),
    "salivary": (30.0, 1.5, 10.0),
    "spine": (700.0, 1.0, 0.6),
    "brain": (35.0, 6.0, 0.5),
}
LESION_SITES = ("liver", "lungs", "body")
LESION_RADIUS_MM = (15.0, 32.5)
"""Lesion radii (in-plane mm) before ``lesion_scale``."""
FIELD_MM = (600.0, 400.0, 400.0)
"""The field of view (D, H, W) in mm, whatever the grid size."""
SALIVARY_LEFT, SALIVARY_RADII = (0.08, 0.45, 0.36), (0.05, 0.07, 0.06)
"""Centre (z, y, x in [0, 1]) of one salivary gland and the radii of both."""


@dataclass(frozen=True)
class PetCtConfig:
    """Everything a build depends on (the cache key)."""

    seed: int = 0
    train: int = 800
    val: int = 100
    test: int = 200
    size: int = 32
    max_lesions: int = 3
    lesion_scale: float = 1.0

    def count(self, split: str) -> int:
        return int(getattr(self, split))

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size (D, H, W) in mm: a 600 × 400 × 400 mm field of view."""
        return tuple(mm / self.size for mm in FIELD_MM)  # type: ignore[return-value]


def to_units(ct: Tensor, pet: Tensor) -> tuple[Tensor, Tensor]:
    """Network-scaled volumes back to Hounsfield units and SUV."""
    return ct * CT_SCALE, pet * PET_SCALE


def unit_grid(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(z, y, x) voxel-centre coordinates in [0, 1]: z head→feet, y front→back, x right→left."""
    axis = (np.arange(size, dtype=np.float32) + 0.5) / size
    return np.meshgrid(axis, axis, axis, indexing="ij")  # type: ignore[return-value]


def ellipsoid(grid, centre, radii) -> np.ndarray:
    z, y, x = grid
    return ((z - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2 + (
        (x - centre[2]) / radii[2]
    ) ** 2 <= 1.0


def _anatomy(grid, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Boolean organ masks of one case, later organs drawn over earlier ones."""
    j = lambda scale=0.03: float(rng.normal(0.0, scale))  # noqa: E731  (position jitter)
    s = lambda: float(rng.uniform(0.9, 1.1))  # noqa: E731  (size jitter)
    z, y, x = grid
    body = (((y - 0.5 + j(0.01)) / (0.30 * s())) ** 2 + ((x - 0.5) / (0.42 * s())) ** 2) <= 1.0
    masks = {"body": body}
    masks["lungs"] = ellipsoid(grid, (0.28 + j(), 0.48, 0.30 + j()), (0.17 * s(), 0.2, 0.11)) | (
        ellipsoid(grid, (0.28 + j(), 0.48, 0.70 + j()), (0.17 * s(), 0.2, 0.11))
    )
    masks["heart"] = ellipsoid(grid, (0.33 + j(), 0.38, 0.56 + j()), (0.08 * s(), 0.1, 0.09))
    masks["liver"] = ellipsoid(grid, (0.50 + j(), 0.48, 0.33 + j()), (0.09 * s(), 0.18, 0.16))
    masks["kidneys"] = ellipsoid(grid, (0.62 + j(), 0.62, 0.30), (0.06, 0.06, 0.05)) | (
        ellipsoid(grid, (0.62 + j(), 0.62, 0.70), (0.06, 0.06, 0.05))
    )
    masks["bladder"] = ellipsoid(grid, (0.92 + j(0.01), 0.40, 0.5), (0.05 * s(), 0.07, 0.08))
    masks["salivary"] = ellipsoid(grid, SALIVARY_LEFT, SALIVARY_RADII) | ellipsoid(
        grid, (SALIVARY_LEFT[0], SALIVARY_LEFT[1], 1 - SALIVARY_LEFT[2]), SALIVARY_RADII
    )
    masks["brain"] = body & (z < 0.025)
    masks["spine"] = (((y - 0.72) / 0.05) ** 2 + ((x - 0.5) / 0.05) ** 2) <= 1.0
    return {name: mask & body for name, mask in masks.items()}


@dataclass(frozen=True)
class Lesion:
    centre: tuple[float, float, float]  # voxels (d, h, w)
    radius: float  # voxels
    hot: bool
    ct_visible: bool
    calcified: bool


def _lesions(
    masks: dict[str, np.ndarray],
    size: int,
    count: int,
    rng: np.random.Generator,
    scale: float = 1.0,
) -> list[Lesion]:
    out = []
    for _ in range(count):
        site = LESION_SITES[int(rng.integers(len(LESION_SITES)))]
        inside = np.argwhere(masks[site] & ~masks["spine"])
        if len(inside) == 0:
            continue
        centre = inside[int(rng.integers(len(inside)))] + 0.5
        hot = bool(rng.random() < 0.5)
        calcified = bool(rng.random() < 0.3)
        out.append(
            Lesion(
                tuple(float(c) for c in centre),  # type: ignore[arg-type]
                float(rng.uniform(*LESION_RADIUS_MM)) * scale * size / FIELD_MM[1],
                hot,
                ct_visible=calcified or bool(rng.random() < 0.5),
                calcified=calcified,
            )
        )
    return out


def malignant_like(lesions: list[Lesion]) -> bool:
    """The case label: some lesion is hot and not calcified."""
    return any(lesion.hot and not lesion.calcified for lesion in lesions)


def draw_case(config: PetCtConfig, rng: np.random.Generator) -> dict[str, Any]:
    """One case: CT (HU), PET (SUV), lesion mask, label, tracer and metadata text."""
    size = config.size
    grid = unit_grid(size)
    masks = _anatomy(grid, rng)
    tracer = int(rng.integers(len(TRACERS)))
    ct = np.full((size, size, size), -1000.0, dtype=np.float32)
    pet = np.zeros((size, size, size), dtype=np.float32)
    for name, mask in masks.items():
        hu, fdg, psma = ORGANS[name]
        ct[mask] = hu + rng.normal(0, 5)
        pet[mask] = (fdg, psma)[tracer] * float(rng.uniform(0.8, 1.2))
    count = int(rng.integers(1, config.max_lesions + 1))
    lesions = _lesions(masks, size, count, rng, config.lesion_scale)
    voxels = np.stack(np.meshgrid(*(np.arange(size) + 0.5,) * 3, indexing="ij"), axis=-1)
    lesion_mask = np.zeros((size, size, size), dtype=np.float32)
    for lesion in lesions:
        inside = np.linalg.norm(voxels - np.array(lesion.centre), axis=-1) <= lesion.radius
        lesion_mask[inside] = 1.0
        organ_suv = float(np.median(pet[inside])) or 0.5
        pet[inside] = organ_suv * (rng.uniform(2.5, 6.0) if lesion.hot else rng.uniform(1.1, 1.6))
        if lesion.calcified:
            ct[inside] += 350.0
        elif lesion.ct_visible:
            ct[inside] += float(rng.choice([-1.0, 1.0]) * rng.uniform(40, 80))
    scanner = int(rng.integers(len(SCANNERS)))
    dose = float(rng.uniform(150, 400))
    ct = gaussian_filter(ct, 0.6) + rng.normal(0, 12, ct.shape).astype(np.float32)
    pet = gaussian_filter(pet, (1.0, 1.4)[scanner])
    pet = np.clip(pet * (1 + rng.normal(0, 0.9 / np.sqrt(dose / 10), pet.shape)), 0, None)
    age = AGE_BANDS[int(rng.integers(len(AGE_BANDS)))]
    text = f"{TRACERS[tracer]} PET/CT, {dose:.0f} MBq, scanner {SCANNERS[scanner]}, age {age}"
    return {
        "ct": ct.astype(np.float32),
        "pet": pet.astype(np.float32),
        "lesions": lesion_mask,
        "label": int(malignant_like(lesions)),
        "tracer": tracer,
        "text": text,
    }


def _split(config: PetCtConfig, split: str) -> dict[str, Tensor]:
    rng = np.random.default_rng([config.seed, SPLITS.index(split), 17])
    cases = [draw_case(config, rng) for _ in range(config.count(split))]
    # byte b -> id b + 1, 0 pads (SmallTextEncoder's ids)
    ids = padded_rows([[b + 1 for b in c["text"].encode("utf-8")] for c in cases], 0)
    spacing = torch.tensor(config.spacing, dtype=torch.float32).expand(len(cases), 3)
    stack = lambda key: torch.from_numpy(np.stack([c[key] for c in cases]))  # noqa: E731
    return {
        "ct": (stack("ct") / CT_SCALE).clamp(-1, 1).to(torch.float16),
        "pet": (stack("pet") / PET_SCALE).clamp(0, 3).to(torch.float16),
        "ct_spacing": spacing.clone(),
        "pet_spacing": spacing.clone(),
        "heatmap": stack("lesions").to(torch.float16),
        "label": torch.tensor([c["label"] for c in cases]),
        "text_ids": ids,
    }


def build_petct(**options: Any) -> Path:
    """Build (or find in the cache) every split; returns the cache folder."""
    check_option_types(PetCtConfig, options, "petct_phantoms")
    config = PetCtConfig(**options)
    if config.size < 16 or config.size % 8:
        raise ConfigError(
            f"petct_phantoms size must be a multiple of 8 and >= 16, got {config.size}"
        )
    if min(config.train, config.val, config.test) < 1:
        raise ConfigError("petct_phantoms needs at least one case per split")

    make = lambda split: _split(config, split)  # noqa: E731
    return build_splits("petct_phantoms", VERSION, config, make, SPLITS, code=(__name__,))


class PetCtPhantoms(TensorDictDataset):
    """One split; ``label`` is 1 for malignant-like cases (module doc)."""

    num_classes = 2
    classes = ("benign-like", "malignant-like")
    padded = {"text_ids": 0}


def labelled_subset(labels: Tensor, fraction: float) -> Tensor:
    """Indices of a stratified ``fraction`` of cases: per class the first
    ``round(fraction · count)`` (at least one), in case order.

    Args:
        labels: (N,) class of every case.
        fraction: in (0, 1].
    """
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"train_fraction must be in (0, 1], got {fraction}")
    keep = []
    for c in labels.unique().tolist():
        members = torch.nonzero(labels == c).flatten()
        keep.append(members[: max(1, round(fraction * len(members)))])
    return torch.cat(keep).sort().values


@register_dataset("petct_phantoms")
def load_petct(split: str, train_fraction: float = 1.0, **options: Any) -> PetCtPhantoms:
    """The ``split`` of the PET/CT phantoms built with ``options`` (see :class:`PetCtConfig`).

    Args:
        split: ``train``, ``val`` or ``test``.
        train_fraction: keep a stratified share of the training cases
            (:func:`labelled_subset`; few-label fine-tuning); the build is shared.
        **options: :class:`PetCtConfig` fields.
    """
    if split not in SPLITS:
        raise ConfigError(f"PET/CT phantoms have splits {SPLITS}, not {split!r}")
    folder = build_petct(**options)
    tensors = TensorDictDataset.load(folder / f"{split}.safetensors").tensors
    if split == "train" and train_fraction < 1.0:
        keep = labelled_subset(tensors["label"], train_fraction)
        tensors = {k: v[keep] for k, v in tensors.items()}
    return PetCtPhantoms(tensors)
