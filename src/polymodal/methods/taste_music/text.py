"""Descriptions to vectors with the pretrained MiniLM sentence encoder, frozen.

The encoder is loaded once per process and kept outside every model's
``state_dict`` (it is never trained, so checkpoints stay small); each distinct
description is embedded once and remembered, as a corpus repeats its phrasings.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from polymodal.hf.text_encoder import TextEncoder, load_minilm
from polymodal.modules.text_encoder import masked_mean

TEXT_DIM = 384
"""Width of the MiniLM sentence embedding."""


@functools.cache
def _minilm() -> TextEncoder:
    return load_minilm(max_length=64)


class DescriptionEmbedder:
    """Sentence embeddings (mean of MiniLM's last tokens, L2-normalised), cached per text."""

    def __init__(self) -> None:
        self._seen: dict[str, Tensor] = {}

    def __call__(self, texts: Sequence[str]) -> Tensor:
        """(B, 384) float32 embeddings of ``texts`` on the CPU."""
        new = sorted({t for t in texts if t not in self._seen})
        if new:
            with torch.no_grad():
                out = _minilm().encode(new)
                vectors = F.normalize(masked_mean(out.last, out.attention_mask), dim=-1)
            self._seen.update(zip(new, vectors.float().cpu(), strict=True))
        return torch.stack([self._seen[t] for t in texts])
