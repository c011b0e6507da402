"""The affordance words as text embeddings, encoded once by a frozen text encoder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from torch import Tensor, nn

from polymodal.errors import ConfigError, DataError
from polymodal.modules.text_encoder import TextEncoderOutput, masked_mean


class Encodes(Protocol):
    def encode(self, texts: Sequence[str]) -> TextEncoderOutput: ...


class AffordanceTexts(nn.Module):
    """Sentence embeddings (mean of the final tokens) of a fixed list of affordance
    words, kept as a buffer: the text encoder runs once, at construction.

    Args:
        words: the affordances, in label order (``words[k]`` names label k).
        encoder: e.g. :func:`~polymodal.hf.text_encoder.load_minilm` ``()``; None
            leaves zeros (for loading stored embeddings with the model's weights).
        text_dim: embedding width when ``encoder`` is None.
    """

    embeddings: Tensor

    def __init__(self, words: Sequence[str], encoder: Encodes | None, text_dim: int = 384) -> None:
        super().__init__()
        if not words or len(set(words)) != len(words):
            raise ConfigError(f"affordance words must be distinct and non-empty, got {list(words)}")
        self.words = tuple(words)
        if encoder is None:
            embeddings = torch.zeros(len(words), text_dim)
        else:
            with torch.no_grad():
                out = encoder.encode(list(self.words))
                embeddings = masked_mean(out.last, out.attention_mask).float()
        self.register_buffer("embeddings", embeddings)  # (K, T)

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def index(self, words: Sequence[str]) -> Tensor:
        """(B,) label indices of affordance words.

        Raises:
            DataError: a word the text encoder was not given.
        """
        unknown = [w for w in words if w not in self.words]
        if unknown:
            raise DataError(
                f"affordance {unknown[0]!r} was not given to the text encoder; known: "
                f"{', '.join(self.words)} (rebuild the model with it in its affordances)"
            )
        return torch.tensor([self.words.index(w) for w in words], dtype=torch.long)

    def forward(self, labels: Tensor) -> Tensor:
        """(B, T) text embeddings of (B,) label indices."""
        return self.embeddings[labels]
