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
- one ``.safetensors`` file of ``{modality: (N, ...)}`` tensors: N samples named
  ``0`` … ``N-1``.

Every sample is checked against the contract and the model's per-sample shapes;
a file that cannot be read or does not fit raises a one-line
:class:`~polymodal.errors.DataError` naming the file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from polymodal.data.contract import validate_sample
from polymodal.data.features import log_mel
from polymodal.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
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


def read_inputs(
    path: str | Path, shapes: Mapping[str, Sequence[int]]
) -> tuple[list[str], list[dict[str, Tensor]]]:
    """Read a file or folder into samples for a model with modalities ``shapes``.

    Args:
        path: a file, a folder of files, or one ``.safetensors`` file (module doc).
        shapes: ``{modality: per-sample shape}`` the model was trained on.

    Returns:
        Sample names (sorted) and the samples, in the same order.

    Raises:
        DataError: no usable file, an unreadable file, or a sample that does not
            fit the model's shapes (the message names the file or sample).
    """
    path = Path(path)
    if path.suffix == ".safetensors" and path.is_file():
        return _from_safetensors(path, shapes)
    samples: dict[str, dict[str, Tensor]] = {}
    sources: dict[str, list[str]] = {}
    for file in _files(path):
        suffix = file.suffix.lower()
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
    if not samples:
        kinds = [*IMAGE_SUFFIXES, *AUDIO_SUFFIXES, ".MODALITY.npy", ".safetensors"]
        raise DataError(
            f"no input for this model's modalities ({', '.join(shapes)}) in {path}; "
            f"expected files ending in {', '.join(kinds)}"
        )
    names = sorted(samples)
    for name in names:
        _check(samples[name], shapes, f"{path}/{'+'.join(sources[name])}")
    return names, [samples[n] for n in names]


def _from_safetensors(
    path: Path, shapes: Mapping[str, Sequence[int]]
) -> tuple[list[str], list[dict[str, Tensor]]]:
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
    return [str(i) for i in range(n)], samples


def _check(sample: dict[str, Tensor], shapes: Mapping[str, Sequence[int]], where: str) -> None:
    for modality, value in sample.items():
        want = tuple(int(s) for s in shapes[modality])
        if tuple(value.shape) != want:
            raise DataError(
                f"{where}: {modality} has shape {tuple(value.shape)}, the model reads {want}"
            )
    try:
        validate_sample(sample)
    except DataError as error:
        raise DataError(f"{where}: {error}") from error
