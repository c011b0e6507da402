"""The Shapes-VQA vocabulary: questions, answers, special tokens and the words of texts.

Both the questions (:mod:`.shapes_vqa`) and the texts placed beside them
(:mod:`.shapes_text`) draw their words from here, and the tokenizer
(:func:`.shapes_vqa.build_tokenizer`) is built from all of them, so neither
module needs the other to know the vocabulary.
"""

from __future__ import annotations

from polymodal.data.synth.shapes_render import COLORS, SHAPES

QUESTION_TYPES = ("color", "shape", "count", "exist", "relation")
NUMBERS = ("one", "two", "three", "four", "five", "six")
ANSWERS = (*COLORS, *SHAPES, *NUMBERS, "yes", "no")
"""Every answer; a sample's ``label`` indexes this tuple."""

PAD, UNK, BOS, EOS, IMAGE = "<pad>", "<unk>", "<bos>", "<eos>", "<image>"
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS, IMAGE)
TEMPLATE_WORDS = (
    *("what", "color", "is", "the", "shape", "object", "how", "many", "objects"),
    *("are", "there", "a", "left", "of", "?"),
)
"""The words of the question templates (:mod:`.shapes_vqa`)."""
CAUTION = "this text may be wrong ."
"""The caution sentence a text carries (before it, after it, or not at all)."""

_STATEMENT_WORDS = "the is a object there are objects no left right of ."

# Irrelevant sentences: one phrase from each slot of a pattern, then ".".
_WEATHER = ("sunny", "cloudy", "windy", "rainy", "cold", "warm")
IRRELEVANT_GRAMMAR: tuple[tuple[tuple[str, ...], ...], ...] = (
    (("it is",), _WEATHER, ("today", "tonight")),
    (("it was",), _WEATHER, ("yesterday",)),
    (("it will be",), _WEATHER, ("tomorrow",)),
    (
        ("cats", "dogs", "birds", "horses"),
        ("like", "need", "enjoy"),
        ("water", "sleep", "music", "fresh air"),
    ),
    (
        ("the train", "the bus", "the ferry"),
        ("leaves", "arrives"),
        ("at noon", "at night", "early", "late"),
    ),
    (
        ("my friend", "my sister", "my teacher"),
        ("reads", "writes", "sings"),
        ("every day", "on sundays", "at home"),
    ),
)


def _words(*phrases: str) -> list[str]:
    return [word for phrase in phrases for word in phrase.split()]


TEXT_WORDS: tuple[str, ...] = tuple(
    dict.fromkeys(
        _words(
            CAUTION,
            _STATEMENT_WORDS,
            *(phrase for pattern in IRRELEVANT_GRAMMAR for slot in pattern for phrase in slot),
        )
    )
)
"""Words the texts use, beyond the question words and answers (tokenizer vocabulary)."""
