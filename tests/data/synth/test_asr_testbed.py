"""Tests of the fixed ASR testbed (espeak-ng synthesis: marked slow)."""

from __future__ import annotations

import numpy as np
import pytest

from polymodal.data.synth.asr_testbed import SENTENCES, SHAPES_QUESTIONS, build_testbed
from polymodal.data.synth.shapes_vqa import build_tokenizer
from polymodal.errors import ConfigError


@pytest.mark.slow
def test_testbed_is_fixed_and_aligned_with_its_transcripts():
    bed = build_testbed(size=2, scenarios=("meeting", "phone"), severities=(1, 5), workers=1)
    assert bed.transcripts == SENTENCES[:2]
    assert sorted(bed.clips) == [("meeting", 1), ("meeting", 5), ("phone", 1), ("phone", 5)]
    for waves in bed.clips.values():
        assert [w.shape for w in waves] == [w.shape for w in bed.clean]
    again = build_testbed(size=2, scenarios=("meeting", "phone"), severities=(1, 5), workers=1)
    for key, waves in bed.clips.items():
        assert all(np.array_equal(a, b) for a, b in zip(waves, again.clips[key], strict=True))


def test_bad_sizes_and_scenarios_are_named():
    with pytest.raises(ConfigError, match=r"testbed size must be in 1\.\.24, got 0"):
        build_testbed(size=0)
    with pytest.raises(ConfigError, match="unknown scenario 'airport'"):
        build_testbed(size=1, scenarios=("airport",))
    with pytest.raises(ConfigError, match="unknown sentence set 'news'; choose from"):
        build_testbed(size=1, sentences="news")


def test_shapes_questions_are_distinct_and_in_the_vqa_vocabulary():
    vocabulary = build_tokenizer().get_vocab()
    assert len(set(SHAPES_QUESTIONS)) == len(SHAPES_QUESTIONS) == len(SENTENCES)
    assert all(word in vocabulary for q in SHAPES_QUESTIONS for word in q.split())


@pytest.mark.slow
def test_the_shapes_set_is_rendered_with_its_own_transcripts():
    bed = build_testbed(size=2, scenarios=("phone",), severities=(1,), workers=1)
    shapes = build_testbed(
        size=2, scenarios=("phone",), severities=(1,), workers=1, sentences="shapes"
    )
    assert shapes.transcripts == SHAPES_QUESTIONS[:2]
    assert [len(w) for w in shapes.clean] != [len(w) for w in bed.clean]  # other words
