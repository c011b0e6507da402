"""The text-conditioned event generator: a description prefix and a GPT-2 decoder.

The description is embedded by the frozen MiniLM sentence encoder
(:mod:`~polymodal.methods.taste_music.text`); a two-layer MLP maps the (384,)
vector to ``prefix_tokens`` vectors of the decoder's width, which precede the
event tokens, so every event attends to the description through ordinary causal
self-attention (prefix conditioning, as in ClipCap). The decoder is a
``transformers`` ``GPT2LMHeadModel`` built from a small config, never downloaded.

It speaks the ``sequence_generation`` task's protocol: ``forward(batch).logits``
(B, L - 1, V) scores ``tokens[:, 1:]`` teacher-forced; ``generate(batch)`` samples
(B, L') ids from BOS, -100 after EOS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from polymodal.data.synth.music_events import BOS, EOS, PAD
from polymodal.data.synth.taste_music import decode_text
from polymodal.errors import ConfigError, DataError
from polymodal.methods.taste_music.text import TEXT_DIM, DescriptionEmbedder
from polymodal.modules.captioner import GenerationOutput

IGNORE = -100


class TasteMusicGenerator(nn.Module):
    """Description prefix + causal decoder over event tokens (module doc).

    Args:
        vocab_size: V, the event vocabulary.
        dim: decoder width.
        depth: decoder layers.
        num_heads: attention heads.
        max_length: longest event sequence, BOS and EOS included.
        prefix_tokens: P, vectors the description becomes.
        dropout: dropout of the decoder (embeddings, attention, residuals).
        bos, eos: the ids that start and end a sequence.
    """

    def __init__(
        self,
        vocab_size: int,
        dim: int = 128,
        depth: int = 3,
        num_heads: int = 4,
        max_length: int = 192,
        prefix_tokens: int = 4,
        dropout: float = 0.1,
        bos: int = BOS,
        eos: int = EOS,
    ) -> None:
        super().__init__()
        from transformers import GPT2Config, GPT2LMHeadModel

        self.vocab_size, self.max_length, self.prefix_tokens = vocab_size, max_length, prefix_tokens
        self.bos, self.eos = bos, eos
        self.prefix = nn.Sequential(
            nn.Linear(TEXT_DIM, dim), nn.GELU(), nn.Linear(dim, prefix_tokens * dim)
        )
        config = GPT2Config(
            vocab_size=vocab_size,
            n_positions=prefix_tokens + max_length,
            n_embd=dim,
            n_layer=depth,
            n_head=num_heads,
            resid_pdrop=dropout,
            embd_pdrop=dropout,
            attn_pdrop=dropout,
            bos_token_id=bos,
            eos_token_id=eos,
        )
        self.decoder = GPT2LMHeadModel(config)
        # A plain attribute, not a submodule: the frozen encoder stays out of checkpoints.
        self.embed_text = DescriptionEmbedder()

    @staticmethod
    def texts(batch: Mapping[str, Tensor]) -> list[str]:
        """The descriptions of a batch's ``text_ids`` (B, L) rows."""
        if "text_ids" not in batch:
            raise DataError(
                f"the music generator needs 'text_ids' (descriptions); got keys {sorted(batch)}"
            )
        return [decode_text(row) for row in batch["text_ids"]]

    def description_prefix(self, texts: Sequence[str]) -> Tensor:
        """(B, P, D) prefix vectors of B descriptions."""
        device = self.decoder.lm_head.weight.device
        vectors = self.embed_text(texts).to(device)  # (B, 384)
        return self.prefix(vectors).unflatten(-1, (self.prefix_tokens, -1))

    def forward(self, batch: Mapping[str, Tensor]) -> GenerationOutput:
        """Teacher-forced scores (B, L - 1, V) of ``batch["tokens"]`` (B, L) given the
        descriptions in ``batch["text_ids"]``."""
        tokens = batch["tokens"]
        if tokens.shape[1] > self.max_length:
            raise DataError(
                f"tokens of length {tokens.shape[1]} exceed max_length {self.max_length}"
            )
        inputs = tokens[:, :-1].masked_fill(tokens[:, :-1] == IGNORE, PAD)
        prefix = self.description_prefix(self.texts(batch))
        embeds = torch.cat([prefix, self.decoder.transformer.wte(inputs)], dim=1)  # (B, P+L-1, D)
        # Right padding needs no attention mask: causal attention never looks ahead.
        logits = self.decoder(inputs_embeds=embeds).logits
        return GenerationOutput(logits[:, self.prefix_tokens :])

    def generate(self, batch: Mapping[str, Tensor], max_length: int | None = None) -> Tensor:
        """Greedy continuation of the batch's descriptions (the task's test decoding)."""
        return self.sample(self.texts(batch), max_length=max_length)

    @torch.no_grad()
    def sample(
        self,
        texts: Sequence[str],
        max_length: int | None = None,
        temperature: float = 0.0,
        top_k: int = 0,
        seed: int | None = None,
        start: Tensor | None = None,
    ) -> Tensor:
        """Event sequences for B descriptions, until EOS or ``max_length`` tokens.

        Args:
            texts: B descriptions.
            max_length: longest output, BOS included (default: the model's).
            temperature: 0 picks the most likely token; above 0 samples from the
                softmax of logits / temperature.
            top_k: sample only among the k most likely tokens (0 = all).
            seed: seed of the sampling generator (same seed, same pieces).
            start: (B, S) ids every output begins with (BOS first); default BOS.

        Returns:
            (B, L') ids starting with ``start``; after a sample's EOS, ids are -100.
        """
        if temperature < 0 or top_k < 0:
            raise ConfigError(f"temperature and top_k must be >= 0, got {temperature}, {top_k}")
        length = min(max_length or self.max_length, self.max_length)
        device = self.decoder.lm_head.weight.device
        generator = torch.Generator(device).manual_seed(0 if seed is None else seed)
        out = start if start is not None else torch.full((len(texts), 1), self.bos)
        out = out.to(device)
        embeds = torch.cat([self.description_prefix(texts), self.decoder.transformer.wte(out)], 1)
        step = self.decoder(inputs_embeds=embeds, use_cache=True)
        done = torch.zeros(len(texts), dtype=torch.bool, device=device)
        while out.shape[1] < length and not bool(done.all()):
            following = pick(step.logits[:, -1], temperature, top_k, generator)  # (B,)
            following = following.masked_fill(done, IGNORE)
            out = torch.cat([out, following[:, None]], dim=1)
            done |= following == self.eos
            step = self.decoder(
                input_ids=following.clamp_min(PAD)[:, None],
                cache=step.cache,
                use_cache=True,
            )
        return out


def pick(logits: Tensor, temperature: float, top_k: int, generator: torch.Generator) -> Tensor:
    """(B,) next ids from (B, V) logits: argmax at temperature 0, else a top-k sample."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_k:
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(1)


def build_taste_music(
    fusion: str, modalities: Mapping[str, Mapping[str, Any]], vocab_size: int, **options: Any
) -> TasteMusicGenerator:
    """Build a :class:`TasteMusicGenerator` for the ``sequence_generation`` task.

    Args:
        fusion: unused (one modality, the description).
        modalities: must be ``{"text_ids": {...}}``.
        vocab_size: V (the task reads it off the data set).
        **options: ``dim``, ``depth``, ``num_heads``, ``max_length``, ``prefix_tokens``,
            ``dropout``, ``bos``, ``eos`` of :class:`TasteMusicGenerator`.
    """
    if set(modalities) != {"text_ids"}:
        raise ConfigError(
            f"the taste-music generator is conditioned on text_ids only, got {sorted(modalities)}"
        )
    dim, heads = options.get("dim", 128), options.get("num_heads", 4)
    if dim % heads:
        raise ConfigError(f"model.dim {dim} must be a multiple of num_heads {heads}")
    return TasteMusicGenerator(vocab_size, **options)
