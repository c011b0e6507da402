from pathlib import Path

import pytest

from polymodal.data.cache import cached_build, read_manifest


def writer(calls: list[int]):
    def build(folder: Path) -> dict:
        calls.append(1)
        (folder / "values.txt").write_text("42")
        return {"sizes": {"all": 1}}

    return build


def test_second_build_reuses_cache_and_manifest_records_checksums(tmp_path):
    calls: list[int] = []
    first = cached_build("toy", "1", {"seed": 0}, writer(calls), root=tmp_path)
    second = cached_build("toy", "1", {"seed": 0}, writer(calls), root=tmp_path)
    assert first == second and len(calls) == 1
    manifest = read_manifest(first)
    assert manifest["params"] == {"seed": 0} and manifest["sizes"] == {"all": 1}
    assert set(manifest["files"]) == {"values.txt"}


def test_changed_version_params_or_corrupted_file_rebuilds(tmp_path):
    calls: list[int] = []
    folder = cached_build("toy", "1", {"seed": 0}, writer(calls), root=tmp_path)
    cached_build("toy", "2", {"seed": 0}, writer(calls), root=tmp_path)
    cached_build("toy", "1", {"seed": 1}, writer(calls), root=tmp_path)
    assert len(calls) == 3
    (folder / "values.txt").write_text("tampered")
    cached_build("toy", "1", {"seed": 0}, writer(calls), root=tmp_path)
    assert len(calls) == 4 and (folder / "values.txt").read_text() == "42"


def test_failed_build_leaves_nothing_behind(tmp_path):
    def explode(folder: Path) -> None:
        (folder / "partial.bin").write_bytes(b"x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        cached_build("toy", "1", {}, explode, root=tmp_path)
    assert list((tmp_path / "toy").iterdir()) == []
