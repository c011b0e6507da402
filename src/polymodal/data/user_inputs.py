"""A user's own files as contract samples, shaped for a trained model (``polymodal predict``).

Files are grouped into samples by name: ``cat.png`` and ``cat.wav`` are the image
and the audio of sample ``cat``; a sample lacking one of the model's modalities is
marked missing, as the data contract does. What is read:

- images ``.png``, ``.jpg``, ``.jpeg``, ``.bmp``: converted to the model's channels
  (grey or RGB), resized to its (H, W), scaled to [0, 1] as the embedded data sets;
- audio ``.wav``: mono, 16 kHz, centre-cropped or zero-padded to the model's clip
  length, and turned into the log-mel features (40 bands, 10 ms hop) the model
  reads when its ``audio`` is (F, T);
- ``NAME.MODALITY.npy``: any modality as a NumPy array, e.g. ``case7.ct.npy``;
- NIfTI volumes ``NAME_ct.nii[.gz]`` / ``NAME_pet.nii[.gz]`` (any ``NAME.nii.gz``
  for a model with a single volume modality): resampled onto the
  model's grid and spacing and scaled as in training
  (:func:`polymodal.data.real.nifti.on_grid`); the volumes are kept, so a writer
  can put a prediction back onto each input's own grid;
- one ``.safetensors`` file of ``{modality: (N, ...)}`` tensors: N samples named
  ``0`` … ``N-1``.

Every sample is checked against the contract and the model's per-sample shapes;
a file that cannot be read or does not fit raises a one-line
:class:`~polymodal.errors.DataError` naming the file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from polymodal.data.contract import validate_sample
from polymodal.data.features import log_mel
from polymodal.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
VOLUMES = ("ct", "pet")
AUDIO_SUFFIXES = (".wav",)
HOP = 160  # log_mel's hop at 16 kHz


def read_image(path: Path, shape: Sequence[int]) -> Tensor:
    """(C, H, W) float in [0, 1] from an image file, converted and resized to ``shape``."""
    try:
        from PIL import Image
    except ImportError as error:  # pragma: no cover - pillow ships with polymodal[data]
        raise DataError("reading images needs pillow: pip install 'polymodal[data]'") from error
    c, h, w = shape
    if c not in (1, 3):
        raise DataError(f"{path}: the model reads {c}-channel images; only 1 or 3 come from files")
    try:
        with Image.open(path) as image:
            image = image.convert("L" if c == 1 else "RGB").resize((w, h), Image.BILINEAR)
            array = np.asarray(image, dtype=np.float32) / 255.0
    except (OSError, ValueError) as error:
        raise DataError(f"{path} is not a readable image: {error}") from error
    return torch.from_numpy(array.reshape(h, w, c)).permute(2, 0, 1).contiguous()


def read_audio(path: Path, shape: Sequence[int]) -> Tensor:
    """The model's ``audio`` from a WAV file: (S,) waveform or (F, T) log-mel, per ``shape``."""
    from polymodal.data.real.fsdd import fit_length
    from polymodal.data.real.wav import read_wav

    wave = read_wav(path, 16_000)
    if len(shape) == 1:
        return fit_length(wave, int(shape[0]))
    n_mels, frames = int(shape[0]), int(shape[1])
    return log_mel(fit_length(wave, (frames - 1) * HOP), n_mels=n_mels)


def _read_npy(path: Path) -> Tensor:
    try:
        return torch.from_numpy(np.load(path, allow_pickle=False)).float()
    except (OSError, ValueError) as error:
        raise DataError(f"{path} is not a readable .npy array: {error}") from error


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    raise DataError(f"input {path} does not exist (give a file or a folder of files)")


class Inputs(NamedTuple):
    """A user's samples.

    Attributes:
        names: one name per sample, sorted.
        samples: the contract samples, in the same order.
        volumes: per sample, ``{modality: Volume}`` of its NIfTI inputs (else empty).
    """

    names: list[str]
    samples: list[dict[str, Tensor]]
    volumes: list[dict[str, Any]]


