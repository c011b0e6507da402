from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest
import torch

from polymodal.data.real.mnist import load_mnist, read_idx, write_idx
from polymodal.errors import DataError

# A 2 x 3 x 4 ubyte array written byte by byte: magic 0x00000803, dims, values 0..23.
TINY_IDX = bytes([0, 0, 0x08, 3]) + struct.pack(">III", 2, 3, 4) + bytes(range(24))


def test_read_idx_reads_a_hand_written_ubyte_file(tmp_path: Path) -> None:
    (tmp_path / "tiny-idx3-ubyte").write_bytes(TINY_IDX)
    values = read_idx(tmp_path / "tiny-idx3-ubyte")
    assert values.dtype == torch.uint8
    torch.testing.assert_close(values, torch.arange(24, dtype=torch.uint8).reshape(2, 3, 4))


def test_read_idx_reads_gzip_by_content(tmp_path: Path) -> None:
    (tmp_path / "tiny.gz").write_bytes(gzip.compress(TINY_IDX))
    values = read_idx(tmp_path / "tiny.gz")
    torch.testing.assert_close(values, torch.arange(24, dtype=torch.uint8).reshape(2, 3, 4))


def test_read_idx_decodes_big_endian_int16(tmp_path: Path) -> None:
    raw = bytes([0, 0, 0x0B, 1]) + struct.pack(">I", 3) + struct.pack(">hhh", -2, 300, 7)
    (tmp_path / "s16").write_bytes(raw)
    values = read_idx(tmp_path / "s16")
    assert values.dtype == torch.int16
    assert values.tolist() == [-2, 300, 7]


def test_write_idx_round_trips_float32_through_gzip(tmp_path: Path) -> None:
    values = torch.tensor([[1.5, -2.25], [0.0, 1e-3]])
    write_idx(tmp_path / "f.idx.gz", values)
    assert (tmp_path / "f.idx.gz").read_bytes()[:2] == b"\x1f\x8b"
    torch.testing.assert_close(read_idx(tmp_path / "f.idx.gz"), values)


def test_bad_magic_raises(tmp_path: Path) -> None:
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01" + struct.pack(">I", 1) + b"\x05")
    with pytest.raises(DataError, match=r"bad.* is not an IDX file \(bad magic number 0x01020801"):
        read_idx(tmp_path / "bad")


def test_unknown_type_code_raises(tmp_path: Path) -> None:
    (tmp_path / "odd").write_bytes(b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x05")
    with pytest.raises(DataError, match="bad magic number 0x00000701"):
        read_idx(tmp_path / "odd")


def test_truncated_data_raises(tmp_path: Path) -> None:
    (tmp_path / "short").write_bytes(TINY_IDX[:-5])
    message = r"short is truncated: shape \(2, 3, 4\) needs 24 data bytes, found 19"
    with pytest.raises(DataError, match=message):
        read_idx(tmp_path / "short")


def test_truncated_header_raises(tmp_path: Path) -> None:
    (tmp_path / "head").write_bytes(TINY_IDX[:9])
    with pytest.raises(DataError, match="head is truncated: header declares 3 dimensions"):
        read_idx(tmp_path / "head")


def test_trailing_bytes_raise_wrong_size(tmp_path: Path) -> None:
    (tmp_path / "long").write_bytes(TINY_IDX + b"\x00\x00")
    with pytest.raises(DataError, match="wrong size.*2 trailing bytes"):
        read_idx(tmp_path / "long")


def test_truncated_gzip_raises(tmp_path: Path) -> None:
    (tmp_path / "cut.gz").write_bytes(gzip.compress(TINY_IDX)[:15])
    with pytest.raises(DataError, match=r"cut\.gz is a damaged or truncated gzip file"):
        read_idx(tmp_path / "cut.gz")


def _tiny_mnist(folder: Path, split: str = "t10k", n_labels: int = 4) -> torch.Tensor:
    images = torch.arange(4 * 28 * 28).remainder(256).to(torch.uint8).reshape(4, 28, 28)
    write_idx(folder / f"{split}-images-idx3-ubyte.gz", images)
    write_idx(folder / f"{split}-labels-idx1-ubyte", torch.arange(n_labels, dtype=torch.uint8))
    return images


def test_load_mnist_finds_gzip_and_plain_files(tmp_path: Path) -> None:
    images = _tiny_mnist(tmp_path, "train")
    got_images, labels = load_mnist(tmp_path, split="train")
    torch.testing.assert_close(got_images, images)
    assert labels.dtype == torch.int64
    assert labels.tolist() == [0, 1, 2, 3]


def test_load_mnist_names_the_missing_file_and_folder(tmp_path: Path) -> None:
    _tiny_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match=rf"t10k-labels-idx1-ubyte\[\.gz\] not found in {tmp_path}"):
        load_mnist(tmp_path)


def test_load_mnist_rejects_disagreeing_counts(tmp_path: Path) -> None:
    _tiny_mnist(tmp_path, n_labels=3)
    with pytest.raises(DataError, match="holds 4 images but .* holds 3 labels"):
        load_mnist(tmp_path)


def test_real_mnist_t10k(shared_data: Path) -> None:
    images, labels = load_mnist(shared_data / "mnist-t10k", split="t10k")
    assert images.shape == (10_000, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (10_000,) and labels.dtype == torch.int64
    assert labels[:8].tolist() == [7, 2, 1, 0, 4, 1, 4, 9]  # the well-known first test digits
    per_digit = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert torch.bincount(labels).tolist() == per_digit
