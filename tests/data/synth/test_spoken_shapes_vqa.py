"""Tests of Spoken Shapes-VQA: speech beside every question, voices held out across splits."""

from __future__ import annotations

import pytest
import torch

from polymodal.data.registry import build_dataset
from polymodal.data.synth.spoken_shapes_vqa import SpokenVoices, load_spoken_shapes_vqa, voice_pools
from polymodal.errors import ConfigError

TINY = {"train": 6, "val": 3, "test": 3, "voices_train": 3, "voices_val": 2, "voices_test": 2}


def test_voice_pools_are_disjoint_and_sized():
    pools = voice_pools(SpokenVoices(voices_train=5, voices_val=3, voices_test=2))
    assert [len(pools[s]) for s in ("train", "val", "test")] == [5, 3, 2]
    train, val, test = (set(pools[s]) for s in ("train", "val", "test"))
    assert not train & val and not train & test and not val & test


@pytest.mark.slow
def test_every_item_has_its_question_spoken_by_a_voice_of_its_split():
    train = load_spoken_shapes_vqa("train", **TINY)
    test = load_spoken_shapes_vqa("test", **TINY)
    assert len(train) == 6 and len(test) == 3
    sample = test[0]
    assert sample["audio"].dtype == torch.float32 and sample["audio"].ndim == 1
    assert sample["audio"].numel() > 16_000 * 0.5  # a question lasts over half a second
    assert sample["audio"].abs().max() <= 1.0
    assert int(sample["voice"]) < 2
    assert torch.equal(sample["text_ids"], test.questions[0]["text_ids"])
    assert not set(train.voices) & set(test.voices)
    # Equal (question, voice) pairs share one clip; the build is deterministic.
    again = build_dataset("spoken_shapes_vqa", "test", **TINY)
    assert torch.equal(again.audio(0), test.audio(0))


def test_bad_options_are_named():
    with pytest.raises(ConfigError, match="voices_test >= 1, got 0"):
        load_spoken_shapes_vqa("test", voices_test=0)
    with pytest.raises(ConfigError, match="splits"):
        load_spoken_shapes_vqa("dev")
