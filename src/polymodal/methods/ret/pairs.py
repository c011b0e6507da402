"""A user's own retrieval pairs: a folder of queries, documents and positives.

Layout (paths inside the JSON lines are relative to the folder)::

    documents.jsonl   {"id": "d1", "image": "img/d1.png", "text": "..."}   one per line
    queries.jsonl     {"id": "q1", "image": "img/q1.png", "text": "...", "split": "train"}
    positives.tsv     q1<TAB>d1[<TAB>d7]   query, its document, optionally a hard negative

Every row needs an image, a text or both. Every query names its split (``train``,
``val`` or ``test``) and has exactly one positive; all splits search the same
document collection. A query without a listed hard negative gets a random other
document (seeded). Problems — a missing file, a malformed line, an unknown id, a
missing image — are one-line :class:`~polymodal.errors.DataError`s naming the file
and line.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from polymodal.errors import DataError

FILES = ("documents.jsonl", "queries.jsonl", "positives.tsv")
SPLITS = ("train", "val", "test")


@dataclass
class Rows:
    """N queries or documents.

    Attributes:
        images: (N, 3, S, S) in [0, 1] (zeros where absent).
        texts: N strings (``""`` where absent).
        has_image, has_text: (N,) bool.
    """

    images: Tensor
    texts: list[str]
    has_image: Tensor
    has_text: Tensor


@dataclass
class RowsSplit:
    """A split: the collection, its queries, and each query's document and hard negative
    ((N_q,) rows of ``documents``)."""

    documents: Rows
    queries: Rows
    target: Tensor
    hard_negative: Tensor


def _path(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise DataError(f"{path} is missing; a pairs folder holds {', '.join(FILES)}")
    return path


def _records(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a .jsonl file, each with an ``id``."""
    records = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as err:
            raise DataError(f"{path}:{n} is not valid JSON ({err.args[0]})") from None
        if not isinstance(record, dict) or "id" not in record:
            raise DataError(f'{path}:{n} needs an object with an "id"')
        if not record.get("image") and not record.get("text"):
            raise DataError(f"{path}:{n} ({record['id']}) has neither an image nor a text")
        records.append(record)
    return records


def _rows(folder: Path, records: list[dict[str, Any]], size: int) -> Rows:
    images = torch.zeros(len(records), 3, size, size)
    for i, record in enumerate(records):
        if record.get("image"):
            path = folder / str(record["image"])
            try:
                with Image.open(path) as image:
                    pixels = np.asarray(image.convert("RGB").resize((size, size)))
            except OSError as err:
                raise DataError(
                    f"image {path} of {record['id']} cannot be read ({type(err).__name__})"
                ) from None
            images[i] = torch.from_numpy(pixels.copy()).permute(2, 0, 1).float() / 255
    texts = [str(r.get("text") or "") for r in records]
    return Rows(
        images,
        texts,
        torch.tensor([bool(r.get("image")) for r in records]),
        torch.tensor([bool(t) for t in texts]),
    )


def load_pairs(folder: str | Path, split: str, image_size: int = 48) -> RowsSplit:
    """The ``split`` of a pairs folder (layout in the module doc).

    Args:
        folder: the folder.
        split: ``train``, ``val`` or ``test``.
        image_size: the side every image is resized to.

    Raises:
        DataError: a missing file or image, a malformed line, an unknown or repeated id,
            a query without a positive, or a split without queries.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"pairs folder {folder} does not exist")
    documents = _records(_path(folder, FILES[0]))
    if len(documents) < 2:
        raise DataError(f"{folder / FILES[0]} needs at least 2 documents to rank")
    doc_row = {str(d["id"]): i for i, d in enumerate(documents)}
    if len(doc_row) != len(documents):
        raise DataError(f"{folder / FILES[0]} repeats a document id")
    pairs: dict[str, tuple[str, str | None]] = {}
    positives = _path(folder, FILES[2])
    for n, line in enumerate(positives.read_text().splitlines(), start=1):
        cells = line.rstrip("\n").split("\t")
        if not line.strip():
            continue
        if len(cells) not in (2, 3):
            raise DataError(f"{positives}:{n} needs query<TAB>document[<TAB>hard negative]")
        for cell in cells[1:]:
            if cell not in doc_row:
                raise DataError(f"{positives}:{n} names document {cell!r}, not in {FILES[0]}")
        pairs[cells[0]] = (cells[1], cells[2] if len(cells) == 3 else None)
    queries = [q for q in _records(_path(folder, FILES[1])) if q.get("split", "train") == split]
    if not queries:
        raise DataError(f"{folder / FILES[1]} has no queries of split {split!r}")
    rng = np.random.default_rng(0)
    target, negative = [], []
    for q in queries:
        if str(q["id"]) not in pairs:
            raise DataError(f"query {q['id']!r} has no line in {positives}")
        document, hard = pairs[str(q["id"])]
        target.append(doc_row[document])
        if hard is None:  # any other document
            other = int(rng.integers(len(documents) - 1))
            negative.append(other + int(other >= target[-1]))
        else:
            negative.append(doc_row[hard])
    return RowsSplit(
        _rows(folder, documents, image_size),
        _rows(folder, queries, image_size),
        torch.tensor(target),
        torch.tensor(negative),
    )


def folder_fingerprint(folder: str | Path) -> str:
    """sha256 of a pairs folder's three files and every image they name (cache key)."""
    folder = Path(folder)
    digest = hashlib.sha256(str(folder.resolve()).encode())
    for name in FILES:
        path = _path(folder, name)
        digest.update(path.read_bytes())
    for name in FILES[:2]:
        for record in _records(folder / name):
            if record.get("image"):
                image = folder / str(record["image"])
                digest.update(image.read_bytes() if image.is_file() else b"missing")
    return digest.hexdigest()[:16]
