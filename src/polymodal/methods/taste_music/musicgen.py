"""The Hugging Face path: fine-tuning ``MusicgenForConditionalGeneration`` on taste
descriptions paired with audio, as the paper does with MusicGen-small.

The recipe is the same for a real checkpoint and for :func:`tiny_musicgen` (a
randomly initialised model from a small config, for tests and for trying the code
without weights): the audio is turned into EnCodec codes by the model's own audio
encoder, the description into token ids by a tokenizer (the packaged MiniLM
WordPiece tokenizer for the tiny model; MusicGen-small's T5 tokenizer for the real
one), and the decoder is trained with cross-entropy on the codes, teacher-forced.
The text and audio encoders stay frozen, as in the paper. Nothing is downloaded:
a user with MusicGen-small loads it themselves and passes the model and tokenizer.

Our simplification: codes are given as labels without MusicGen's codebook delay
pattern (the decoder learns all codebooks of a frame at once); ``generate``
applies the pattern itself when sampling.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor


def tiny_musicgen(text_vocab_size: int, sample_rate: int = 16_000, seed: int = 0) -> Any:
    """A randomly initialised ``MusicgenForConditionalGeneration`` small enough for a test.

    T5 text encoder (1 layer, width 32), EnCodec with hop 256 (62.5 frames per
    second at 16 kHz) and 2 codebooks of 64 codes, decoder of 2 layers and width 32.

    Args:
        text_vocab_size: size of the tokenizer the descriptions are written with.
        sample_rate: audio rate the EnCodec model takes.
        seed: seed of the random initialisation.
    """
    from transformers import logging

    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # pad/start id = codebook size is MusicGen's own convention
    try:
        return _tiny_musicgen(text_vocab_size, sample_rate, seed)
    finally:
        logging.set_verbosity(verbosity)


def _tiny_musicgen(text_vocab_size: int, sample_rate: int, seed: int) -> Any:
    from transformers import (
        EncodecConfig,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        T5Config,
    )

    text = T5Config(
        vocab_size=text_vocab_size, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=4
    )
    # frame rate ceil(16000 / 256) = 63; 800 bits/s // (63 frames/s * 6 bits) = 2 codebooks
    audio = EncodecConfig(
        sampling_rate=sample_rate,
        target_bandwidths=[0.8],
        hidden_size=16,
        num_filters=4,
        upsampling_ratios=[8, 8, 4],
        codebook_size=64,
        num_lstm_layers=1,
    )
    decoder = MusicgenDecoderConfig(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        ffn_dim=64,
        num_codebooks=2,
        max_position_embeddings=512,
        pad_token_id=64,
        bos_token_id=64,
    )
    decoder.decoder_start_token_id = 64  # the label shift starts every codebook here
    config = MusicgenConfig(text_encoder=text, audio_encoder=audio, decoder=decoder)
    config.decoder_start_token_id = config.pad_token_id = 64
    torch.manual_seed(seed)
    model = MusicgenForConditionalGeneration(config)
    return model


def seed_codebooks(model: Any, waves: Sequence[np.ndarray], seed: int = 0) -> None:
    """Fill an untrained EnCodec's codebooks with frames of ``waves`` (residual by residual).

    A fresh EnCodec has all-zero codebooks (training fills them by k-means), which
    maps every frame to code 0; codebooks drawn from real frames, as k-means starts,
    give the codes of a random model something to say. Never needed for a trained one.
    """
    length = min(w.size for w in waves)
    values = torch.from_numpy(np.stack([w[:length] for w in waves])).float()[:, None]
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        frames = model.audio_encoder.encoder(values).transpose(1, 2).flatten(0, 1)  # (B*T, D)
        for layer in model.audio_encoder.quantizer.layers:
            size = layer.codebook.embed.shape[0]
            chosen = torch.randint(0, frames.shape[0], (size,), generator=generator)
            layer.codebook.embed.copy_(frames[chosen])
            layer.codebook.embed_avg.copy_(frames[chosen])
            frames = frames - layer.decode(layer.encode(frames.T[None]))[0].T  # the residual


def audio_codes(model: Any, waves: Sequence[np.ndarray]) -> Tensor:
    """(B, T, K) EnCodec codes of B mono waveforms (cut to the shortest) at the model's rate."""
    length = min(w.size for w in waves)
    values = torch.from_numpy(np.stack([w[:length] for w in waves])).float()[:, None]  # (B, 1, S)
    with torch.no_grad():
        bandwidth = model.audio_encoder.config.target_bandwidths[0]
        codes = model.audio_encoder.encode(values, bandwidth=bandwidth).audio_codes  # (1, B, K, T)
    return codes[0].transpose(1, 2).contiguous()


def finetune_musicgen(
    model: Any,
    tokenize: Callable[[list[str]], dict[str, Tensor]],
    texts: Sequence[str],
    waves: Sequence[np.ndarray],
    steps: int = 20,
    lr: float = 1e-3,
) -> list[float]:
    """Fine-tune MusicGen's decoder on (description, audio) pairs, full batch.

    Args:
        model: a ``MusicgenForConditionalGeneration``.
        tokenize: texts -> ``{"input_ids", "attention_mask"}`` (B, L) tensors.
        texts: B descriptions.
        waves: B waveforms at the model's sampling rate.
        steps: optimiser steps.
        lr: AdamW learning rate.

    Returns:
        The training loss of every step.
    """
    labels = audio_codes(model, waves)
    inputs = tokenize(list(texts))
    for frozen in (model.text_encoder, model.audio_encoder):
        frozen.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        loss = model(
            input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], labels=labels
        ).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def generate_audio(
    model: Any,
    tokenize: Callable[[list[str]], dict[str, Tensor]],
    texts: Sequence[str],
    frames: int = 64,
    seed: int = 0,
) -> np.ndarray:
    """(B, S) float32 audio sampled by MusicGen for B descriptions (``frames`` code frames)."""
    inputs = tokenize(list(texts))
    model.eval()
    torch.manual_seed(seed)
    with torch.no_grad():
        audio = model.generate(**inputs, do_sample=True, max_new_tokens=frames)  # (B, 1, S)
    return audio[:, 0].float().numpy()


def write_clips(
    waves: np.ndarray, sample_rate: int, folder: str | Path, names: Sequence[str]
) -> list[Path]:
    """Write each row of ``waves`` (B, S) as ``folder/<name>.wav``, peak-normalised."""
    from polymodal.data.real.wav import write_wav

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for wave, name in zip(waves, names, strict=True):
        peak = float(np.abs(wave).max())
        scaled = wave * (0.8 / peak) if peak > 0 else wave
        write_wav(folder / f"{name}.wav", torch.from_numpy(scaled.astype(np.float32)), sample_rate)
        paths.append(folder / f"{name}.wav")
    return paths


def minilm_tokenize(texts: list[str]) -> dict[str, Tensor]:
    """``input_ids`` and ``attention_mask`` (B, L) from the packaged MiniLM WordPiece
    tokenizer (vocabulary 30,522): the tiny model's text side, no download."""
    from transformers import AutoTokenizer

    from polymodal.hf.text_encoder import minilm_path

    tokenizer = AutoTokenizer.from_pretrained(minilm_path(), local_files_only=True)
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
