"""MNIST-style IDX files (plain or gzip) and the MNIST image/label pair loader.

The IDX format: two zero bytes, a type code, the number of dimensions ``n``, then
``n`` big-endian uint32 sizes, then the values in big-endian order. Fashion-MNIST
and KMNIST use the same files, so :func:`load_mnist` reads them too.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from polymodal.errors import DataError

__all__ = ["IDX_TYPES", "load_mnist", "read_idx", "write_idx"]

IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
"""IDX type code -> element type (big-endian on disk)."""

_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise DataError(f"{path} does not exist or is not a file")
    raw = path.read_bytes()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        detail = " ".join(str(error).split()) or type(error).__name__
        raise DataError(f"{path} is a damaged or truncated gzip file ({detail})") from error


def read_idx(path: str | Path) -> Tensor:
    """Read an IDX file (``.gz`` or plain, detected from its first bytes).

    Args:
        path: e.g. ``t10k-images-idx3-ubyte.gz``.

    Returns:
        A tensor of the stored shape, e.g. (N, 28, 28) uint8 for MNIST images and
        (N,) uint8 for labels. Type codes map to uint8 (0x08), int8 (0x09),
        int16 (0x0B), int32 (0x0C), float32 (0x0D) and float64 (0x0E).

    Raises:
        DataError: missing file, bad magic number, unknown type code, header or
            data shorter than declared, or trailing bytes after the data.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataError(
            f"{path} is not an IDX file (only {len(raw)} bytes, no 4-byte magic number)"
        )
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise DataError(
            f"{path} is not an IDX file (bad magic number 0x{raw[:4].hex()}; expected "
            f"0x0000TTNN with type TT in {', '.join(f'{t:02x}' for t in IDX_TYPES)})"
        )
    dtype = IDX_TYPES[raw[2]]
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(
            f"{path} is truncated: header declares {ndim} dimensions "
            f"({header} bytes) but the file holds {len(raw)} bytes"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(raw) - header
    if actual < expected:
        raise DataError(
            f"{path} is truncated: shape {shape} needs {expected} data bytes, found {actual}"
        )
    if actual > expected:
        raise DataError(
            f"{path} has the wrong size: shape {shape} needs {expected} data bytes, "
            f"found {actual} ({actual - expected} trailing bytes)"
        )
    values = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return torch.from_numpy(values.astype(dtype.newbyteorder("="), copy=True))


def write_idx(path: str | Path, values: Tensor, compress: bool | None = None) -> None:
    """Write a tensor as an IDX file.

    Args:
        path: destination; gzip-compressed when ``compress`` is True, or when it is
            None and the name ends with ``.gz``.
        values: uint8, int8, int16, int32, float32 or float64 tensor of 0-255 dims.
    """
    path = Path(path)
    array = values.detach().cpu().numpy()
    code = next(
        (c for c, t in IDX_TYPES.items() if t.newbyteorder("=") == array.dtype.newbyteorder("=")),
        None,
    )
    if code is None:
        raise ValueError(f"IDX cannot store {values.dtype}")
    if array.ndim > 255:
        raise ValueError(f"IDX stores at most 255 dimensions, got {array.ndim}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()
    if compress or (compress is None and path.suffix == ".gz"):
        payload = gzip.compress(payload, mtime=0)
    path.write_bytes(payload)


def _find(folder: Path, split: str, kind: str, idx: int) -> Path:
    stems = (f"{split}-{kind}-idx{idx}-ubyte", f"{split}-{kind}.idx{idx}-ubyte")
    candidates = [folder / (stem + suffix) for stem in stems for suffix in ("", ".gz")]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DataError(f"MNIST {split} {kind} file {candidates[0].name}[.gz] not found in {folder}")


def load_mnist(folder: str | Path, split: str = "t10k") -> tuple[Tensor, Tensor]:
    """Load MNIST images and labels from a folder of IDX files.

    Looks for ``{split}-images-idx3-ubyte`` and ``{split}-labels-idx1-ubyte``, each
    plain or ``.gz`` (the ``{split}-images.idx3-ubyte`` spelling is accepted too).

    Args:
        folder: folder holding the IDX files.
        split: ``"t10k"`` (10,000 test images) or ``"train"`` (60,000).

    Returns:
        ``(images, labels)``: (N, H, W) uint8 (28 x 28 for MNIST) and (N,) int64.

    Raises:
        DataError: folder or file missing, unreadable IDX, wrong dims, or image and
            label counts that disagree.
    """
    if split not in ("t10k", "train"):
        raise ValueError(f"split must be 't10k' or 'train', got {split!r}")
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"MNIST folder {folder} does not exist")
    image_path = _find(folder, split, "images", 3)
    label_path = _find(folder, split, "labels", 1)
    images = read_idx(image_path)
    labels = read_idx(label_path)
    if images.dim() != 3 or images.dtype != torch.uint8:
        raise DataError(
            f"{image_path} should hold (N, H, W) uint8 images, "
            f"got {tuple(images.shape)} {images.dtype}"
        )
    if labels.dim() != 1:
        raise DataError(f"{label_path} should hold (N,) labels, got shape {tuple(labels.shape)}")
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{image_path.name} holds {images.shape[0]} images but "
            f"{label_path.name} holds {labels.shape[0]} labels"
        )
    return images, labels.long()
