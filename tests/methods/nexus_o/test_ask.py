"""Tests of ``polymodal ask``: a saved tiny omni run answers; bad WAVs get one line each."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy.io import wavfile

from polymodal.cli import main
from polymodal.data.synth.shapes_vocab import ANSWERS, COLORS
from polymodal.methods.nexus_o.recipe import StageConfig, load_omni, save_omni


@pytest.fixture
def run_dir(omni, tmp_path):
    folder = tmp_path / "run"
    save_omni(omni, folder, StageConfig(stage=3), {"test_acc_spoken": 0.0})
    return folder


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "scene.png"
    Image.fromarray(np.full((48, 48, 3), 200, np.uint8)).save(path)
    return path


def question(tmp_path, rate=16_000, seconds=1.0, channels=1, amplitude=0.3, name="q.wav"):
    t = np.arange(int(rate * seconds)) / rate
    wave = (amplitude * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    data = np.stack([wave] * channels, 1) if channels > 1 else wave
    wavfile.write(tmp_path / name, rate, data)
    return tmp_path / name


def test_saved_run_loads_bit_identical(omni, run_dir):
    loaded = load_omni(run_dir).model.state_dict()
    for key, value in omni.model.state_dict().items():
        assert np.array_equal(loaded[key].numpy(), value.numpy()), key


def test_ask_answers_in_text_and_writes_speech(run_dir, image, tmp_path, capsys):
    out = tmp_path / "answer.wav"
    wav = question(tmp_path, rate=8_000)
    assert (
        main(["ask", str(image), "--audio", str(wav), "--run", str(run_dir), "--out", str(out)])
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "note: q.wav is at 8000 Hz; resampled it to 16000 Hz"
    assert lines[1].startswith("answer: ")
    rate, speech = wavfile.read(out)
    assert rate == 16_000 and speech.ndim == 1 and speech.size > 0


def test_stereo_question_is_averaged_and_said(run_dir, image, tmp_path, capsys):
    wav = question(tmp_path, channels=2)
    args = [
        "ask",
        str(image),
        "--audio",
        str(wav),
        "--run",
        str(run_dir),
        "--out",
        str(tmp_path / "a.wav"),
    ]
    assert main(args) == 0
    assert "note: q.wav has 2 channels; averaged them to mono" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seconds": 0.0}, "zero-length recording"),
        ({"amplitude": 0.0}, "is silent"),
        ({"seconds": 7.0}, "is 7.0 s long but the audio window is 6 s"),
    ],
)
def test_bad_questions_are_one_line_errors(run_dir, image, tmp_path, capsys, kwargs, message):
    wav = question(tmp_path, **kwargs)
    assert main(["ask", str(image), "--audio", str(wav), "--run", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_missing_run_and_a_bad_image_are_named(run_dir, image, tmp_path, capsys):
    wav = question(tmp_path)
    assert main(["ask", str(image), "--audio", str(wav), "--run", str(tmp_path / "none")]) == 2
    assert "is not a finished Nexus-O stage run" in capsys.readouterr().err
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    assert main(["ask", str(bad), "--audio", str(wav), "--run", str(run_dir)]) == 2
    assert "is not an image Pillow can read" in capsys.readouterr().err
    assert ANSWERS[0] == COLORS[0]
