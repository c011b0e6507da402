"""PET/CT cases from NIfTI files (``nibabel``, ``pip install "polymodal[medical]"``).

A case folder holds ``<case>_ct.nii[.gz]`` and ``<case>_pet.nii[.gz]``, optionally
``<case>_seg.nii[.gz]`` (a lesion mask) and ``labels.csv`` (``case,label``). Each
volume is read in the contract's (D, H, W) layout — NIfTI stores (x, y, z), so the
axes are reversed — with its voxel size in mm from the header, then resampled
(linear; nearest for masks) onto a common grid of ``size³`` voxels at ``spacing``
mm, centred on the volume. CT is windowed to [−1000, 1000] HU and scaled by 1/1000,
PET scaled by 1/10 as SUV (the phantoms' units, :mod:`polymodal.data.synth.petct`).
PET in Bq/mL becomes SUV when a JSON sidecar ``<case>_pet.json`` gives
``injected_dose_bq`` and ``body_weight_kg`` (SUV = C · weight[g] / dose); without
one, PET is taken to be SUV already. :func:`write_mask` writes a prediction back
onto the input's own grid with its affine.

Bad input is a one-line :class:`~polymodal.errors.DataError`: a missing partner
volume, a 2D file, NaN voxels, or PET and CT that cover different fields of view.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.ndimage import zoom
from torch import Tensor
from torch.utils.data import Dataset

from polymodal.data.registry import register_dataset
from polymodal.data.synth.petct import CT_SCALE, PET_SCALE
from polymodal.errors import ConfigError, DataError

SUFFIXES = (".nii.gz", ".nii")
FOV_TOLERANCE = 0.05
"""PET and CT fields of view may differ by this share per axis (rounding of voxel counts)."""


def _nibabel() -> Any:
    try:
        import nibabel
    except ImportError as error:
        raise ConfigError(
            'reading NIfTI needs nibabel: pip install "polymodal[medical]"'
        ) from error
    return nibabel


@dataclass
class Volume:
    """One NIfTI volume in the contract's layout.

    Attributes:
        data: (D, H, W) float32 voxels (NIfTI's (x, y, z) axes reversed).
        spacing: (3,) voxel size along (D, H, W), in mm.
        affine: (4, 4) the file's voxel-to-world matrix (for its own x, y, z order).
        path: where it was read from.
    """

    data: np.ndarray
    spacing: np.ndarray
    affine: np.ndarray
    path: Path

    @property
    def extent(self) -> np.ndarray:
        """(3,) field of view along (D, H, W), in mm."""
        return np.array(self.data.shape) * self.spacing


def read_volume(path: str | Path) -> Volume:
    """Read a 3D NIfTI file (a trailing axis of size 1 is dropped).

    Raises:
        DataError: unreadable, not 3D, or holding NaN/Inf voxels.
    """
    nib = _nibabel()
    path = Path(path)
    try:
        image = nib.load(str(path))
        data = np.asarray(image.dataobj, dtype=np.float32)
    except Exception as error:  # nibabel raises many types
        raise DataError(f"{path} is not a readable NIfTI file: {error}") from error
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DataError(
            f"{path} holds a {data.ndim}D image of shape {data.shape}; a 3D volume is needed"
        )
    if not np.isfinite(data).all():
        raise DataError(f"{path} holds NaN or Inf voxels")
    zooms = np.array(image.header.get_zooms()[:3], dtype=np.float64)
    return Volume(
        data.transpose(2, 1, 0).copy(), zooms[::-1].copy(), np.asarray(image.affine), path
    )


def resample(
    volume: np.ndarray, spacing: np.ndarray, size: int, target: float, order: int = 1
) -> np.ndarray:
    """Resample (D, H, W) voxels of ``spacing`` mm to ``target`` mm (one size, or one
    per axis), then centre-crop or pad to ``size³`` with the volume's minimum."""
    factors = np.asarray(spacing, dtype=np.float64) / np.asarray(target, dtype=np.float64)
    scaled = zoom(volume, factors, order=order, mode="nearest", grid_mode=True)
    return centre_to(scaled, (size, size, size), float(volume.min()))


def _find(folder: Path, case: str, kind: str) -> Path | None:
    for suffix in SUFFIXES:
        path = folder / f"{case}_{kind}{suffix}"
        if path.is_file():
            return path
    return None


def _case_name(path: Path) -> str | None:
    name = path.name
    for suffix in SUFFIXES:
        for kind in ("ct", "pet"):
            if name.endswith(f"_{kind}{suffix}"):
                return name[: -len(f"_{kind}{suffix}")]
    return None


def to_suv(pet: Volume) -> np.ndarray:
    """PET voxels in SUV: converted from Bq/mL with a ``<case>_pet.json`` sidecar
    (``injected_dose_bq``, ``body_weight_kg``), else taken as SUV already."""
    stem = pet.path.name.split(".nii")[0]
    sidecar = pet.path.with_name(f"{stem}.json")
    if not sidecar.is_file():
        return pet.data
    try:
        meta = json.loads(sidecar.read_text())
        dose, weight = float(meta["injected_dose_bq"]), float(meta["body_weight_kg"])
    except (ValueError, KeyError, TypeError) as error:
        raise DataError(
            f"{sidecar}: needs numbers injected_dose_bq and body_weight_kg ({error})"
        ) from error
    if dose <= 0 or weight <= 0:
        raise DataError(f"{sidecar}: injected_dose_bq and body_weight_kg must be > 0")
    return pet.data * (weight * 1000.0) / dose


class NiftiPetCt(Dataset[dict[str, Tensor]]):
    """PET/CT cases of a folder of NIfTI files, as contract samples (module doc).

    Args:
        root: the folder.
        size: voxels per side of the common grid.
        spacing: its voxel size in mm (isotropic).
        cases: case names to use (default: every case with a CT or PET file).

    Samples hold ``ct``, ``pet`` (size³), ``ct_spacing``/``pet_spacing``, and when
    present ``heatmap`` (the resampled mask) and ``label`` (from ``labels.csv``).
    """

    def __init__(
        self,
        root: str | Path,
        size: int = 32,
        spacing: float = 12.5,
        cases: list[str] | None = None,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"NIfTI folder {self.root} does not exist")
        found = sorted({n for p in self.root.iterdir() if (n := _case_name(p)) is not None})
        self.cases = found if cases is None else list(cases)
        if not self.cases:
            raise DataError(f"{self.root} holds no <case>_ct.nii[.gz] / <case>_pet.nii[.gz] files")
        self.size, self.spacing = size, spacing
        self.labels = self._labels()

    def _labels(self) -> dict[str, int]:
        path = self.root / "labels.csv"
        if not path.is_file():
            return {}
        with path.open() as f:
            try:
                return {row["case"]: int(row["label"]) for row in csv.DictReader(f)}
            except (KeyError, ValueError) as error:
                raise DataError(
                    f"{path} must have columns case,label (integers): {error}"
                ) from error

    def __len__(self) -> int:
        return len(self.cases)

    def read_case(self, case: str) -> tuple[Volume, Volume, Volume | None]:
        """The CT, PET and (optional) mask volumes of ``case``, checked as a pair."""
        ct_path, pet_path = _find(self.root, case, "ct"), _find(self.root, case, "pet")
        for kind, path in (("CT", ct_path), ("PET", pet_path)):
            if path is None:
                raise DataError(
                    f"case {case!r} in {self.root} has no {kind} file "
                    f"({case}_{kind.lower()}.nii.gz); PET and CT come in pairs"
                )
        ct, pet = read_volume(ct_path), read_volume(pet_path)  # type: ignore[arg-type]
        if np.any(
            np.abs(ct.extent - pet.extent) > FOV_TOLERANCE * np.maximum(ct.extent, pet.extent)
        ):
            raise DataError(
                f"case {case!r}: PET and CT cover different fields of view "
                f"({np.round(pet.extent).tolist()} mm vs {np.round(ct.extent).tolist()} mm)"
            )
        seg_path = _find(self.root, case, "seg")
        return ct, pet, (read_volume(seg_path) if seg_path else None)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        case = self.cases[index]
        ct, pet, seg = self.read_case(case)
        sample = on_grid({"ct": ct, "pet": pet}, self.size, self.spacing)
        if seg is not None:
            mask = resample(seg.data, seg.spacing, self.size, self.spacing, order=0) > 0.5
            sample["heatmap"] = torch.from_numpy(mask.astype(np.float32))
        if case in self.labels:
            sample["label"] = torch.tensor(self.labels[case])
        return sample


def on_grid(
    volumes: dict[str, Volume], size: int, spacing: float | Sequence[float]
) -> dict[str, Tensor]:
    """``ct`` and/or ``pet`` volumes resampled onto the common grid and scaled as the
    phantoms are (CT windowed to [−1000, 1000] HU / 1000, PET SUV / 10 in [0, 3]),
    with their ``<m>_spacing``."""
    sample: dict[str, Tensor] = {}
    for name, volume in volumes.items():
        if name == "ct":
            values = np.clip(resample(volume.data, volume.spacing, size, spacing), -1000.0, 1000.0)
            values = values / CT_SCALE
        elif name == "pet":
            values = resample(to_suv(volume), volume.spacing, size, spacing)
            values = np.clip(values / PET_SCALE, 0.0, 3.0)
        else:
            raise DataError(f"{volume.path}: NIfTI inputs are ct or pet volumes, not {name!r}")
        sample[name] = torch.from_numpy(values.astype(np.float32))
        sample[f"{name}_spacing"] = torch.tensor(
            np.broadcast_to(spacing, (3,)), dtype=torch.float32
        )
    return sample


def write_mask(
    path: str | Path, mask: np.ndarray, like: Volume, spacing: float | Sequence[float]
) -> Path:
    """Write a (size³) mask predicted on the common grid back onto ``like``'s own grid,
    with its affine, as NIfTI (uint8).

    Args:
        path: the ``.nii`` / ``.nii.gz`` file to write.
        mask: (size, size, size) values in [0, 1] on the grid of ``spacing`` mm.
        like: the input volume (its shape, spacing and affine).
        spacing: the common grid's voxel size in mm (one, or one per axis).
    """
    nib = _nibabel()
    factors = np.asarray(spacing, dtype=np.float64) / np.asarray(like.spacing, dtype=np.float64)
    on_input = zoom(mask.astype(np.float32), factors, order=0, grid_mode=True, mode="grid-constant")
    on_input = centre_to(on_input, like.data.shape)
    image = nib.Nifti1Image((on_input > 0.5).astype(np.uint8).transpose(2, 1, 0), like.affine)
    image.header.set_zooms(tuple(float(z) for z in like.spacing[::-1]))
    nib.save(image, str(path))
    return Path(path)


def centre_to(volume: np.ndarray, shape: Sequence[int], fill: float = 0.0) -> np.ndarray:
    """Centre-crop or pad (with ``fill``) each axis of ``volume`` to ``shape``."""
    out = np.full(tuple(shape), fill, dtype=volume.dtype)
    src, dst = [], []
    for n, want in zip(volume.shape, shape, strict=True):
        if n >= want:
            start = (n - want) // 2
            src.append(slice(start, start + want))
            dst.append(slice(0, want))
        else:
            start = (want - n) // 2
            src.append(slice(0, n))
            dst.append(slice(start, start + n))
    out[tuple(dst)] = volume[tuple(src)]
    return out


@register_dataset("petct_nifti")
def load_petct_nifti(
    split: str, root: str, size: int = 32, spacing: float = 12.5, **folders: Any
) -> NiftiPetCt:
    """A split of NIfTI PET/CT cases: ``root/<split>/`` (``train``, ``val``, ``test``)."""
    if folders:
        raise ConfigError(f"petct_nifti takes root, size and spacing; got {sorted(folders)}")
    return NiftiPetCt(Path(root) / split, size, spacing)
