"""Taste-Music: descriptions paired with rule-composed pieces, as event tokens.

Three corpora (``corpus`` option), drawn from independent random streams:

- ``pretrain``: taste-agnostic pieces of any style with plain musical descriptions
  (:func:`~polymodal.data.synth.music_compose.describe`);
- ``taste``: 100 pieces following the taste correspondences, 25 per taste, 85 for
  training and 15 for evaluation as in the paper, each with a taste description
  ("the sourness of lemon"). ``val`` and ``test`` are both the 15 evaluation pieces;
- ``judge`` (:func:`taste_pieces`): pieces for the independent taste classifier,
  never those a generator trains on.

A sample holds ``text_ids`` (L,), the description's UTF-8 bytes + 1 (0 pads; see
:func:`encode_text`), and ``tokens`` (L,), the piece's events
(:mod:`~polymodal.data.synth.music_events`). ``taste`` samples also hold ``label``,
the taste's index in :data:`~polymodal.data.synth.music_compose.TASTES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from polymodal.data.dataset import TensorDictDataset, build_splits, padded_rows
from polymodal.data.options import check_option_types
from polymodal.data.registry import register_dataset
from polymodal.data.synth.music_compose import (
    TASTES,
    compose,
    describe,
    describe_taste,
    random_style,
    taste_style,
)
from polymodal.data.synth.music_events import BOS, EOS, VOCAB_SIZE, Piece, encode_piece
from polymodal.errors import ConfigError, DataError

VERSION = "1"
SPLITS = ("train", "val", "test")
CORPORA = ("pretrain", "taste")
_STREAMS = {"pretrain": 0, "taste": 1, "judge": 2}


def encode_text(text: str) -> list[int]:
    """``text`` as ids: its UTF-8 bytes + 1, so that 0 can pad."""
    return [b + 1 for b in text.encode("utf-8")]


def decode_text(ids: Tensor) -> str:
    """The text of ids written by :func:`encode_text`; zeros (padding) are skipped."""
    values = [int(i) - 1 for i in ids.flatten().tolist() if int(i) > 0]
    if any(v > 255 for v in values):
        raise DataError(f"text_ids hold values above 256, not UTF-8 bytes + 1: {max(values) + 1}")
    return bytes(values).decode("utf-8", errors="replace")


@dataclass(frozen=True)
class TasteMusicConfig:
    """Options of the ``taste_music`` data set.

    Args:
        corpus: ``pretrain`` (plain descriptions, any style) or ``taste``.
        train, val: pieces per split of the ``pretrain`` corpus (``taste`` is
            always 85 + 15).
        seed: base seed of the corpus.
    """

    corpus: str = "taste"
    train: int = 3000
    val: int = 300
    seed: int = 0


def taste_pieces(
    per_taste: int, seed: int, stream: str = "judge"
) -> tuple[list[Piece], list[int], list[str]]:
    """``per_taste`` pieces of each taste, their taste indices and descriptions.

    Args:
        per_taste: pieces per taste.
        seed: seed of the draw.
        stream: ``judge`` (the classifier's pieces) or ``taste`` (the generator's);
            different streams never share a random draw.
    """
    rng = np.random.default_rng([seed, _STREAMS[stream], 17])
    pieces, labels, texts = [], [], []
    for _ in range(per_taste):
        for label, taste in enumerate(TASTES):
            pieces.append(compose(taste_style(taste, rng), rng))
            labels.append(label)
            texts.append(describe_taste(taste, rng))
    return pieces, labels, texts


def _tensors(pieces: list[Piece], texts: list[str]) -> dict[str, Tensor]:
    return {
        "text_ids": padded_rows([encode_text(t) for t in texts], 0),
        "tokens": padded_rows([encode_piece(p) for p in pieces], -100),
    }


def _split(config: TasteMusicConfig, split: str) -> dict[str, Tensor]:
    if config.corpus == "taste":
        pieces, labels, texts = taste_pieces(25, config.seed, stream="taste")
        # the first 85 train, the last 15 (mixed tastes) evaluate, val and test alike
        part = slice(0, 85) if split == "train" else slice(85, 100)
        tensors = _tensors(pieces[part], texts[part])
        return {**tensors, "label": torch.tensor(labels[part], dtype=torch.long)}
    rng = np.random.default_rng([config.seed, _STREAMS["pretrain"], SPLITS.index(split)])
    count = config.train if split == "train" else config.val
    styles = [random_style(rng) for _ in range(count)]
    return _tensors([compose(s, rng) for s in styles], [describe(s, rng) for s in styles])


def build_taste_music(**options: Any) -> Path:
    """Build (or find in the cache) every split of a corpus; returns the cache folder."""
    check_option_types(TasteMusicConfig, options, "taste_music")
    config = TasteMusicConfig(**options)
    if config.corpus not in CORPORA:
        raise ConfigError(f"taste_music corpus must be one of {CORPORA}, got {config.corpus!r}")
    if min(config.train, config.val) < 1:
        raise ConfigError("taste_music needs at least one piece in train and in val")
    make = lambda split: _split(config, split)  # noqa: E731
    modules = (__name__, "polymodal.data.synth.music_compose", "polymodal.data.synth.music_events")
    return build_splits(f"taste_music_{config.corpus}", VERSION, config, make, SPLITS, modules)


class TasteMusic(TensorDictDataset):
    """One split: ``text_ids`` and ``tokens`` (module doc); ``vocab_size``, ``bos`` and
    ``eos`` size the generator."""

    vocab_size = VOCAB_SIZE
    bos, eos = BOS, EOS
    padded = {"text_ids": 0, "tokens": -100}


@register_dataset("taste_music")
def load_taste_music(split: str, **options: Any) -> TasteMusic:
    """The ``split`` of the Taste-Music corpus built with ``options``
    (:class:`TasteMusicConfig`)."""
    if split not in SPLITS:
        raise ConfigError(f"taste_music has splits {SPLITS}, not {split!r}")
    folder = build_taste_music(**options)
    return TasteMusic(TensorDictDataset.load(folder / f"{split}.safetensors").tensors)
