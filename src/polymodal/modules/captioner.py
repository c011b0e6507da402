"""A small encoder-decoder captioner: modality tokens in, a token sequence out.

Each modality's encoder tokens are projected to the decoder width and concatenated
into a memory; a causal transformer decoder attends to it and predicts the next
token. Sequences follow the ``tokens`` target of the data contract: they start with
a BOS id, end with an EOS id, and are padded with -100 (which the loss ignores).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from polymodal.data.contract import present
from polymodal.errors import ConfigError, DataError
from polymodal.modules.classifier import build_encoders

PAD_TARGET = -100


class GenerationOutput(NamedTuple):
    """What :class:`Captioner` returns.

    Attributes:
        logits: (B, L - 1, V) scores of tokens 1..L-1 given the tokens before each.
    """

    logits: Tensor


class Captioner(nn.Module):
    """Encoders, a memory of their tokens, and a causal transformer decoder.

    Args:
        encoders: ``{modality: encoder}`` mapping (B, ...) to (B, N, D_m) tokens.
        vocab_size: V, the number of token ids.
        dim: decoder width.
        depth: decoder layers.
        num_heads: attention heads.
        max_length: longest sequence, BOS and EOS included.
        bos, eos: the ids that start and end a sequence.
        pad: the input id written where a target holds -100 (never predicted).
    """

    def __init__(
        self,
        encoders: Mapping[str, nn.Module],
        vocab_size: int,
        dim: int = 64,
        depth: int = 2,
        num_heads: int = 4,
        max_length: int = 32,
        bos: int = 1,
        eos: int = 2,
        pad: int = 0,
    ) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict(encoders)
        self.adapters = nn.ModuleDict({m: nn.Linear(e.dim, dim) for m, e in encoders.items()})
        self.vocab_size, self.max_length = vocab_size, max_length
        self.bos, self.eos, self.pad = bos, eos, pad
        self.token_embed = nn.Embedding(vocab_size, dim)
        self.pos_embed = nn.Parameter(torch.randn(1, max_length, dim) * 0.02)
        layer = nn.TransformerDecoderLayer(
            dim, num_heads, 4 * dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.decoder = nn.TransformerDecoder(layer, depth)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab_size)

    def memory(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """(B, M, D) memory of every present modality's tokens, and its (B, M) padding
        mask (True = a token of a modality the sample lacks)."""
        parts, padding = [], []
        for name, encoder in self.encoders.items():
            here = present(batch, name)
            if here is None:
                continue
            tokens = self.adapters[name](encoder(batch[name]))  # (B, N, D)
            parts.append(tokens)
            padding.append((~here)[:, None].expand(-1, tokens.shape[1]))
        if not parts:
            raise DataError(f"batch has none of {list(self.encoders)}; got keys {sorted(batch)}")
        return torch.cat(parts, dim=1), torch.cat(padding, dim=1)

    def _decode(self, inputs: Tensor, memory: Tensor, memory_padding: Tensor) -> Tensor:
        length = inputs.shape[1]
        if length > self.max_length:
            raise DataError(f"tokens of length {length} exceed max_length {self.max_length}")
        x = self.token_embed(inputs) + self.pos_embed[:, :length]
        causal = nn.Transformer.generate_square_subsequent_mask(length, device=x.device)
        x = self.decoder(
            x, memory, tgt_mask=causal, tgt_is_causal=True, memory_key_padding_mask=memory_padding
        )
        return self.head(self.norm(x))

    def forward(self, batch: Mapping[str, Tensor]) -> GenerationOutput:
        """Teacher-forced scores of ``batch["tokens"]`` (B, L) given the modalities."""
        tokens = batch["tokens"]
        inputs = tokens[:, :-1].masked_fill(tokens[:, :-1] == PAD_TARGET, self.pad)
        memory, padding = self.memory(batch)
        return GenerationOutput(self._decode(inputs, memory, padding))

    @torch.no_grad()
    def generate(self, batch: Mapping[str, Tensor], max_length: int | None = None) -> Tensor:
        """Greedy decoding from BOS until EOS or ``max_length`` tokens.

        Returns:
            (B, L') ids starting with BOS; after a sample's EOS, ids are -100.
        """
        memory, padding = self.memory(batch)
        b = memory.shape[0]
        out = torch.full((b, 1), self.bos, dtype=torch.long, device=memory.device)
        done = torch.zeros(b, dtype=torch.bool, device=memory.device)
        for _ in range((max_length or self.max_length) - 1):
            inputs = out.masked_fill(out == PAD_TARGET, self.pad)
            following = self._decode(inputs, memory, padding)[:, -1].argmax(dim=-1)  # (B,)
            following = following.masked_fill(done, PAD_TARGET)
            out = torch.cat([out, following[:, None]], dim=1)
            done |= following == self.eos
            if bool(done.all()):
                break
        return out


def build_captioner(
    fusion: str,
    modalities: Mapping[str, Mapping[str, Any]],
    vocab_size: int,
    dim: int = 64,
    depth: int = 2,
    num_heads: int = 4,
    max_length: int = 32,
    bos: int = 1,
    eos: int = 2,
    pad: int = 0,
) -> Captioner:
    """Build a :class:`Captioner` (the ``sequence_generation`` task's default).

    Args:
        fusion: unused (the decoder attends to every modality's tokens).
        modalities: ``{modality: {"encoder": name, "shape": [...], **options}}``.
        vocab_size: V (the task reads it off the data set).
        dim, depth, num_heads, max_length, bos, eos, pad: see :class:`Captioner`.
    """
    if not modalities:
        raise ConfigError("sequence_generation needs at least one modality to describe")
    encoders = build_encoders(modalities, dim)
    return Captioner(encoders, vocab_size, dim, depth, num_heads, max_length, bos, eos, pad)
