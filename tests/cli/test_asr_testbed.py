"""Tests of ``polymodal asr-testbed``: recognisers by name, files transcribed, bad WAVs named."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.io import wavfile

from polymodal.bench.asr_testbed import recognizers
from polymodal.cli import main


class Echo:
    name = "echo"

    def transcribe(self, waves):
        return [f"{len(w)} samples" for w in waves]


@pytest.fixture(autouse=True)
def echo(monkeypatch):
    monkeypatch.setitem(recognizers.RECOGNIZERS, "echo", Echo)


def wav(tmp_path, rate=16_000, seconds=0.5, amplitude=0.3, name="a.wav"):
    t = np.arange(int(rate * seconds)) / rate
    wavfile.write(
        tmp_path / name, rate, (amplitude * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    )
    return str(tmp_path / name)


def test_transcribe_files_resampling_said(tmp_path, capsys):
    assert (
        main(["asr-testbed", "--recognizer", "echo", "--transcribe", wav(tmp_path, rate=8000)]) == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "note: a.wav is at 8000 Hz; resampled it to 16000 Hz"
    assert out[1].endswith("\t8000 samples")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"amplitude": 0.0}, "is silent"),
        ({"seconds": 31.0}, "is 31.0 s long but the audio window is 30 s"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path, capsys, kwargs, message):
    assert (
        main(["asr-testbed", "--recognizer", "echo", "--transcribe", wav(tmp_path, **kwargs)]) == 2
    )
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_unknown_recognizer_is_one_line(capsys):
    assert main(["asr-testbed", "--recognizer", "kaldi"]) == 2
    assert "unknown recognizer 'kaldi'" in capsys.readouterr().err


@pytest.mark.slow
def test_both_sentence_sets_are_scored_and_tabled(tmp_path, capsys):
    out = tmp_path / "report"
    args = ["asr-testbed", "--recognizer", "echo", "--size", "1", "--out", str(out)]
    assert main([*args, "--sentences", "everyday", "--sentences", "shapes"]) == 0
    table = (out / "asr_testbed.md").read_text()
    assert "| echo | everyday | meeting |" in table and "| echo | shapes | meeting |" in table
