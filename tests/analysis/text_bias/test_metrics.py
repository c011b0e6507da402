"""Text-bias metrics on a hand-made table of answers."""

from __future__ import annotations

import math

import pytest

from polymodal.analysis.text_bias.metrics import (
    FollowCounts,
    TextBiasResult,
    accuracy,
    answer_vocabulary,
    follow_counts,
    is_answer,
    normalize_answer,
)
from polymodal.errors import DataError

# item: truth, image-only, text-only, image+text -> whom image+text follows
TABLE = [
    ("red", "red", "green", "green"),  # text
    ("two", "2", "three", "Three."),  # text (normalised: 3 = 3, not 2)
    ("yes", "yes", "no", "yes"),  # image
    ("circle", "circle", "circle", "the circle"),  # same (excluded)
    ("blue", "blue", "red", "cyan"),  # neither
    ("no", "no", "yes", "Yes"),  # text
    ("square", "triangle", "square", "square"),  # text (the image-only answer was wrong)
    ("four", "four", "four", "4"),  # same (excluded)
    ("green", "green", "yellow", "green"),  # image
]
TRUTH, IMAGE_ONLY, TEXT_ONLY, IMAGE_TEXT = (list(column) for column in zip(*TABLE, strict=True))
# The answer the corrupted text implies; item 4's text implies none.
TEXT_SAYS = ["green", "three", "no", "circle", None, "yes", "square", "four", "yellow"]


def test_normalisation_lowers_strips_punctuation_articles_and_spells_numbers_as_digits() -> None:
    assert normalize_answer("The Two.") == "2"
    assert normalize_answer("  a red one!\n") == "red 1"
    assert normalize_answer("An apple, yes?") == "apple yes"


def test_follow_counts_and_tpr_on_the_hand_made_table() -> None:
    counts = follow_counts(IMAGE_ONLY, TEXT_ONLY, IMAGE_TEXT)
    assert counts == FollowCounts(text=4, image=2, same=2, neither=1)
    assert counts.tpr == pytest.approx(4 / 6)  # the two "same" items are left out


def test_tpr_is_nan_when_no_answer_follows_one_side_alone() -> None:
    counts = follow_counts(["red", "blue"], ["red", "green"], ["red", "cyan"])
    assert counts == FollowCounts(text=0, image=0, same=1, neither=1)
    assert math.isnan(counts.tpr)


def test_empty_and_special_token_answers_never_follow_anything() -> None:
    # A model that says nothing (or only <eos>) under every condition must not look
    # text-biased: its empty answers agree with each other but are no answers.
    silent = ["", "<eos>", "[PAD]", " . "]
    counts = follow_counts(silent, silent, silent)
    assert counts == FollowCounts(text=0, image=0, same=0, neither=4)
    # An empty image+text answer follows neither side, even when one side is empty too.
    assert follow_counts(["red", ""], ["", "blue"], ["", ""]) == FollowCounts(0, 0, 0, 2)
    # A real answer cannot "follow" an empty text-only answer; it still follows the image.
    assert follow_counts(["red"], [""], ["red"]) == FollowCounts(text=0, image=1, same=0, neither=0)


def test_out_of_vocabulary_answers_are_neither_when_the_vocabulary_is_known() -> None:
    vocabulary = answer_vocabulary(["red", "green", "two"])
    # "the" is a word the model can emit but no answer: it matches nothing.
    assert follow_counts(["red"], ["the"], ["the"], vocabulary) == FollowCounts(0, 0, 0, 1)
    assert follow_counts(["red"], ["green"], ["Green."], vocabulary) == FollowCounts(1, 0, 0, 0)
    assert follow_counts(["red"], ["2"], ["two"], vocabulary) == FollowCounts(1, 0, 0, 0)
    assert is_answer("cyan") and not is_answer("cyan", vocabulary)


def test_accuracy_compares_normalised_answers() -> None:
    assert accuracy(IMAGE_ONLY, TRUTH) == pytest.approx(8 / 9)
    assert accuracy(TEXT_ONLY, TRUTH) == pytest.approx(3 / 9)
    assert accuracy(IMAGE_TEXT, TRUTH) == pytest.approx(5 / 9)


def test_mismatched_lengths_are_reported() -> None:
    with pytest.raises(DataError, match="differ in length"):
        follow_counts(["a"], ["a", "b"], ["a"])
    with pytest.raises(DataError, match="2 answers for 1 true answers"):
        accuracy(["a", "b"], ["a"])


def result() -> TextBiasResult:
    return TextBiasResult(
        truth=TRUTH,
        question_types=["color", "count", "exist", "shape", "color", "exist", "shape"]
        + ["count", "color"],
        answers={
            "image_only": IMAGE_ONLY,
            "text_only_corrupted": TEXT_ONLY,
            "image_corrupted": IMAGE_TEXT,
        },
        text_answers={"corrupted": TEXT_SAYS},
    )


def test_the_table_has_a_row_per_condition_with_counts_on_image_plus_text() -> None:
    rows = {row.condition: row for row in result().rows()}
    assert list(rows) == ["image_only", "text_only_corrupted", "image_corrupted"]
    image_only = rows["image_only"]
    assert image_only.accuracy == pytest.approx(8 / 9)
    assert image_only.tpr is None and image_only.says_text is None
    corrupted = rows["image_corrupted"]
    assert (corrupted.text, corrupted.image, corrupted.same, corrupted.neither) == (4, 2, 2, 1)
    assert corrupted.tpr == pytest.approx(4 / 6)
    # Items whose text implies an answer: 8; the image+text answer says it on 6
    # (all but items 2 and 8).
    assert corrupted.says_text == pytest.approx(6 / 8)
    assert rows["text_only_corrupted"].tpr is None


def test_accuracy_by_question_type() -> None:
    by_type = result().accuracy_by_type("image_corrupted")
    # color: items 0 (x), 4 (x), 8 (ok); count: 1 (x), 7 (ok); exist: 2 (ok), 5 (x);
    # shape: 3 (ok), 6 (ok)
    assert by_type == pytest.approx({"color": 1 / 3, "count": 1 / 2, "exist": 1 / 2, "shape": 1.0})


def test_tpr_of_a_variant_not_run_is_nan() -> None:
    assert math.isnan(result().tpr("matching"))
    assert result().tpr("corrupted") == pytest.approx(4 / 6)


def test_per_item_hits_and_follow_flags_sum_to_the_table() -> None:
    probe = result()
    hits = probe.hits("image_corrupted")
    assert hits == [False, False, True, True, False, False, True, True, True]
    text, image = probe.follows("corrupted")
    assert text == [True, True, False, False, False, True, True, False, False]
    assert image == [False, False, True, False, False, False, False, False, True]
    assert (sum(text), sum(image)) == probe.counts("corrupted")[:2]