def read_inputs(
    path: str | Path,
    shapes: Mapping[str, Sequence[int]],
    spacings: Mapping[str, Sequence[float]] | None = None,
) -> Inputs:
    """Read a file or folder into samples for a model with modalities ``shapes``.

    Args:
        path: a file, a folder of files, or one ``.safetensors`` file (module doc).
        shapes: ``{modality: per-sample shape}`` the model was trained on.
        spacings: ``{modality: (3,) voxel size in mm}`` of its volume modalities
            (NIfTI inputs are resampled to it).

    Returns:
        :class:`Inputs`.

    Raises:
        DataError: no usable file, an unreadable file, or a sample that does not
            fit the model's shapes (the message names the file or sample).
    """
    path = Path(path)
    if path.suffix == ".safetensors" and path.is_file():
        return _from_safetensors(path, shapes)
    samples: dict[str, dict[str, Tensor]] = {}
    sources: dict[str, list[str]] = {}
    volumes: dict[str, dict[str, Any]] = {}
    for file in _files(path):
        suffix = file.suffix.lower()
        nifti = _nifti_name(file, shapes)
        if nifti is not None:
            from polymodal.data.real.nifti import read_volume

            volumes.setdefault(nifti[0], {})[nifti[1]] = read_volume(file)
            sources.setdefault(nifti[0], []).append(file.name)
            continue
        if suffix in IMAGE_SUFFIXES and "image" in shapes:
            name, modality, value = file.stem, "image", read_image(file, shapes["image"])
        elif suffix in AUDIO_SUFFIXES and "audio" in shapes:
            name, modality, value = file.stem, "audio", read_audio(file, shapes["audio"])
        elif suffix == ".npy" and "." in file.stem:
            name, modality = file.stem.rsplit(".", 1)
            if modality not in shapes:
                raise DataError(f"{file}: the model has no modality {modality!r} ({list(shapes)})")
            value = _read_npy(file)
        else:
            continue
        samples.setdefault(name, {})[modality] = value
        sources.setdefault(name, []).append(file.name)
    for name, found in volumes.items():
        samples.setdefault(name, {}).update(_volumes_on_grid(found, shapes, spacings, name))
    if not samples:
        kinds = [
            *IMAGE_SUFFIXES,
            *AUDIO_SUFFIXES,
            ".MODALITY.npy",
            "_ct/_pet.nii.gz",
            ".safetensors",
        ]
        raise DataError(
            f"no input for this model's modalities ({', '.join(shapes)}) in {path}; "
            f"expected files ending in {', '.join(kinds)}"
        )
    names = sorted(samples)
    for name in names:
        _check(samples[name], shapes, f"{path}/{'+'.join(sources[name])}")
    return Inputs(names, [samples[n] for n in names], [volumes.get(n, {}) for n in names])


def _nifti_name(file: Path, shapes: Mapping[str, Sequence[int]]) -> tuple[str, str] | None:
    """``("case7", "ct")`` for ``case7_ct.nii.gz``; for a model with one volume
    modality, any NIfTI file is that modality (``scan.nii.gz`` -> ``("scan", "ct")``);
    None for other files."""
    name = file.name
    suffix = next((s for s in (".nii.gz", ".nii") if name.endswith(s)), None)
    if suffix is None:
        return None
    stem = name[: -len(suffix)]
    case, _, modality = stem.rpartition("_")
    if case and modality in shapes:
        return case, modality
    volumes = [m for m in shapes if m in VOLUMES]
    return (stem, volumes[0]) if len(volumes) == 1 else None


def _volumes_on_grid(
    volumes: dict[str, Any],
    shapes: Mapping[str, Sequence[int]],
    spacings: Mapping[str, Sequence[float]] | None,
    name: str,
) -> dict[str, Tensor]:
    from polymodal.data.real.nifti import on_grid

    first = next(iter(volumes))
    size = int(shapes[first][0])
    if any(len(set(shapes[m])) != 1 for m in volumes):
        raise DataError(
            f"{name}: the model's volumes are not cubes {dict(shapes)}; NIfTI needs size³"
        )
    spacing = (spacings or {}).get(first)
    if spacing is None:
        raise DataError(f"{name}: the run does not say its voxel spacing; NIfTI inputs need it")
    return on_grid(volumes, size, [float(s) for s in spacing])


def _from_safetensors(path: Path, shapes: Mapping[str, Sequence[int]]) -> Inputs:
    from safetensors.torch import load_file

    try:
        tensors = {k: v for k, v in load_file(str(path)).items() if k in shapes}
    except Exception as error:  # safetensors raises its own error types
        raise DataError(f"{path} is not a readable safetensors file: {error}") from error
    if not tensors:
        raise DataError(f"{path} holds none of the model's modalities ({', '.join(shapes)})")
    lengths = {k: int(v.shape[0]) for k, v in tensors.items()}
    if len(set(lengths.values())) != 1:
        raise DataError(f"{path}: tensors disagree on the number of samples: {lengths}")
    n = next(iter(lengths.values()))
    samples = [
        {k: v[i].float() if v.is_floating_point() else v[i] for k, v in tensors.items()}
        for i in range(n)
    ]
    for i, sample in enumerate(samples):
        _check(sample, shapes, f"{path} sample {i}")
    return Inputs([str(i) for i in range(n)], samples, [{} for _ in range(n)])


def _check(sample: dict[str, Tensor], shapes: Mapping[str, Sequence[int]], where: str) -> None:
    for modality, value in sample.items():
        if modality not in shapes:  # metadata such as <m>_spacing
            continue
        want = tuple(int(s) for s in shapes[modality])
        if tuple(value.shape) != want:
            raise DataError(
                f"{where}: {modality} has shape {tuple(value.shape)}, the model reads {want}"
            )
    try:
        validate_sample(sample)
    except DataError as error:
        raise DataError(f"{where}: {error}") from error
