"""A stand-in text encoder: fixed, distinct embeddings per word, no model files."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch

from polymodal.methods.bit_align.text import AffordanceTexts
from polymodal.modules.text_encoder import TextEncoderOutput

WORDS = ("grasp", "cut", "pour")


class HashedWords:
    """``encode`` gives each word one token: a vector seeded by the word's letters."""

    def __init__(self, dim: int = 12) -> None:
        self.dim = dim

    def encode(self, texts: Sequence[str]) -> TextEncoderOutput:
        rows = [
            torch.randn(self.dim, generator=torch.Generator().manual_seed(sum(map(ord, t))))
            for t in texts
        ]
        last = torch.stack(rows)[:, None]  # (B, 1, T)
        return TextEncoderOutput(last, (last,), torch.ones(len(texts), 1, dtype=torch.long))


@pytest.fixture
def texts() -> AffordanceTexts:
    return AffordanceTexts(WORDS, HashedWords())
