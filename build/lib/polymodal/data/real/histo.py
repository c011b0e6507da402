"""Real histology + gene-expression cohorts: tile folders and two tables.

Layout (names are free; patient ids tie the three sources together)::

    tiles/                       one sub-folder per patient, named by its id,
        TCGA-A1-A0SB/            holding PNG or JPEG tiles (any size; resized)
            0001.png ...
    expression.csv | .parquet    patients x genes: an id column, then one
                                 numeric column per gene (e.g. TPM)
    labels.csv | .parquet        an id column and a label column (names or ints)

:class:`HistoCohort` loads everything up front, so a bad file is reported at once
with its path: a patient missing from one of the sources, a non-numeric or empty
expression value (with its line and gene), an unreadable tile, a patient folder
without tiles. Parquet needs ``pyarrow`` (or ``pandas`` with a Parquet engine);
CSV needs nothing beyond the standard library.

Samples follow the Histo-Omics layout: ``tiles`` (N, 3, S, S) float in [0, 1] with
all-zero padding tiles up to ``max_tiles``, ``genes`` (G,), ``label`` and ``id``
(the patient's row in :attr:`HistoCohort.patients`). As a registered dataset
(``histo_cohort``) the splits are a seeded, stratified 70/15/15 partition of the
patients, and ``all`` is the whole cohort.
"""

from __future__ import annotations

import copy
import csv
import warnings
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from polymodal.data.dataset import TensorDictDataset
from polymodal.data.registry import register_dataset
from polymodal.errors import ConfigError, DataError

TILE_SUFFIXES = (".png", ".jpg", ".jpeg")
Table = tuple[list[str], dict[str, list[Any]]]  # (column names, {column: values})


def _read_csv(path: Path) -> Table:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows or not rows[0]:
        raise DataError(f"{path} is empty; expected a header row and one row per patient")
    header, body = rows[0], rows[1:]
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DataError(
                f"{path}, line {line}: {len(row)} fields, but the header has {len(header)}"
            )
    columns = {name: [row[i] for row in body] for i, name in enumerate(header)}
    return header, columns


def _read_parquet(path: Path) -> Table:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        try:
            import pandas as pd
        except ImportError:
            raise DataError(
                f"reading {path} needs a Parquet reader: pip install pyarrow "
                "(or pandas with a Parquet engine), or save the table as CSV"
            ) from None
        frame = pd.read_parquet(path)
        header = [str(c) for c in frame.columns]
        return header, {str(c): frame[c].tolist() for c in frame.columns}
    table = pq.read_table(path)
    return list(table.column_names), table.to_pydict()


def read_table(path: str | Path) -> Table:
    """Read a CSV or Parquet table: its column names and ``{column: values}``.

    Raises:
        DataError: missing file, unknown suffix, ragged CSV, no Parquet reader.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"table {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        return _read_csv(path)
    if suffix in (".parquet", ".pq"):
        return _read_parquet(path)
    raise DataError(f"{path}: unknown table format {suffix!r}; use .csv or .parquet")


def _id_column(path: Path, header: list[str], name: str | None) -> str:
    if name is None:
        return header[0]
    if name not in header:
        raise DataError(f"{path} has no id column {name!r}; its columns start {header[:5]}")
    return name


def read_expression(
    path: str | Path, id_column: str | None = None
) -> tuple[list[str], list[str], np.ndarray]:
    """Read a patients x genes table.

    Args:
        path: CSV or Parquet file.
        id_column: the patient id column (default: the first column).

    Returns:
        ``(patients, genes, values)`` with values (P, G) float32.

    Raises:
        DataError: a non-numeric, empty or non-finite value (named by patient, gene
            and line), a duplicated patient, no gene columns.
    """
    path = Path(path).expanduser()
    header, columns = read_table(path)
    key = _id_column(path, header, id_column)
    patients = [str(p) for p in columns[key]]
    genes = [c for c in header if c != key]
    if not genes:
        raise DataError(f"{path} has no gene columns besides {key!r}")
    _check_unique(path, patients)
    values = np.empty((len(patients), len(genes)), dtype=np.float32)
    for g, gene in enumerate(genes):
        for p, cell in enumerate(columns[gene]):
            try:
                values[p, g] = float(cell)
            except (TypeError, ValueError):
                what = "an empty value" if cell in ("", None) else f"non-numeric value {cell!r}"
                raise DataError(
                    f"{path}, line {p + 2}: {what} for patient {patients[p]!r}, gene {gene!r}; "
                    "expression values must be numbers"
                ) from None
    if not np.isfinite(values).all():
        p, g = np.argwhere(~np.isfinite(values))[0]
        raise DataError(
            f"{path}, line {p + 2}: value {values[p, g]} for patient {patients[p]!r}, gene "
            f"{genes[g]!r} is not finite"
        )
    return patients, genes, values


def read_labels(
    path: str | Path, id_column: str | None = None, label_column: str = "label"
) -> dict[str, str]:
    """Read ``{patient id: label}`` from a CSV or Parquet table."""
    path = Path(path).expanduser()
    header, columns = read_table(path)
    key = _id_column(path, header, id_column)
    if label_column not in header:
        raise DataError(f"{path} has no label column {label_column!r}; columns: {header}")
    patients = [str(p) for p in columns[key]]
    _check_unique(path, patients)
    labels = [str(v) for v in columns[label_column]]
    empty = [p for p, v in zip(patients, labels, strict=True) if v in ("", "None", "nan")]
    if empty:
        raise DataError(f"{path}: patients {empty[:5]} have no label")
    return dict(zip(patients, labels, strict=True))


def _check_unique(path: Path, patients: Sequence[str]) -> None:
    doubles = sorted(p for p, n in Counter(patients).items() if n > 1)
    if doubles:
        raise DataError(f"{path}: patients {doubles[:5]} appear more than once")


def tile_files(root: str | Path) -> dict[str, list[Path]]:
    """``{patient id: sorted tile files}`` for every sub-folder of ``root``."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"tile folder {root} does not exist")
    return {
        folder.name: sorted(p for p in folder.iterdir() if p.suffix.lower() in TILE_SUFFIXES)
        for folder in sorted(root.iterdir())
        if folder.is_dir()
    }


