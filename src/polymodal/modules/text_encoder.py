"""A small trainable text encoder and the output type every text encoder returns.

:class:`SmallTextEncoder` (token embedding, learned positions, pre-norm transformer
blocks) is for tests and ``--quick`` runs; the pretrained MiniLM in
:mod:`polymodal.hf.text_encoder` returns the same :class:`TextEncoderOutput`, so
code written against one runs on the other. Its :meth:`SmallTextEncoder.encode`
tokenises UTF-8 bytes, so it needs no vocabulary file.

Masks follow Hugging Face: ``attention_mask`` is (B, L) with 1 = real token,
0 = padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from polymodal.errors import ConfigError, DataError
from polymodal.modules.attention import TransformerBlock
from polymodal.modules.encoders import BlockHook


class TextEncoderOutput(NamedTuple):
    """Per-token text features and every layer's tokens.

    Attributes:
        last: (B, L, D) final tokens.
        hidden_states: ``layers + 1`` tensors (B, L, D): the embeddings, then each layer.
        attention_mask: (B, L) long, 1 = real token, 0 = padding.
    """

    last: Tensor
    hidden_states: tuple[Tensor, ...]
    attention_mask: Tensor


def masked_mean(tokens: Tensor, attention_mask: Tensor) -> Tensor:
    """Mean over the real tokens only (the sentence embedding of MiniLM / SBERT).

    Args:
        tokens: (B, L, D) tokens.
        attention_mask: (B, L), 1 = real token.

    Returns:
        (B, D) means; a row without real tokens gives zeros.
    """
    weights = attention_mask.to(tokens.dtype)[..., None]  # (B, L, 1)
    return (tokens * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


class SmallTextEncoder(nn.Module):
    """Token embedding, learned positions and pre-norm transformer blocks.

    Padding never changes the real tokens' outputs: padded keys are masked out of
    every attention. The outputs at padded positions are whatever the blocks give
    them and should be ignored (use ``attention_mask``).

    Args:
        vocab_size: token ids run over ``[0, vocab_size)``; id 0 is padding. The
            default 257 covers :meth:`encode`'s bytes (byte b -> id b + 1).
        dim: token width D.
        depth: number of transformer blocks.
        num_heads: attention heads per block.
        max_length: longest sequence L.
        mlp_ratio: MLP width of the blocks as a multiple of D.
        dropout: dropout inside the blocks.
    """

    def __init__(
        self,
        vocab_size: int = 257,
        dim: int = 64,
        depth: int = 2,
        num_heads: int = 4,
        max_length: int = 64,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.dim = dim
        self.max_length = max_length
        self.token_embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.pos_embed = nn.Parameter(torch.zeros(1, max_length, dim))
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, num_heads, mlp_ratio, dropout) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        # BERT's recipe: normal(0.02) for embeddings and positions, truncated normal
        # (0.02) for linear layers with zero biases, as in ViTEncoder.
        nn.init.normal_(self.token_embed.weight, std=0.02)
        with torch.no_grad():
            self.token_embed.weight[0].zero_()
        nn.init.normal_(self.pos_embed, std=0.02)
        for m in self.blocks.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def tokenize(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """UTF-8 bytes to ids (byte b -> b + 1), right-padded with 0, cut at ``max_length``.

        Args:
            texts: B strings.

        Returns:
            ``input_ids`` (B, L) long and ``attention_mask`` (B, L) long, L the longest
            (cut) text, at least 1.
        """
        if not texts:
            raise DataError("SmallTextEncoder.tokenize got no texts")
        rows = [list(t.encode("utf-8"))[: self.max_length] for t in texts]
        length = max(1, *(len(r) for r in rows))
        ids = torch.zeros(len(rows), length, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, dtype=torch.long) + 1
        return ids, (ids != 0).long()

    def encode(self, texts: Sequence[str]) -> TextEncoderOutput:
        """Tokenise (:meth:`tokenize`) and encode B strings."""
        ids, mask = self.tokenize(texts)
        return self(ids.to(self.pos_embed.device), mask.to(self.pos_embed.device))

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, hook: BlockHook | None = None
    ) -> TextEncoderOutput:
        """Encode token ids.

        Args:
            input_ids: (B, L) long ids, L <= ``max_length``.
            attention_mask: (B, L), 1 = real token; default all ones.
            hook: optional ``hook(layer_index, tokens) -> tokens`` before each block;
                it must keep L (the padding mask is per position).

        Returns:
            :class:`TextEncoderOutput` with ``last`` after the final LayerNorm.
        """
        if input_ids.dim() != 2 or input_ids.dtype != torch.long:
            raise DataError(
                f"text_ids must be (B, L) int64, got {tuple(input_ids.shape)} {input_ids.dtype}"
            )
        b, length = input_ids.shape
        if length > self.max_length:
            raise ConfigError(f"text length {length} exceeds max_length {self.max_length}")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if attention_mask.shape != input_ids.shape:
            raise DataError(
                f"attention_mask must match text_ids {tuple(input_ids.shape)}, "
                f"got {tuple(attention_mask.shape)}"
            )
        padding = attention_mask == 0  # (B, L) True = not attended to
        t = self.token_embed(input_ids) + self.pos_embed[:, :length]
        hidden = [t]
        for i, block in enumerate(self.blocks):
            if hook is not None:
                t = hook(i, t)
            t = block(t, key_padding_mask=padding).output
            hidden.append(t)
        return TextEncoderOutput(self.norm(t), tuple(hidden), attention_mask.long())


class TextTokens(nn.Module):
    """A :class:`SmallTextEncoder` as a modality encoder: ``text_ids`` (B, L) to tokens.

    Padding is read off the ids (0 = padding), so it plugs in wherever an encoder
    maps one batch tensor to (B, L, D) tokens (:func:`~polymodal.modules.classifier.build_encoder`'s
    ``text``). Pool with :func:`masked_mean` over ``ids != 0``.

    Args:
        **options: :class:`SmallTextEncoder` options.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.text = SmallTextEncoder(**options)
        self.dim = self.text.dim

    def num_tokens(self, shape: Sequence[int]) -> int:
        return int(shape[-1])

    def forward(self, ids: Tensor) -> Tensor:
        return self.text(ids, (ids != 0).long()).last


__all__ = ["SmallTextEncoder", "TextEncoderOutput", "TextTokens", "masked_mean"]
