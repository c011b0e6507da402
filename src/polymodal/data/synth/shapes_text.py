"""Text variations for Shapes-VQA items: matching, corrupted and irrelevant texts.

Every item gets three texts, worded from its question and answer:

==========  ===================================  ======================================
variant     example (``what color is the         the answer it implies
            triangle ?``, answer red)
==========  ===================================  ======================================
matching    the triangle is red .                the true answer
corrupted   the triangle is green .              a wrong answer of the same family
irrelevant  the bus arrives at noon .            none
==========  ===================================  ======================================

The wording per question type: ``color`` "the {shape} is {color} ."; ``shape``
"the {color} object is a {shape} ."; ``count`` "there are {n} objects ." (or
"there is one object ."); ``exist`` "there is a / no {color} {shape} .";
``relation`` "the {A} is left / right of the {B} .". A corrupted text keeps the
wording and swaps the answer for another of its family (colour for colour, shape
for shape, number for number, yes for no), drawn uniformly. An irrelevant text
comes from a small grammar (weather, animals, buses, people) that uses no answer
word. Each text carries a caution sentence, :data:`CAUTION`, before it (or after
it, or none).

Randomness is per item: item ``i`` of split ``s`` draws from
``default_rng([seed, s, i])``, so an item's texts do not depend on the other items.
Every word is in the Shapes-VQA tokenizer (:data:`.shapes_vocab.TEXT_WORDS` is the
vocabulary added for them); :meth:`ShapesTexts.context_ids` encodes a variant for a whole
split, ``<pad>``-padded to :data:`CONTEXT_LENGTH`.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from polymodal.data.synth.shapes_render import COLORS, SHAPES
from polymodal.data.synth.shapes_vocab import (
    ANSWERS,
    CAUTION,
    IRRELEVANT_GRAMMAR,
    NUMBERS,
    QUESTION_TYPES,
)
from polymodal.data.synth.shapes_vqa import SPLITS, ShapesVQA, encode
from polymodal.errors import ConfigError, DataError

VARIANTS = ("matching", "corrupted", "irrelevant")
CAUTION_PLACES = ("before", "after", "none")
CONTEXT_LENGTH = 16
"""Stored length of a context text (the longest, caution included, has 15 tokens)."""

ANSWER_FAMILIES: dict[str, tuple[str, ...]] = {
    "color": COLORS,
    "shape": SHAPES,
    "count": NUMBERS,
    "exist": ("yes", "no"),
    "relation": ("yes", "no"),
}
"""The answers a question type can have; a corrupted text draws from its family."""

# Question templates of Shapes-VQA, with the slots the statements reuse.
_QUESTION_PATTERNS = {
    "color": re.compile(r"what color is the (?P<shape>\w+) \?"),
    "shape": re.compile(r"what shape is the (?P<color>\w+) object \?"),
    "count": re.compile(r"how many objects are there \?"),
    "exist": re.compile(r"is there a (?P<thing>\w+ \w+) \?"),
    "relation": re.compile(r"is the (?P<first>\w+ \w+) left of the (?P<second>\w+ \w+) \?"),
}


class ItemText(NamedTuple):
    """One text of one item.

    Attributes:
        variant: one of :data:`VARIANTS`.
        text: the words, caution sentence included, space-separated.
        answer: the answer the text implies (an entry of ``ANSWERS``), None when
            it implies none (irrelevant text).
    """

    variant: str
    text: str
    answer: str | None


def statement(kind: str, question: str, answer: str) -> str:
    """The sentence that states ``answer`` to ``question`` in natural wording.

    Args:
        kind: the question type (an entry of ``QUESTION_TYPES``).
        question: the question as Shapes-VQA writes it (space-separated words).
        answer: any answer of the type's family (true or not).

    Returns:
        The sentence, e.g. ``"the triangle is red ."``.

    Raises:
        DataError: the question does not follow its type's template, or the
            answer is not of the type's family.
    """
    pattern = _QUESTION_PATTERNS.get(kind)
    match = pattern.fullmatch(question) if pattern is not None else None
    if match is None:
        raise DataError(f"{question!r} is not a Shapes-VQA {kind!r} question")
    if answer not in ANSWER_FAMILIES[kind]:
        raise DataError(f"{answer!r} is not an answer to a {kind!r} question")
    slots = match.groupdict()
    if kind == "color":
        return f"the {slots['shape']} is {answer} ."
    if kind == "shape":
        return f"the {slots['color']} object is a {answer} ."
    if kind == "count":
        return "there is one object ." if answer == "one" else f"there are {answer} objects ."
    if kind == "exist":
        return f"there is {'a' if answer == 'yes' else 'no'} {slots['thing']} ."
    side = "left" if answer == "yes" else "right"
    return f"the {slots['first']} is {side} of the {slots['second']} ."


def wrong_answer(kind: str, answer: str, rng: np.random.Generator) -> str:
    """An answer of ``answer``'s family other than ``answer``, drawn uniformly."""
    others = [a for a in ANSWER_FAMILIES[kind] if a != answer]
    return others[int(rng.integers(len(others)))]


