import importlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from polymodal.data.cache import (
    MANIFEST,
    cache_entries,
    cached_build,
    clear_cache,
    code_digests,
    code_fingerprint,
    empty_run_folder,
    entries_table,
    format_age,
    format_size,
    read_manifest,
    run_folder,
)
from polymodal.errors import ConfigError


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


# Code fingerprints, on a throwaway package written for each test.


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """A package ``<name>`` whose ``top`` imports ``helper`` (relative), whose
    function-level import reaches ``deep.leaf``, which imports ``base`` two levels up;
    ``unrelated`` is imported by nobody. Returns ``(name, folder)``."""
    name = f"fpdemo_{tmp_path.name.replace('-', '_')}"
    folder = tmp_path / "src" / name
    files = {
        "__init__.py": "",
        "top.py": "from . import helper\n",
        "helper.py": f"def f():\n    from {name}.deep.leaf import VALUE\n    return VALUE\n",
        "deep/__init__.py": "",
        "deep/leaf.py": "import json\nfrom ..base import VALUE\n",
        "base.py": "VALUE = 1\n",
        "unrelated.py": "X = 1\n",
    }
    for relative, text in files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    importlib.invalidate_caches()
    return name, folder


def test_editing_an_imported_file_changes_the_fingerprint_and_rebuilds(tmp_path, package):
    name, folder = package
    code = (f"{name}.top",)
    calls: list[int] = []
    before = code_fingerprint(*code)
    first = cached_build("toy", "1", {"seed": 0}, writer(calls), root=tmp_path, code=code)
    cached_build("toy", "1", {"seed": 0}, writer(calls), root=tmp_path, code=code)
    assert len(calls) == 1 and read_manifest(first)["fingerprint"] == before

    (folder / "helper.py").write_text((folder / "helper.py").read_text() + "# edited\n")
    after = code_fingerprint(*code)
    second = cached_build("toy", "1", {"seed": 0}, writer(calls), root=tmp_path, code=code)
    assert after != before
    assert len(calls) == 2 and second != first
    assert read_manifest(second)["fingerprint"] == after


def test_fingerprint_follows_imports_transitively_and_only_within_the_package(package):
    name, folder = package
    assert set(code_digests(f"{name}.top")) == {
        name,  # parent packages run on import
        f"{name}.top",
        f"{name}.helper",  # `from . import helper`
        f"{name}.deep",
        f"{name}.deep.leaf",  # imported inside a function
        f"{name}.base",  # `from ..base import` (json is not hashed)
    }
    before = code_fingerprint(f"{name}.top")
    (folder / "unrelated.py").write_text("X = 2\n")
    assert code_fingerprint(f"{name}.top") == before
    (folder / "base.py").write_text("VALUE = 2\n")  # same size: the content is hashed
    assert code_fingerprint(f"{name}.top") != before


def test_fingerprint_of_a_module_without_source_is_an_error():
    with pytest.raises(ValueError, match="no_such_package_xyz"):
        code_fingerprint("no_such_package_xyz.module")


def test_run_folder_is_keyed_by_config_and_code_and_has_a_manifest(tmp_path, package):
    name, folder = package
    code = (f"{name}.top",)
    config = {"name": "run", "seed": 0, "optim": {"lr": 0.1}}
    first = run_folder("bench/toy", config, code=code, root=tmp_path)
    assert run_folder("bench/toy", config, code=code, root=tmp_path) == first
    assert run_folder("bench/toy", {**config, "seed": 1}, code=code, root=tmp_path) != first
    manifest = read_manifest(first)
    assert manifest["kind"] == "bench/toy" and manifest["params"] == config
    assert manifest["code"] == list(code) and manifest["fingerprint"] == code_fingerprint(*code)
    (folder / "deep" / "leaf.py").write_text("VALUE = 3\n")
    assert run_folder("bench/toy", config, code=code, root=tmp_path) != first


def test_empty_run_folder_keeps_only_the_manifest(tmp_path, package):
    run = run_folder("vlm", {"seed": 0}, code=(f"{package[0]}.top",), root=tmp_path)
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
    (run / "model.safetensors").write_bytes(b"y")
    empty_run_folder(run)
    assert [p.name for p in run.iterdir()] == [MANIFEST]


# Listing and clearing, on hand-made entries.

HOUR = 3600.0


def make_entry(root: Path, kind: str, key: str, files: dict[str, int], **manifest) -> int:
    """An entry folder with files of the given sizes; returns its size in bytes."""
    folder = root / kind / key
    for name, size in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"\0" * size)
    if manifest:
        (folder / MANIFEST).write_text(json.dumps({"kind": kind, **manifest}))
    return sum(files.values()) + (len((folder / MANIFEST).read_bytes()) if manifest else 0)


