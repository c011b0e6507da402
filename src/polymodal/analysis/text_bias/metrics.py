"""Text-bias metrics of Words or Vision (arXiv 2503.02199): accuracy, whom answers follow, TPR.

Each item is asked image-only, text-only and image+text; its three answers are
compared after :func:`normalize_answer`. The image+text answer

- **follows text** when it equals the text-only answer and not the image-only one;
- **follows image** when it equals the image-only answer and not the text-only one;
- is **same** when it equals both (image and text agree: left out of the ratio);
- is **neither** when it equals neither, or when it is no answer at all: empty,
  a special token (``<eos>``, ``[PAD]``) or, where the probe knows the answer
  vocabulary, a word outside it. An empty answer never "agrees" with another
  empty answer, so a model that says nothing cannot look text-biased.

The text preference ratio is **TPR = #text / (#text + #image)** (NaN when both are
zero). Accuracy is the share of answers equal to the normalised truth.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from polymodal.data.synth.shapes_text_vqa import ALL_CONDITIONS, IMAGE_ONLY, Condition
from polymodal.errors import DataError

ARTICLES = ("a", "an", "the")
NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
    )
}
"""Number words written as digits, as the VQA answer normalisation does ("two" = "2")."""
_PUNCTUATION = re.compile(r"[^\w\s]")
_SPECIAL_TOKEN = re.compile(r"<[^<>\s]*>|\[[A-Z_]+\]")


def normalize_answer(answer: str) -> str:
    """Lower case, punctuation to spaces, number words to digits, articles dropped.

    Example: ``"The Two."`` -> ``"2"``; ``"a red one!"`` -> ``"red 1"``.
    """
    words = _PUNCTUATION.sub(" ", answer.lower()).split()
    return " ".join(NUMBER_WORDS.get(w, w) for w in words if w not in ARTICLES)


def is_answer(answer: str, vocabulary: frozenset[str] | None = None) -> bool:
    """Whether ``answer`` says anything: not empty after normalisation, no special
    token in it, and (when ``vocabulary`` is given) a normalised member of it.

    Args:
        answer: a raw answer.
        vocabulary: normalised answers the model may give, or None for free text.
    """
    if _SPECIAL_TOKEN.search(answer):
        return False
    normal = normalize_answer(answer)
    return bool(normal) and (vocabulary is None or normal in vocabulary)


def answer_vocabulary(answers: Sequence[str] | None) -> frozenset[str] | None:
    """The normalised set of ``answers`` (None stays None: free-text answers)."""
    return None if answers is None else frozenset(normalize_answer(a) for a in answers)


def follows(
    alone: str, read: str, both: str, vocabulary: frozenset[str] | None = None
) -> tuple[bool, bool]:
    """Whether the image+text answer ``both`` follows the text-only answer ``read``
    alone, and the image-only answer ``alone`` alone (at most one is True).

    Only real answers match (:func:`is_answer`): an empty or special-token answer on
    either side is never a match.
    """
    if not is_answer(both, vocabulary):
        return False, False
    said = normalize_answer(both)
    as_text = is_answer(read, vocabulary) and normalize_answer(read) == said
    as_image = is_answer(alone, vocabulary) and normalize_answer(alone) == said
    return as_text and not as_image, as_image and not as_text


class FollowCounts(NamedTuple):
    """How many image+text answers follow the text, the image, both or neither."""

    text: int
    image: int
    same: int
    neither: int

    @property
    def tpr(self) -> float:
        """#text / (#text + #image); NaN when no item follows either alone."""
        decided = self.text + self.image
        return self.text / decided if decided else math.nan


def follow_counts(
    image_only: Sequence[str],
    text_only: Sequence[str],
    image_text: Sequence[str],
    vocabulary: frozenset[str] | None = None,
) -> FollowCounts:
    """Count whom each image+text answer follows (see the module doc).

    Args:
        image_only: N answers without text.
        text_only: N answers without the image.
        image_text: N answers with both.
        vocabulary: the normalised answer vocabulary, or None (free text).

    Returns:
        :class:`FollowCounts` over the N items.
    """
    if not len(image_only) == len(text_only) == len(image_text):
        raise DataError(
            f"answer lists differ in length: image-only {len(image_only)}, "
            f"text-only {len(text_only)}, image+text {len(image_text)}"
        )
    text = image = same = 0
    for alone, read, both in zip(image_only, text_only, image_text, strict=True):
        to_text, to_image = follows(alone, read, both, vocabulary)
        text += to_text
        image += to_image
        same += is_answer(both, vocabulary) and normalize_answer(both) == normalize_answer(
            read
        ) == normalize_answer(alone)
    return FollowCounts(text, image, same, len(image_text) - text - image - same)


def accuracy(answers: Sequence[str], truth: Sequence[str]) -> float:
    """Share of ``answers`` equal to ``truth`` after normalisation (NaN for none)."""
    if len(answers) != len(truth):
        raise DataError(f"{len(answers)} answers for {len(truth)} true answers")
    hits = [normalize_answer(a) == normalize_answer(t) for a, t in zip(answers, truth, strict=True)]
    return sum(hits) / len(hits) if hits else math.nan