def irrelevant_sentence(rng: np.random.Generator) -> str:
    """A sentence from :data:`IRRELEVANT_GRAMMAR` (a uniform pattern, then phrases)."""
    pattern = IRRELEVANT_GRAMMAR[int(rng.integers(len(IRRELEVANT_GRAMMAR)))]
    return " ".join(slot[int(rng.integers(len(slot)))] for slot in pattern) + " ."


def with_caution(text: str, caution: str = "before") -> str:
    """``text`` with :data:`CAUTION` before or after it (``caution="none"``: unchanged)."""
    if caution not in CAUTION_PLACES:
        raise ConfigError(f"caution must be one of {CAUTION_PLACES}, got {caution!r}")
    if caution == "none":
        return text
    return f"{CAUTION} {text}" if caution == "before" else f"{text} {CAUTION}"


def item_texts(
    kind: str, question: str, answer: str, rng: np.random.Generator, caution: str = "before"
) -> dict[str, ItemText]:
    """The matching, corrupted and irrelevant text of one item.

    Args:
        kind: the question type.
        question: the question's words.
        answer: the true answer.
        rng: draws the wrong answer, then the irrelevant sentence.
        caution: where the caution sentence goes (see :func:`with_caution`).

    Returns:
        Variant name -> :class:`ItemText`, in the order of :data:`VARIANTS`.
    """
    wrong = wrong_answer(kind, answer, rng)
    return {
        "matching": ItemText(
            "matching", with_caution(statement(kind, question, answer), caution), answer
        ),
        "corrupted": ItemText(
            "corrupted", with_caution(statement(kind, question, wrong), caution), wrong
        ),
        "irrelevant": ItemText("irrelevant", with_caution(irrelevant_sentence(rng), caution), None),
    }


class ShapesTexts:
    """The three texts of every item of a Shapes-VQA split.

    Args:
        dataset: the split.
        seed: base seed of the per-item draws (see the module doc).
        caution: where the caution sentence goes: ``"before"``, ``"after"`` the
            text, or ``"none"``.
    """

    def __init__(self, dataset: ShapesVQA, seed: int = 0, caution: str = "before") -> None:
        self.dataset = dataset
        self.seed = seed
        self.caution = caution
        split = SPLITS.index(dataset.split) if dataset.split in SPLITS else len(SPLITS)
        kinds = dataset.tensors["question_type"].tolist()
        labels = dataset.tensors["label"].tolist()
        self.items = [
            item_texts(
                QUESTION_TYPES[kinds[i]],
                dataset.question(i),
                ANSWERS[labels[i]],
                np.random.default_rng([seed, split, i]),
                caution,
            )
            for i in range(len(dataset))
        ]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, ItemText]:
        return self.items[index]

    def texts(self, variant: str) -> list[str]:
        """The ``variant`` text of every item."""
        _check_variant(variant)
        return [item[variant].text for item in self.items]

    def text_labels(self, variant: str) -> Tensor:
        """(N,) int64 index in ``ANSWERS`` of each text's answer, −1 where it implies none."""
        _check_variant(variant)
        answers = [item[variant].answer for item in self.items]
        return torch.tensor([-1 if a is None else ANSWERS.index(a) for a in answers])

    def context_ids(self, variant: str) -> Tensor:
        """(N, CONTEXT_LENGTH) int64 token ids of the ``variant`` texts, ``<pad>``-padded,
        with the split's tokenizer.

        Raises:
            DataError: a word outside the tokenizer (a tokenizer older than these texts).
        """
        _check_variant(variant)
        return self._encoded[variant]

    @cached_property
    def _encoded(self) -> dict[str, Tensor]:
        tokenizer = self.dataset.tokenizer
        return {v: encode(tokenizer, self.texts(v), CONTEXT_LENGTH) for v in VARIANTS}


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ConfigError(f"text variant must be one of {VARIANTS}, got {variant!r}")
