"""``polymodal compose``: MIDI and WAV from a description, and one-line input errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from polymodal.cli import main
from polymodal.data.synth.music_events import read_midi

TINY = [
    "model.dim=32",
    "model.options.depth=1",
    "model.options.num_heads=2",
    "trainer.max_epochs=1",
    "trainer.progress_bar=false",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-epoch taste-music run from scratch (no pre-training: the CLI is under test)."""
    folder = tmp_path_factory.mktemp("compose")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POLYMODAL_HOME", str(folder / "home"))
        assert main(["fit", "taste_music", *TINY, f"out_dir={folder / 'run'}"]) == 0
    return folder / "run"


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("polymodal: error: "), err
    return err


@pytest.mark.slow
def test_compose_writes_midi_and_wav_of_the_asked_length(run, tmp_path, capsys):
    out = tmp_path / "piece"
    args = ["compose", "a bitter, dark piece", "--seconds", "3", "--out", str(out)]
    assert main([*args, "--run", str(run)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert out.with_suffix(".wav").stat().st_size > 44
    assert read_midi(out.with_suffix(".mid")).seconds <= 3.0 + 1e-6


@pytest.mark.slow
def test_unknown_vocabulary_still_composes_and_says_it_fell_back(run, tmp_path, capsys):
    out = tmp_path / "odd"
    assert main(["compose", "zxqv plonk wibble", "--out", str(out), "--run", str(run)]) == 0
    err = capsys.readouterr().err
    assert err.startswith("note: no word of 'zxqv plonk wibble'") and "fell back" in err
    assert out.with_suffix(".mid").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["", "--seconds", "5"], "the description is empty"),
        (["a sweet melody", "--seconds", "0"], "--seconds must be above 0"),
        (["a sweet melody", "--seconds", "99999"], "at most 600"),
        (["a sweet melody", "--run", "no/such/run"], "no trained taste-music run in no/such/run"),
    ],
)
def test_bad_input_is_one_line(args, message, tmp_path, capsys):
    assert main(["compose", *args, "--out", str(tmp_path / "x")]) == 2
    assert message in one_line_error(capsys)
