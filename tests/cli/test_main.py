import subprocess
import sys

import pytest

from polymodal.cli import build_parser, main

COMMANDS = ("data", "fit", "eval", "cv", "adapt", "analyze", "bench")


def test_every_command_is_listed_and_explains_itself_with_an_example(capsys):
    help_text = build_parser().format_help()
    for command in COMMANDS:
        assert f"    {command} " in help_text
    pages = [[c] for c in COMMANDS] + [["data", "build"], ["analyze", "contribution"]]
    for words in [*pages, ["analyze", "text-bias"]]:
        with pytest.raises(SystemExit) as exit_info:
            main([*words, "--help"])
        assert exit_info.value.code == 0
        assert "example" in capsys.readouterr().out, words


def test_an_unexpected_exception_keeps_its_traceback():
    # A bug is not bad input: no one-line message, the traceback and exit code 1.
    code = (
        "import polymodal.cli.data as d; d.cmd_list = lambda args: 1 / 0; "
        "from polymodal.cli import main; raise SystemExit(main(['data', 'list']))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 1
    assert "Traceback" in out.stderr and "ZeroDivisionError" in out.stderr
    assert "polymodal: error" not in out.stderr


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
