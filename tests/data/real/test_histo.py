import sys

import numpy as np
import pytest
import torch
from PIL import Image

from polymodal.data.real.histo import HistoCohort, load_histo_cohort, read_table
from polymodal.errors import DataError

GENES = ("ESR1", "ERBB2", "MKI67")


def write_cohort(root, patients=("p1", "p2", "p3", "p4"), tiles=(2, 3, 1, 2), labels=None):
    """Tiles as PNG (JPEG for the last patient), expression and labels as CSV."""
    labels = labels or ["basal", "luminal", "basal", "luminal"]
    rng = np.random.default_rng(0)
    for patient, count in zip(patients, tiles, strict=True):
        folder = root / "tiles" / patient
        folder.mkdir(parents=True)
        for t in range(count):
            pixels = rng.integers(1, 255, (20, 20, 3), dtype=np.uint8)
            suffix = ".jpg" if patient == patients[-1] else ".png"
            Image.fromarray(pixels).save(folder / f"tile_{t}{suffix}")
    rows = ["patient," + ",".join(GENES)]
    rows += [f"{p},{i + 1}.5,{i},{10 * i}" for i, p in enumerate(patients)]
    (root / "expression.csv").write_text("\n".join(rows) + "\n")
    lines = ["patient,subtype"] + [f"{p},{y}" for p, y in zip(patients, labels, strict=True)]
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root / "tiles", root / "expression.csv", root / "labels.csv"


def test_a_cohort_loads_into_padded_bags(tmp_path):
    tiles, expression, labels = write_cohort(tmp_path)
    cohort = HistoCohort(
        tiles, expression, labels, label_column="subtype", tile_size=16, max_tiles=3
    )
    assert cohort.patients == ["p1", "p2", "p3", "p4"]
    assert cohort.classes == ("basal", "luminal") and cohort.genes == list(GENES)
    sample = cohort[1]
    assert sample["tiles"].shape == (3, 3, 16, 16)
    assert sample["label"] == 1 and sample["id"] == 1
    torch.testing.assert_close(sample["genes"], torch.tensor([2.5, 1.0, 10.0]))
    real = cohort.tensors["tiles"].flatten(2).amax(-1) > 0
    assert real.sum(dim=1).tolist() == [2, 3, 1, 2]


def test_more_tiles_than_max_are_subsampled(tmp_path):
    tiles, expression, labels = write_cohort(tmp_path, tiles=(5, 1, 1, 1))
    cohort = HistoCohort(tiles, expression, labels, label_column="subtype", max_tiles=2)
    assert cohort.tensors["tiles"].shape[1] == 2
    assert int((cohort.tensors["tiles"][0].flatten(1).amax(-1) > 0).sum()) == 2


def test_a_patient_missing_from_one_source_is_named(tmp_path):
    tiles, expression, labels = write_cohort(tmp_path)
    text = expression.read_text().splitlines()
    expression.write_text("\n".join(text[:-1]) + "\n")  # drop p4
    with pytest.raises(DataError, match=r"1 missing from the expression table .*: p4"):
        HistoCohort(tiles, expression, labels, label_column="subtype")
    with pytest.warns(UserWarning, match="dropping 1 patients"):
        cohort = HistoCohort(tiles, expression, labels, label_column="subtype", missing="drop")
    assert cohort.patients == ["p1", "p2", "p3"]


def test_a_non_numeric_expression_value_is_named_with_line_and_gene(tmp_path):
    tiles, expression, labels = write_cohort(tmp_path)
    expression.write_text(expression.read_text().replace("p2,2.5", "p2,high"))
    with pytest.raises(DataError, match=r"line 3: non-numeric value 'high' .*'p2', gene 'ESR1'"):
        HistoCohort(tiles, expression, labels, label_column="subtype")
    expression.write_text(expression.read_text().replace("p2,high", "p2,"))
    with pytest.raises(DataError, match="line 3: an empty value"):
        HistoCohort(tiles, expression, labels, label_column="subtype")


def test_an_unreadable_tile_is_named(tmp_path):
    tiles, expression, labels = write_cohort(tmp_path)
    broken = tiles / "p2" / "tile_1.png"
    broken.write_bytes(b"not a png at all")
    with pytest.raises(DataError, match=r"unreadable tile .*p2/tile_1\.png"):
        HistoCohort(tiles, expression, labels, label_column="subtype")


def test_missing_label_column_and_empty_folder_are_named(tmp_path):
    tiles, expression, labels = write_cohort(tmp_path)
    with pytest.raises(DataError, match="no label column 'label'"):
        HistoCohort(tiles, expression, labels)
    for tile in (tiles / "p3").iterdir():
        tile.unlink()
    with pytest.raises(DataError, match=r"without PNG/JPEG tiles .*p3"):
        HistoCohort(tiles, expression, labels, label_column="subtype")


def test_parquet_without_a_reader_says_what_to_install(tmp_path, monkeypatch):
    path = tmp_path / "expression.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(DataError, match="pip install pyarrow"):
        read_table(path)


def test_parquet_tables_are_read_when_pyarrow_is_installed(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    tiles, _, labels = write_cohort(tmp_path)
    table = pa.table({"patient": ["p1", "p2", "p3", "p4"], "ESR1": [1.0, 2.0, 3.0, 4.0]})
    pq.write_table(table, tmp_path / "expression.parquet")
    cohort = HistoCohort(tiles, tmp_path / "expression.parquet", labels, label_column="subtype")
    assert cohort.tensors["genes"][:, 0].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_registered_splits_partition_the_cohort(tmp_path):
    patients = tuple(f"p{i}" for i in range(20))
    tiles, expression, labels = write_cohort(
        tmp_path, patients, tiles=(1,) * 20, labels=["a", "b"] * 10
    )
    options = {"tiles": str(tiles), "expression": str(expression), "labels": str(labels)}
    options["label_column"] = "subtype"
    ids = [load_histo_cohort(s, **options).tensors["id"].tolist() for s in ("train", "val", "test")]
    assert sorted(sum(ids, [])) == list(range(20))
    assert len(load_histo_cohort("all", **options)) == 20
