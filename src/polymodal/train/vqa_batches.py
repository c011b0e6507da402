"""Batches of the VQA recipe: prompts, answers and images of Shapes-VQA as token rows.

Training rows are conversations about one image, each answer supervised::

    <bos> <image>×M  question₁ answer₁  question₂ answer₂ …  <eos>

evaluation rows one left-padded question each::

    <bos> <image>×M  question words ?  answer <eos>
    └──────── prompt (no loss) ───────┘

Images are normalised with CLIP's pixel mean and standard deviation, as LLaVA's
processor does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.utils.data import Dataset

from polymodal.data.synth.shapes_vocab import ANSWERS, BOS, EOS, IMAGE, PAD
from polymodal.errors import ConfigError

PIXEL_MEAN = (0.48145466, 0.4578275, 0.40821073)
PIXEL_STD = (0.26862954, 0.26130258, 0.27577711)
"""CLIP's image normalisation (what LLaVA's processor applies)."""


class PromptFormat(NamedTuple):
    """Token ids the VQA sequences are made of.

    Attributes:
        bos, eos, pad, image: special token ids.
        num_visual_tokens: M, the ``<image>`` placeholders per prompt.
        answer_ids: (A,) token id of each entry of ``ANSWERS``.
    """

    bos: int
    eos: int
    pad: int
    image: int
    num_visual_tokens: int
    answer_ids: Tensor

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, num_visual_tokens: int) -> PromptFormat:
        return cls(
            bos=tokenizer.token_to_id(BOS),
            eos=tokenizer.token_to_id(EOS),
            pad=tokenizer.token_to_id(PAD),
            image=tokenizer.token_to_id(IMAGE),
            num_visual_tokens=num_visual_tokens,
            answer_ids=torch.tensor([tokenizer.token_to_id(a) for a in ANSWERS]),
        )


@dataclass
class VQABatch:
    """A batch of VQA sequences (left-padded; every row ends ``answer <eos>``).

    Attributes:
        input_ids: (B, T) prompt, answer and ``<eos>``.
        attention_mask: (B, T) 1 on tokens, 0 on padding.
        labels: (B, T) the answer(s) and ``<eos>``, -100 elsewhere.
        pixel_values: (B', 3, H, W) normalised images of the rows that have one
            (B' = B unless some rows are text-only), None when no row has one.
        answer_ids: (Q,) token id of each question's answer (Q = B, or the number of
            questions when rows are conversations).
        question_type: (Q,) index into ``QUESTION_TYPES``.
    """

    input_ids: Tensor
    attention_mask: Tensor
    labels: Tensor
    pixel_values: Tensor | None
    answer_ids: Tensor
    question_type: Tensor

    def prompt(self) -> tuple[Tensor, Tensor]:
        """(B, T − 2) prompt ids and mask: single-question rows without ``answer <eos>``."""
        return self.input_ids[:, :-2], self.attention_mask[:, :-2]


def normalize_pixels(image: Tensor) -> Tensor:
    """(B, 3, H, W) images in [0, 1] -> CLIP-normalised ``pixel_values``."""
    mean = image.new_tensor(PIXEL_MEAN).view(1, 3, 1, 1)
    std = image.new_tensor(PIXEL_STD).view(1, 3, 1, 1)
    return (image - mean) / std


class VQACollator:
    """Turns Shapes-VQA samples into a :class:`VQABatch`.

    A sample may carry ``context_ids`` (L,), a text right-padded with ``<pad>``
    (all ``<pad>``: no text), which goes before or after the question::

        <bos> <image>×M  context question  answer <eos>    context_position="before"
        <bos> <image>×M  question context  answer <eos>    context_position="after"

    A sample without ``image`` is text-only: its row has no ``<image>``
    placeholders and ``pixel_values`` holds the other rows' images (LLaVA fills
    the placeholders with them in order). The image is left out rather than
    replaced by a blank one, because a blank image still gives M visual tokens
    that the answer can depend on: leaving it out is what text-only means.

    Called on a list of *conversations* (each a list of samples about one image,
    as :class:`SceneConversations` yields them), it makes one row per image with
    every question in turn, each answer supervised::

        <bos> <image>×M  question₁ answer₁  question₂ answer₂ …  <eos>

    Args:
        fmt: the prompt's token ids.
        context_position: where a context goes, ``"before"`` or ``"after"`` the
            question, for samples without a ``context_after`` flag (text-augmented
            training samples carry one).
        question_loss: label the question words too (next-token loss on the text,
            as a language model learns its language), not only the answers.
    """

    def __init__(
        self, fmt: PromptFormat, context_position: str = "before", question_loss: bool = False
    ) -> None:
        if context_position not in ("before", "after"):
            raise ConfigError(
                f"context_position must be 'before' or 'after', got {context_position!r}"
            )
        self.fmt = fmt
        self.context_position = context_position
        self.question_loss = question_loss

    def _turn(self, sample: dict[str, Tensor]) -> list[int]:
        """The words of one question turn: the question and its context, no answer."""
        pad = self.fmt.pad
        words = sample["text_ids"][sample["text_ids"] != pad].tolist()
        if "context_ids" in sample:
            context = sample["context_ids"][sample["context_ids"] != pad].tolist()
            after = bool(sample.get("context_after", self.context_position == "after"))
            words = words + context if after else context + words
        return words

    def _row(self, turns: Sequence[dict[str, Tensor]]) -> tuple[list[int], list[int]]:
        """One unpadded sequence of question turns about one image, and its labels."""
        fmt = self.fmt
        image = [fmt.image] * fmt.num_visual_tokens if "image" in turns[0] else []
        tokens, labels = [fmt.bos, *image], [-100] * (1 + len(image))
        for sample in turns:
            words = self._turn(sample)
            answer = int(fmt.answer_ids[sample["label"]])
            tokens += [*words, answer]
            labels += (words if self.question_loss else [-100] * len(words)) + [answer]
        return [*tokens, fmt.eos], [*labels, fmt.eos]

    def __call__(
        self, samples: Sequence[dict[str, Tensor]] | Sequence[Sequence[dict[str, Tensor]]]
    ) -> VQABatch:
        conversations = [[s] if isinstance(s, dict) else list(s) for s in samples]
        rows = [self._row(turns) for turns in conversations]
        flat = [sample for turns in conversations for sample in turns]
        images = [turns[0]["image"] for turns in conversations if "image" in turns[0]]
        length = max(len(tokens) for tokens, _ in rows)
        input_ids = torch.full((len(rows), length), self.fmt.pad, dtype=torch.long)
        labels = torch.full_like(input_ids, -100)
        attention_mask = torch.zeros(len(rows), length, dtype=torch.long)
        for i, (tokens, row_labels) in enumerate(rows):  # left padding
            input_ids[i, length - len(tokens) :] = torch.tensor(tokens)
            labels[i, length - len(tokens) :] = torch.tensor(row_labels)
            attention_mask[i, length - len(tokens) :] = 1
        return VQABatch(
            input_ids=input_ids,
            attention_mask=attention_mask,
            labels=labels,
            pixel_values=normalize_pixels(torch.stack(images)) if images else None,
            answer_ids=self.fmt.answer_ids[torch.stack([s["label"] for s in flat])],
            question_type=torch.stack([s["question_type"] for s in flat]),
        )


class SceneConversations(Dataset[list[dict[str, Tensor]]]):
    """Groups a VQA split's items by image: item ``i`` is every question about scene ``i``.

    Args:
        items: a dataset of samples (Shapes-VQA or a wrapper of it).
        scene: (N,) scene index of each item; a scene's items are consecutive.
    """

    def __init__(self, items: Dataset[dict[str, Tensor]], scene: Tensor) -> None:
        self.items = items
        _, counts = torch.unique_consecutive(scene, return_counts=True)
        ends = counts.cumsum(0)
        self.bounds = torch.stack([ends - counts, ends], dim=1).tolist()

    def __len__(self) -> int:
        return len(self.bounds)

    def __getitem__(self, index: int) -> list[dict[str, Tensor]]:
        start, end = self.bounds[index]
        return [self.items[i] for i in range(start, end)]
