"""Text variations of Shapes-VQA: wording, corruption, irrelevance, determinism, vocabulary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from polymodal.data.synth.shapes_render import COLORS
from polymodal.data.synth.shapes_text import (
    ANSWER_FAMILIES,
    CAUTION,
    CONTEXT_LENGTH,
    VARIANTS,
    ShapesTexts,
    irrelevant_sentence,
    item_texts,
    statement,
    with_caution,
)
from polymodal.data.synth.shapes_vocab import ANSWERS, SPECIAL_TOKENS, TEMPLATE_WORDS
from polymodal.data.synth.shapes_vqa import build_tokenizer, load_shapes_vqa
from polymodal.errors import ConfigError, DataError

SMALL = {"train": 8, "val": 8, "test": 40}


@pytest.fixture()
def test_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))
    return load_shapes_vqa("test", **SMALL)


@pytest.mark.parametrize(
    ("kind", "question", "answer", "expected"),
    [
        ("color", "what color is the triangle ?", "red", "the triangle is red ."),
        ("shape", "what shape is the blue object ?", "circle", "the blue object is a circle ."),
        ("count", "how many objects are there ?", "three", "there are three objects ."),
        ("count", "how many objects are there ?", "one", "there is one object ."),
        ("exist", "is there a green square ?", "yes", "there is a green square ."),
        ("exist", "is there a green square ?", "no", "there is no green square ."),
        (
            "relation",
            "is the red circle left of the cyan diamond ?",
            "no",
            "the red circle is right of the cyan diamond .",
        ),
    ],
)
def test_statements_word_the_answer_naturally(
    kind: str, question: str, answer: str, expected: str
) -> None:
    assert statement(kind, question, answer) == expected


def test_statements_reject_foreign_questions_and_answers() -> None:
    with pytest.raises(DataError, match="not a Shapes-VQA 'color' question"):
        statement("color", "what colour is the triangle ?", "red")
    with pytest.raises(DataError, match="not an answer to a 'count' question"):
        statement("count", "how many objects are there ?", "red")


def test_corrupted_text_keeps_the_wording_and_draws_every_other_answer_of_the_family() -> None:
    question = "what color is the triangle ?"
    drawn = set()
    for seed in range(200):
        texts = item_texts("color", question, "red", np.random.default_rng(seed))
        wrong = texts["corrupted"].answer
        assert wrong in COLORS and wrong != "red"
        assert texts["corrupted"].text == f"{CAUTION} the triangle is {wrong} ."
        drawn.add(wrong)
    assert drawn == set(COLORS) - {"red"}


def test_yes_no_questions_are_corrupted_by_flipping_the_answer() -> None:
    texts = item_texts("exist", "is there a red circle ?", "no", np.random.default_rng(0))
    assert texts["matching"] == ("matching", f"{CAUTION} there is no red circle .", "no")
    assert texts["corrupted"] == ("corrupted", f"{CAUTION} there is a red circle .", "yes")


def test_irrelevant_sentences_use_no_answer_word() -> None:
    rng = np.random.default_rng(0)
    sentences = {irrelevant_sentence(rng) for _ in range(500)}
    assert len(sentences) > 50
    for sentence in sentences:
        assert not set(sentence.split()) & set(ANSWERS), sentence


def test_the_caution_goes_before_after_or_nowhere() -> None:
    assert with_caution("the sky is blue .", "before") == f"{CAUTION} the sky is blue ."
    assert with_caution("the sky is blue .", "after") == f"the sky is blue . {CAUTION}"
    assert with_caution("the sky is blue .", "none") == "the sky is blue ."
    with pytest.raises(ConfigError, match="caution must be one of"):
        with_caution("x", "middle")


def test_answer_families_hold_the_true_answer_of_each_item(test_split) -> None:
    texts = ShapesTexts(test_split, seed=0)
    for i in range(len(texts)):
        kind = test_split.question_types[int(test_split[i]["question_type"])]
        assert texts[i]["matching"].answer == ANSWERS[int(test_split[i]["label"])]
        assert texts[i]["corrupted"].answer in ANSWER_FAMILIES[kind]
        assert texts[i]["irrelevant"].answer is None


def test_texts_are_deterministic_per_seed(test_split) -> None:
    first, again = ShapesTexts(test_split, seed=3), ShapesTexts(test_split, seed=3)
    other = ShapesTexts(test_split, seed=4)
    assert first.items == again.items
    assert first.texts("irrelevant") != other.texts("irrelevant")


def test_every_text_encodes_within_the_vocabulary_for_many_seeds(test_split) -> None:
    unk = test_split.tokenizer.token_to_id("<unk>")
    for seed in range(5):
        for caution in ("before", "after"):
            texts = ShapesTexts(test_split, seed=seed, caution=caution)
            for variant in VARIANTS:
                ids = texts.context_ids(variant)  # raises on an unknown or too long text
                assert ids.shape == (len(test_split), CONTEXT_LENGTH)
                assert not (ids == unk).any()


def test_text_labels_index_the_implied_answers(test_split) -> None:
    texts = ShapesTexts(test_split, seed=0)
    corrupted = texts.text_labels("corrupted")
    assert [ANSWERS[int(i)] for i in corrupted] == [t["corrupted"].answer for t in texts.items]
    assert texts.text_labels("irrelevant").tolist() == [-1] * len(test_split)


def test_the_text_words_extend_the_vocabulary_without_moving_old_ids() -> None:
    tokenizer = build_tokenizer()
    old = list(dict.fromkeys((*SPECIAL_TOKENS, *TEMPLATE_WORDS, *ANSWERS)))
    assert [tokenizer.token_to_id(w) for w in old] == list(range(len(old)))
    assert tokenizer.token_to_id("wrong") >= len(old)
