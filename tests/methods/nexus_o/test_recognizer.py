"""Tests of Nexus-O as a testbed recogniser: by name with a run folder, batching, cropping."""

from __future__ import annotations

import numpy as np
import pytest

from polymodal.bench.asr_testbed.recognizers import make_recognizer
from polymodal.errors import ConfigError
from polymodal.methods.nexus_o.recipe import StageConfig, save_omni
from polymodal.methods.nexus_o.recognizer import NexusOTranscriber


@pytest.fixture
def run_dir(omni, tmp_path):
    folder = tmp_path / "stage1"
    save_omni(omni, folder, StageConfig(stage=1), {"test_wer": 1.0})
    return folder


def test_a_run_folder_transcribes_the_same_alone_or_in_a_padded_batch(run_dir, omni):
    recognizer = make_recognizer(f"nexus-o:{run_dir}")
    assert isinstance(recognizer, NexusOTranscriber) and recognizer.name == "nexus-o"
    rng = np.random.default_rng(0)
    short, long = (0.1 * rng.standard_normal(n).astype(np.float32) for n in (8000, 20000))
    together = recognizer.transcribe([short, long])
    assert together == [recognizer.transcribe([short])[0], recognizer.transcribe([long])[0]]
    words = set(omni.tokenizer.get_vocab())
    assert all(w in words for text in together for w in text.split())
    assert recognizer.cropped == 0


def test_clips_longer_than_the_audio_window_are_cropped_and_counted(run_dir):
    recognizer = NexusOTranscriber(run_dir)
    window = int(recognizer.run.model.config.window_s * 16_000)
    clip = 0.1 * np.random.default_rng(0).standard_normal(window).astype(np.float32)
    padded = np.concatenate([clip, np.ones(4000, np.float32)])
    assert recognizer.transcribe([padded]) == recognizer.transcribe([clip])
    assert recognizer.cropped == 1


def test_without_a_cached_run_or_folder_the_fix_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="no cached Nexus-O stage-1 run; train one with"):
        make_recognizer("nexus-o")
    with pytest.raises(ConfigError, match="is not a finished Nexus-O stage run"):
        make_recognizer(f"nexus-o:{tmp_path / 'missing'}")
    with pytest.raises(ConfigError, match="recognizer 'pocketsphinx' takes no argument"):
        make_recognizer("pocketsphinx:fast")