@pytest.fixture
def home_with_entries(tmp_path, monkeypatch) -> tuple[Path, dict[str, int]]:
    """A cache home with five entries; returns it and ``{kind/key: size}``."""
    root = tmp_path / "home"
    monkeypatch.setenv("POLYMODAL_HOME", str(root))
    now = time.time()
    sizes = {
        "av_digits/aaaaaaaaaaaaaaaa": make_entry(
            root,
            "av_digits",
            "aaaaaaaaaaaaaaaa",
            {"data.safetensors": 3000},
            version="3",
            params={"seed": 0, "train": 1500},
            created=now - 2 * HOUR,
        ),
        "bench/fusion/bbbbbbbbbbbbbbbb": make_entry(
            root,
            "bench/fusion",
            "bbbbbbbbbbbbbbbb",
            {"model.safetensors": 1000, "checkpoints/last.ckpt": 500},
            params={"name": "fusion-early", "seed": 1, "model": {"dim": 64}},
            fingerprint="0123456789abcdef",
            created=now,
        ),
        "bench/fusion/cccccccccccccccc": make_entry(
            root, "bench/fusion", "cccccccccccccccc", {"m": 10}, params={}, created=now
        ),
        "bench/abpem/0123456789abcdef": make_entry(  # from before manifests
            root, "bench/abpem", "0123456789abcdef", {"metrics.json": 20}
        ),
        "vlm/dddddddddddddddd": make_entry(
            root, "vlm", "dddddddddddddddd", {"w": 7}, params={"seed": 0}, created=now
        ),
    }
    (root / "av_digits" / ".aaaaaaaaaaaaaaaa-tmp").mkdir()  # a build in progress: not listed
    return root, sizes


def test_cache_entries_lists_every_entry_with_its_size_and_summary(home_with_entries):
    root, sizes = home_with_entries
    entries = cache_entries()
    assert {f"{e.kind}/{e.key}": e.size for e in entries} == sizes
    by_key = {e.key: e for e in entries}
    assert by_key["aaaaaaaaaaaaaaaa"].summary == "v3, seed=0, train=1500"
    assert by_key["bbbbbbbbbbbbbbbb"].summary == "fusion-early, code 01234567, seed=1"
    assert "no manifest" in by_key["0123456789abcdef"].summary
    assert time.time() - by_key["aaaaaaaaaaaaaaaa"].created == pytest.approx(2 * HOUR, abs=60)


def test_entries_table_shows_human_sizes_ages_and_the_total(home_with_entries):
    root, sizes = home_with_entries
    entries = cache_entries()
    table = entries_table(entries, now=max(e.created for e in entries))
    row = next(line for line in table.splitlines() if line.startswith("av_digits"))
    assert row.split()[1:5] == ["aaaaaaaaaaaaaaaa", "3.0", "KiB", "2h"]  # 3000 B + manifest
    assert table.splitlines()[-1] == f"total: 5 entries, {format_size(sum(sizes.values()))}"


def test_format_size_and_age_use_human_units():
    assert [format_size(n) for n in (512, 1536, 5 * 2**20, 3 * 2**30)] == [
        "512 B",
        "1.5 KiB",
        "5.0 MiB",
        "3.0 GiB",
    ]
    assert [format_age(s) for s in (5, 90, 2 * HOUR + 5, 3 * 24 * HOUR)] == ["5s", "1m", "2h", "3d"]


def test_clear_by_kind_removes_only_that_kind(home_with_entries):
    root, sizes = home_with_entries
    removed = clear_cache("bench/fusion")
    assert sorted(e.key for e in removed) == ["bbbbbbbbbbbbbbbb", "cccccccccccccccc"]
    left = {f"{e.kind}/{e.key}" for e in cache_entries()}
    assert left == {k for k in sizes if not k.startswith("bench/fusion/")}
    assert not (root / "bench" / "fusion").exists() and (root / "bench" / "abpem").is_dir()


def test_clear_by_key_or_parent_kind(home_with_entries):
    root, sizes = home_with_entries
    assert [e.kind for e in clear_cache("dddddddddddddddd")] == ["vlm"]
    assert {e.kind for e in clear_cache("bench")} == {"bench/fusion", "bench/abpem"}
    assert [f"{e.kind}/{e.key}" for e in cache_entries()] == ["av_digits/aaaaaaaaaaaaaaaa"]


def test_clear_everything(home_with_entries):
    root, sizes = home_with_entries
    assert len(clear_cache()) == len(sizes)
    assert cache_entries() == [] and [p.name for p in root.iterdir()] == ["av_digits"]


def test_clear_unknown_name_lists_the_kinds_present(home_with_entries):
    with pytest.raises(
        ConfigError, match="kinds present: av_digits, bench/abpem, bench/fusion, vlm"
    ):
        clear_cache("shapes_vqa")
    assert len(cache_entries()) == 5


def test_editing_a_module_this_process_runs_keeps_its_keys_until_a_new_process(package):
    name, folder = package
    importlib.import_module(f"{name}.helper")  # the code this process runs
    before = code_fingerprint(f"{name}.top")
    edited = (folder / "helper.py").read_text() + "from . import unrelated\n"
    (folder / "helper.py").write_text(edited)  # new text and a new import
    assert code_fingerprint(f"{name}.top") == before  # a run in progress keeps its keys
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from polymodal.data.cache import code_fingerprint; print(code_fingerprint(sys.argv[2]))"
    )
    fresh = subprocess.run(
        [sys.executable, "-c", probe, str(folder.parent), f"{name}.top"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert fresh != before  # a new process hashes the edited file