class ConditionRow(NamedTuple):
    """One row of the text-bias table (None where a column does not apply)."""

    condition: str
    accuracy: float
    says_text: float | None
    text: int | None
    image: int | None
    same: int | None
    neither: int | None
    tpr: float | None


ROW_COLUMNS = ConditionRow._fields


@dataclass
class TextBiasResult:
    """The answers of one probe run and what they measure.

    Attributes:
        truth: N true answers.
        question_types: N question-type names.
        answers: condition name (:attr:`Condition.name`) -> N answers.
        text_answers: text variant -> N answers each text implies (None: none).
        position: where the texts stood, ``"before"`` or ``"after"`` the question.
        vocabulary: the answers the model may give (others count as no answer), or
            None for free-text answers.
    """

    truth: list[str]
    question_types: list[str]
    answers: dict[str, list[str]]
    text_answers: dict[str, list[str | None]]
    position: str = "before"
    vocabulary: tuple[str, ...] | None = None

    def accuracy(self, condition: str) -> float:
        """Accuracy of the answers under ``condition``."""
        return accuracy(self.answers[condition], self.truth)

    def hits(self, condition: str) -> list[bool]:
        """Per item: the answer under ``condition`` equals the truth (after normalisation)."""
        return [
            normalize_answer(a) == normalize_answer(t)
            for a, t in zip(self.answers[condition], self.truth, strict=True)
        ]

    def follows(self, variant: str) -> tuple[list[bool], list[bool]]:
        """Per item: whether the image+``variant`` answer follows the text, and the image.

        Returns:
            Two lists of N flags (text, image); an item has at most one of them set,
            and :meth:`counts` is their sums.
        """
        alone = self.answers[IMAGE_ONLY.name]
        read = self.answers[Condition(False, variant).name]
        both = self.answers[Condition(True, variant).name]
        vocabulary = answer_vocabulary(self.vocabulary)
        flags = [follows(*answers, vocabulary) for answers in zip(alone, read, both, strict=True)]
        return [t for t, _ in flags], [i for _, i in flags]

    def accuracy_by_type(self, condition: str) -> dict[str, float]:
        """Accuracy under ``condition`` per question type."""
        answers = self.answers[condition]
        return {
            kind: accuracy(
                [a for a, k in zip(answers, self.question_types, strict=True) if k == kind],
                [t for t, k in zip(self.truth, self.question_types, strict=True) if k == kind],
            )
            for kind in dict.fromkeys(self.question_types)
        }

    def counts(self, variant: str) -> FollowCounts:
        """Whom the image+``variant`` answers follow."""
        return follow_counts(
            self.answers[IMAGE_ONLY.name],
            self.answers[Condition(False, variant).name],
            self.answers[Condition(True, variant).name],
            answer_vocabulary(self.vocabulary),
        )

    def tpr(self, variant: str) -> float:
        """TPR of the image+``variant`` answers; NaN when a needed condition was not run."""
        needed = (IMAGE_ONLY, Condition(False, variant), Condition(True, variant))
        if any(c.name not in self.answers for c in needed):
            return math.nan
        return self.counts(variant).tpr

    def says_text(self, condition: str) -> float | None:
        """Share of answers equal to the answer the text implies, over items whose text implies one.

        None for a condition without text or a text that never implies an answer.
        """
        variant = Condition.parse(condition).text
        if variant is None:
            return None
        pairs = [
            (a, t)
            for a, t in zip(self.answers[condition], self.text_answers[variant], strict=True)
            if t is not None
        ]
        return accuracy([a for a, _ in pairs], [t for _, t in pairs]) if pairs else None

    def rows(self) -> list[ConditionRow]:
        """One :class:`ConditionRow` per condition run, in a fixed order."""
        rows = []
        for condition in ALL_CONDITIONS:
            if condition.name not in self.answers:
                continue
            counts: tuple[Any, ...] = (None,) * 5
            partners = (IMAGE_ONLY.name, Condition(False, condition.text).name)
            if condition.image and condition.text and all(p in self.answers for p in partners):
                found = self.counts(condition.text)
                counts = (*found, found.tpr)
            name = condition.name
            rows.append(ConditionRow(name, self.accuracy(name), self.says_text(name), *counts))
        return rows

    def to_dict(self) -> dict[str, Any]:
        """The table, per-type accuracy and every answer, for JSON."""
        return {
            "position": self.position,
            "vocabulary": self.vocabulary,
            "items": len(self.truth),
            "table": [row._asdict() for row in self.rows()],
            "accuracy_by_type": {c: self.accuracy_by_type(c) for c in self.answers},
            "truth": self.truth,
            "question_types": self.question_types,
            "answers": self.answers,
            "text_answers": self.text_answers,
        }
