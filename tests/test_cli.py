import subprocess
import sys
from pathlib import Path

import pytest

from polymodal.cli import build_parser, main


def test_every_command_has_help_text():
    parser = build_parser()
    help_text = parser.format_help()
    for command in ("data", "fit", "eval", "bench"):
        assert command in help_text
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["bench", "--help"])
    assert exit_info.value.code == 0


def test_malformed_config_is_a_one_line_error_and_exit_code_2(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("trainer:\n  epochs: 3\n")
    assert main(["fit", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("polymodal: error: unknown config key 'trainer.epochs'")


def test_unknown_bench_check_is_reported(capsys):
    assert main(["bench", "--only", "no-such-check", "--out", "unused"]) == 2
    assert "unknown claim check(s) no-such-check" in capsys.readouterr().err


def test_help_answers_without_importing_torch():
    code = (
        "import sys; from polymodal.cli import build_parser; build_parser(); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


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
