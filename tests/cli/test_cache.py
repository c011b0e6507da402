"""``polymodal cache``: listing entries with their sizes and clearing them by name."""

from pathlib import Path

from polymodal.cli import main


def test_cache_list_and_clear_commands(tmp_path, monkeypatch, capsys):
    from polymodal.data.cache import MANIFEST, cached_build, format_size, run_folder

    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))

    def build(folder: Path) -> None:
        (folder / "x.bin").write_bytes(b"0" * 4096)

    data = cached_build("toy", "1", {"seed": 0}, build)
    model = run_folder("vlm", {"name": "tiny-vlm", "seed": 3}, code=("polymodal.errors",))
    (model / "model.safetensors").write_bytes(b"0" * 2048)

    assert main(["cache", "list"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    for folder, payload in ((data, 4096), (model, 2048)):
        size = format_size(payload + (folder / MANIFEST).stat().st_size)
        assert rows[folder.parent.name].split()[1:4] == [folder.name, *size.split()]
    assert "tiny-vlm, code " in rows["vlm"] and rows["vlm"].endswith("seed=3")
    assert rows["total:"].startswith("total: 2 entries")

    assert main(["cache", "clear", "vlm"]) == 0
    assert f"removed vlm/{model.name}" in capsys.readouterr().out
    assert not model.exists() and data.is_dir()

    assert main(["cache", "clear", "bench/fusion"]) == 2
    assert "kinds present: toy" in capsys.readouterr().err
    assert data.is_dir()
