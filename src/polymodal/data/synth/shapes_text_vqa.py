"""Shapes-VQA with texts beside the questions: conditions, mixtures and the data set.

A :class:`Condition` says how an item is asked: with the image or not, and with
which text of :mod:`.shapes_text`, if any. The text-bias probe (the
``analysis/text_bias`` package, which re-exports this module's names) asks items
under these conditions, and the VLM recipe (:mod:`polymodal.train.vlm`) trains on them.

:class:`TextAugmentedVQA` wraps a Shapes-VQA split. Each item is assigned one
:class:`Condition` once, drawn from a
mixture with a fixed seed, and carries that condition's text as ``context_ids``
(what :class:`polymodal.train.vqa_batches.VQACollator` puts beside the question). The
label is the true answer when the image is shown, and the answer the text
implies when it is not (a text-only item).

======================  ======================================================
mixture                 conditions (weights)
======================  ======================================================
``trusting``            image only ½, image + matching text ½: text, when
                        present, is always right (as in caption-rich data)
``trusting_text_only``  image only, image + matching text ⅖ each, text only +
                        matching text ⅕: as ``trusting``, and the model learns
                        to answer from text alone too (so that its text-only
                        answers, which TPR compares against, mean something)
``sft``                 image only, image + matching, + corrupted, +
                        irrelevant text, ¼ each, always the true answer
``sft_text_only``       the four of ``sft`` and text only + corrupted text
                        (the text's answer), ⅕ each
======================  ======================================================

Any other mixture is a mapping from condition names to weights.

Example::

    train = TextAugmentedVQA(load_shapes_vqa("train"), "sft", seed=0)
    loader = DataLoader(train, batch_size=64, collate_fn=VQACollator(fmt))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from polymodal.data.synth.shapes_text import CONTEXT_LENGTH, VARIANTS, ShapesTexts
from polymodal.data.synth.shapes_vocab import PAD
from polymodal.data.synth.shapes_vqa import ShapesVQA
from polymodal.errors import ConfigError


class Condition(NamedTuple):
    """One way of asking an item.

    Attributes:
        image: whether the image is shown.
        text: the text variant placed beside the question (an entry of
            ``VARIANTS``), or None for no text.
    """

    image: bool
    text: str | None

    @property
    def name(self) -> str:
        """``image_only``, ``question_only``, ``image_<variant>`` or ``text_only_<variant>``."""
        if self.text is None:
            return "image_only" if self.image else "question_only"
        return f"{'image' if self.image else 'text_only'}_{self.text}"

    @classmethod
    def parse(cls, name: str) -> Condition:
        """The condition a :attr:`name` stands for.

        Raises:
            ConfigError: an unknown name.
        """
        for condition in ALL_CONDITIONS:
            if condition.name == name:
                return condition
        known = ", ".join(c.name for c in ALL_CONDITIONS)
        raise ConfigError(f"unknown condition {name!r}; known: {known}")


IMAGE_ONLY = Condition(True, None)
TEXT_POSITIONS = ("before", "after", "both")
"""Where a training text goes relative to the question (``both``: half and half)."""
ALL_CONDITIONS = (
    IMAGE_ONLY,
    Condition(False, None),
    *(Condition(False, v) for v in VARIANTS),
    *(Condition(True, v) for v in VARIANTS),
)
PROBE_CONDITIONS = (
    IMAGE_ONLY,
    *(Condition(False, v) for v in VARIANTS),
    *(Condition(True, v) for v in VARIANTS),
)
"""The conditions of the probe: image-only, and text-only and image+text per variant."""

MIXTURES: dict[str, dict[str, float]] = {
    "trusting": {"image_only": 0.5, "image_matching": 0.5},
    "trusting_text_only": {"image_only": 0.4, "image_matching": 0.4, "text_only_matching": 0.2},
    "sft": {
        "image_only": 0.25,
        "image_matching": 0.25,
        "image_corrupted": 0.25,
        "image_irrelevant": 0.25,
    },
    "sft_text_only": {
        "image_only": 0.2,
        "image_matching": 0.2,
        "image_corrupted": 0.2,
        "image_irrelevant": 0.2,
        "text_only_corrupted": 0.2,
    },
}


def parse_mixture(mixture: str | Mapping[str, float]) -> dict[Condition, float]:
    """Conditions and their probabilities (weights normalised to sum to 1).

    Raises:
        ConfigError: an unknown mixture or condition, a negative or all-zero
            weight, or a text-only condition whose text implies no answer.
    """
    if isinstance(mixture, str):
        if mixture not in MIXTURES:
            raise ConfigError(f"unknown text mixture {mixture!r}; known: {', '.join(MIXTURES)}")
        mixture = MIXTURES[mixture]
    weights = {Condition.parse(name): float(w) for name, w in mixture.items()}
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ConfigError(f"mixture weights must be >= 0 and not all 0, got {dict(mixture)}")
    for condition in weights:
        if not condition.image and condition.text in (None, "irrelevant"):
            raise ConfigError(
                f"{condition.name} has no answer to learn: without the image, only a "
                "matching or corrupted text says what to answer"
            )
    total = sum(weights.values())
    return {c: w / total for c, w in weights.items()}


class TextAugmentedVQA(Dataset[dict[str, Tensor]]):
    """A Shapes-VQA split whose items carry texts drawn from a mixture (module doc).

    A sample is the base sample plus ``context_ids`` (CONTEXT_LENGTH,) (all
    ``<pad>`` without text), ``condition`` () int64, the index of its condition
    in :attr:`conditions`, and ``context_after`` () bool, whether its text goes
    after the question; a text-only sample has no ``image`` and its ``label`` is
    the text's answer.

    Args:
        base: the split.
        mixture: a name in :data:`MIXTURES` or condition name -> weight.
        seed: draws the texts (:class:`ShapesTexts`) and the conditions.
        caution: where the caution sentence goes, ``"before"``, ``"after"`` the
            text or ``"none"``.
        position: where the text goes: ``"before"`` or ``"after"`` the question, or
            ``"both"`` (each item's side drawn with ``seed``, half and half), so a
            model probed on either side has been trained on it.
    """

    def __init__(
        self,
        base: ShapesVQA,
        mixture: str | Mapping[str, float] = "sft",
        seed: int = 0,
        caution: str = "before",
        position: str = "before",
    ) -> None:
        if position not in TEXT_POSITIONS:
            raise ConfigError(f"text position must be one of {TEXT_POSITIONS}, got {position!r}")
        probabilities = parse_mixture(mixture)
        self.base = base
        self.texts = ShapesTexts(base, seed, caution)
        self.conditions = list(probabilities)
        rng = np.random.default_rng([seed, len(base)])
        self.assigned = torch.from_numpy(
            rng.choice(len(self.conditions), size=len(base), p=list(probabilities.values()))
        )
        if position == "both":  # its own stream: the conditions stay as drawn above
            sides = np.random.default_rng([seed, len(base), 1]).random(len(base)) < 0.5
            self.after = torch.from_numpy(sides)
        else:
            self.after = torch.full((len(base),), position == "after")
        self._no_text = torch.full((CONTEXT_LENGTH,), base.tokenizer.token_to_id(PAD))
        self._text_labels = {v: self.texts.text_labels(v) for v in VARIANTS}

    def __len__(self) -> int:
        return len(self.base)

    def condition(self, index: int) -> Condition:
        """The condition item ``index`` is asked under."""
        return self.conditions[int(self.assigned[index])]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        sample = dict(self.base[index])
        condition = self.condition(index)
        sample["context_ids"] = self._no_text
        sample["condition"] = self.assigned[index]
        sample["context_after"] = self.after[index]
        if condition.text is not None:
            sample["context_ids"] = self.texts.context_ids(condition.text)[index]
            if not condition.image:  # text-only: learn the answer the text gives
                del sample["image"]
                sample["label"] = self._text_labels[condition.text][index]
        return sample
