from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from polymodal.data.synth.shapes_vqa import ANSWERS


def _sample(words: list[int], answer: str, kind: int) -> dict[str, torch.Tensor]:
    """A Shapes-VQA-like sample: question ``words``, ``answer``, question type
    ``kind`` and a grey 16x16 image."""
    text = torch.zeros(12, dtype=torch.long)
    text[: len(words)] = torch.tensor(words)
    return {
        "image": torch.full((3, 16, 16), 0.5),
        "text_ids": text,
        "label": torch.tensor(ANSWERS.index(answer)),
        "question_type": torch.tensor(kind),
    }


@pytest.fixture
def sample() -> Callable[[list[int], str, int], dict[str, torch.Tensor]]:
    """Makes hand-written VQA samples (see :func:`_sample`)."""
    return _sample
