"""Tests of WER scoring: hand-worked edit distances, intervals, trends, a fake recogniser."""

from __future__ import annotations

import numpy as np
import pytest

from polymodal.bench.asr_testbed.recognizers import make_recognizer
from polymodal.bench.asr_testbed.report import wer_table, write_report
from polymodal.bench.asr_testbed.score import score_testbed, spearman
from polymodal.data.synth.asr_testbed import ASRTestbed
from polymodal.errors import ConfigError
from polymodal.train.wer import corpus_wer, normalize_transcript, word_errors


def test_normalize_transcript_drops_case_punctuation_and_apostrophes():
    assert normalize_transcript(" Don't  STOP, now!") == "dont stop now"
    assert normalize_transcript("There are 2.") == "there are two"


@pytest.mark.parametrize(
    ("ref", "hyp", "errors"),
    [
        ("a b c", "a b c", 0),
        ("a b c", "a x c", 1),  # substitution
        ("a b c", "a c", 1),  # deletion
        ("a b c", "a b c d", 1),  # insertion
        ("a b c", "", 3),
        ("a b c d", "b a d c", 3),  # no swap operation in WER
    ],
)
def test_word_errors_by_hand(ref, hyp, errors):
    assert word_errors(ref, hyp) == errors


def test_word_errors_agree_with_jiwer():
    jiwer = pytest.importorskip("jiwer")
    rng = np.random.default_rng(0)
    words = list("abcdef")
    for _ in range(50):
        ref = " ".join(rng.choice(words, rng.integers(1, 8)))
        hyp = " ".join(rng.choice(words, rng.integers(0, 8)))
        expected = jiwer.process_words(ref, hyp or " ")
        assert (
            word_errors(ref, hyp)
            == expected.substitutions + expected.deletions + expected.insertions
        )


def test_corpus_wer_pools_errors_over_reference_words():
    wer, low, high = corpus_wer(["a b c d", "e f"], ["a b c d", "x"])  # 0 + 2 errors / 6 words
    assert wer == pytest.approx(2 / 6)
    assert 0.0 <= low <= wer <= high <= 1.0
    assert corpus_wer(["a b"], ["a b"]) == (0.0, 0.0, 0.0)


def test_spearman_of_a_monotone_series_is_one():
    assert spearman([1, 2, 3, 4, 5], [0.1, 0.2, 0.25, 0.6, 0.9]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4, 5], [0.5, 0.4, 0.3, 0.2, 0.1]) == pytest.approx(-1.0)


class LoudnessRecognizer:
    """Hears the transcript only when the clip's first sample is above 0.5."""

    name = "fake"

    def __init__(self, transcripts):
        self.transcripts = transcripts

    def transcribe(self, waves):
        return [t if w[0] > 0.5 else "" for t, w in zip(self.transcripts, waves, strict=True)]


def test_score_testbed_with_a_fake_recogniser_and_its_report(tmp_path):
    transcripts = ("one two", "three four")
    heard, lost = np.ones(4, np.float32), np.zeros(4, np.float32)
    bed = ASRTestbed(
        transcripts,
        (heard, heard),
        {
            ("phone", 1): (heard, heard),
            ("phone", 2): (heard, lost),
            ("phone", 3): (lost, lost),
        },
    )
    scores = score_testbed(LoudnessRecognizer(transcripts), bed)
    assert [c.wer for c in scores.conditions] == [0.0, 0.0, 0.5, 1.0]
    assert scores.trend("phone") == pytest.approx(1.0)
    table = wer_table([scores])
    assert "| fake | everyday | phone | 0.0 [0.0, 0.0] | 0.0 [0.0, 0.0] | 50.0 [" in table
    assert table.rstrip().endswith("| 1.00 |")
    paths = write_report([scores], tmp_path)
    assert [p.name for p in paths] == ["asr_testbed.json", "asr_testbed.md", "asr_testbed.png"]
    assert all(p.stat().st_size > 0 for p in paths)


def test_unknown_recognizer_names_the_choices():
    with pytest.raises(ConfigError, match="unknown recognizer 'kaldi'; choose from"):
        make_recognizer("kaldi")
