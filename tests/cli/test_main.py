import subprocess
import sys

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