def read_tile(path: Path, size: int) -> Tensor:
    """One tile as (3, size, size) uint8 RGB (resized with bilinear filtering).

    Raises:
        DataError: the file is not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
            if rgb.size != (size, size):
                rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
            array = np.asarray(rgb, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, SyntaxError) as error:
        raise DataError(f"unreadable tile {path}: {error}") from error
    return torch.from_numpy(array.copy()).permute(2, 0, 1)  # (H, W, 3) -> (3, H, W)


def _reconcile(
    sources: dict[str, set[str]], labelled: list[str], missing: str, where: dict[str, str]
) -> list[str]:
    """The patients present in every source (labels order); error or drop the rest."""
    everywhere = set.intersection(*sources.values())
    gaps = {name: sorted(set().union(*sources.values()) - ids) for name, ids in sources.items()}
    gaps = {name: ids for name, ids in gaps.items() if ids}
    if gaps and missing == "error":
        lines = "; ".join(
            f"{len(ids)} missing from the {name} ({where[name]}): {', '.join(ids[:5])}"
            + (" ..." if len(ids) > 5 else "")
            for name, ids in gaps.items()
        )
        raise DataError(
            f"patients differ between the sources: {lines}. "
            "Pass missing='drop' to use the patients found everywhere"
        )
    if gaps:
        warnings.warn(
            f"dropping {len(set().union(*gaps.values()))} patients not found in every source",
            stacklevel=3,
        )
    return [p for p in labelled if p in everywhere]


class HistoCohort(TensorDictDataset):
    """A real cohort of tile folders plus expression and label tables (see module doc).

    Args:
        tiles: folder with one sub-folder of tiles per patient.
        expression: patients x genes CSV or Parquet table.
        labels: CSV or Parquet table with patient ids and labels.
        id_column: patient id column in both tables (default: each table's first).
        label_column: label column of the labels table.
        tile_size: side S tiles are resized to (default: the first tile's width).
        max_tiles: tiles kept per patient (a seeded random choice when there are
            more; fewer are padded with all-zero tiles).
        missing: ``"error"`` (default) when a patient is absent from a source, or
            ``"drop"`` to keep the patients found everywhere.
        seed: seed of the tile choice.

    Attributes:
        patients: patient ids; sample ``id`` indexes this list.
        classes: label names (sorted; numerically when all are integers).
        genes: gene names, the order of the ``genes`` vector.
    """

    def __init__(
        self,
        tiles: str | Path,
        expression: str | Path,
        labels: str | Path,
        id_column: str | None = None,
        label_column: str = "label",
        tile_size: int | None = None,
        max_tiles: int = 32,
        missing: Literal["error", "drop"] = "error",
        seed: int = 0,
    ) -> None:
        if missing not in ("error", "drop"):
            raise ConfigError(f"missing must be 'error' or 'drop', got {missing!r}")
        label_of = read_labels(labels, id_column, label_column)
        expr_patients, self.genes, values = read_expression(expression, id_column)
        folders = tile_files(tiles)
        empty = [p for p, files in folders.items() if not files and p in label_of]
        if empty:
            raise DataError(f"tile folders without PNG/JPEG tiles in {tiles}: {empty[:5]}")
        sources = {
            "labels table": set(label_of),
            "expression table": set(expr_patients),
            "tile folders": set(folders),
        }
        where = {
            "labels table": str(labels),
            "expression table": str(expression),
            "tile folders": str(tiles),
        }
        self.patients = _reconcile(sources, list(label_of), missing, where)
        if not self.patients:
            raise DataError("no patient is present in all of labels, expression and tiles")

        names = sorted(set(label_of[p] for p in self.patients))
        if all(n.lstrip("-").isdigit() for n in names):
            names = sorted(names, key=int)
        self.classes = tuple(names)
        self.num_classes = len(names)
        rows = {p: i for i, p in enumerate(expr_patients)}
        genes = torch.from_numpy(values[[rows[p] for p in self.patients]])
        tile_tensor = self._load_tiles(folders, tile_size, max_tiles, seed)
        super().__init__(
            {
                "tiles": tile_tensor,
                "genes": genes,
                "label": torch.tensor([names.index(label_of[p]) for p in self.patients]),
                "id": torch.arange(len(self.patients)),
            }
        )

    def _load_tiles(
        self, folders: dict[str, list[Path]], size: int | None, max_tiles: int, seed: int
    ) -> Tensor:
        """(P, max_tiles, 3, S, S) uint8, zero-padded."""
        from PIL import Image
        from tqdm.auto import tqdm

        if size is None:
            first = folders[self.patients[0]][0]
            try:
                with Image.open(first) as image:
                    size = int(image.size[0])
            except OSError as error:
                raise DataError(f"unreadable tile {first}: {error}") from error
        out = torch.zeros(len(self.patients), max_tiles, 3, size, size, dtype=torch.uint8)
        rng = np.random.default_rng(seed)
        for i, patient in enumerate(
            tqdm(self.patients, desc="tiles", disable=len(self.patients) < 50)
        ):
            files = folders[patient]
            if len(files) > max_tiles:
                keep = np.sort(rng.choice(len(files), max_tiles, replace=False))
                files = [files[k] for k in keep]
            for j, path in enumerate(files):
                out[i, j] = read_tile(path, size)
        return out

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        sample = super().__getitem__(index)
        sample["tiles"] = sample["tiles"].float() / 255.0
        return sample

    def subset(self, index: Sequence[int]) -> HistoCohort:
        """The same cohort restricted to the patients at ``index`` (ids unchanged)."""
        part = copy.copy(self)
        rows = torch.as_tensor(list(index), dtype=torch.long)
        part.tensors = {k: v[rows] for k, v in self.tensors.items()}
        return part


@lru_cache(maxsize=2)
def _cohort(stamp: tuple[int, ...], **options: Any) -> HistoCohort:
    """A loaded cohort, reused while its files' modification times (``stamp``) hold."""
    return HistoCohort(**options)


@register_dataset("histo_cohort")
def load_histo_cohort(
    split: str,
    tiles: str | None = None,
    expression: str | None = None,
    labels: str | None = None,
    **options: Any,
) -> HistoCohort:
    """A split of a real cohort (``data.options``: tiles, expression, labels, ...)."""
    from polymodal.data.synth.histo_omics import SPLITS, stratified_split

    if split not in SPLITS:
        raise ConfigError(f"histo_cohort has splits {SPLITS}, not {split!r}")
    sources = {"tiles": tiles, "expression": expression, "labels": labels}
    for name, value in sources.items():
        if not value:
            raise ConfigError(f"dataset 'histo_cohort' needs data.options.{name} (a path)")
    paths = [Path(str(p)).expanduser() for p in sources.values()]
    stamp = tuple(p.stat().st_mtime_ns for p in paths if p.exists())
    cohort = _cohort(stamp, tiles=tiles, expression=expression, labels=labels, **options)
    if split == "all":
        return cohort
    seed = int(options.get("seed", 0))
    return cohort.subset(stratified_split(cohort.tensors["label"].numpy(), seed)[split].tolist())
