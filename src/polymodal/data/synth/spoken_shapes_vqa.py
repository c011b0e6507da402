"""Spoken Shapes-VQA: every Shapes-VQA question also spoken, by voices held out across splits.

Each item of :mod:`.shapes_vqa` keeps its image, typed question and answer and
gains the question as 16 kHz speech. Each split has its own pool of espeak-ng
voices (drawn together with :func:`~.speech.sample_voices`, so no voice is in two
splits): a test question is spoken by a voice the model never heard in training.
An item's voice is drawn from its split's pool with a seeded generator; each
distinct (question, voice) pair is synthesised once (the synthesis cache keeps
rebuilds fast) and shared by the items that ask it.

A sample is a Shapes-VQA sample plus::

    audio    (S,) float32 waveform at 16 kHz in [-1, 1] (S varies per item)
    voice    () int64 index of the speaker in :meth:`SpokenShapesVQA.voices`

The cache folder holds ``{train,val,test}.safetensors`` (int16 samples of the
distinct clips concatenated, their offsets, and per item its clip and voice) and
``voices.json`` (every voice of every split).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor
from torch.utils.data import Dataset

from polymodal.data.cache import cached_build
from polymodal.data.options import check_option_types
from polymodal.data.registry import register_dataset
from polymodal.data.synth.shapes_vqa import SPLITS, ShapesVQA, ShapesVQAConfig, load_shapes_vqa
from polymodal.data.synth.speech import Utterance, Voice, sample_voices, synthesize
from polymodal.errors import ConfigError, DataError

VERSION = "spoken-shapes-vqa-1"


@dataclass(frozen=True)
class SpokenVoices:
    """The voice pools (the Shapes-VQA options are passed beside them).

    Args:
        voices_train: distinct voices that speak the training questions.
        voices_val: distinct voices of the validation split (none in training).
        voices_test: distinct voices of the test split (none in training or validation).
        voice_seed: seed of the pools and of each item's draw from its pool.
    """

    voices_train: int = 24
    voices_val: int = 6
    voices_test: int = 6
    voice_seed: int = 12

    def pool(self, split: str) -> int:
        return int(getattr(self, f"voices_{split}"))


def voice_pools(config: SpokenVoices) -> dict[str, list[Voice]]:
    """Split -> its voices; the pools are disjoint by construction."""
    total = sum(config.pool(s) for s in SPLITS)
    voices = sample_voices(total, seed=config.voice_seed, rate=(130, 210))
    pools, start = {}, 0
    for split in SPLITS:
        pools[split] = voices[start : start + config.pool(split)]
        start += config.pool(split)
    return pools


def _build_split(
    questions: ShapesVQA, voices: list[Voice], rng: np.random.Generator
) -> dict[str, Tensor]:
    voice = rng.integers(len(voices), size=len(questions))
    texts = [questions.question(i).replace(" ?", "?") for i in range(len(questions))]
    pairs = list(dict.fromkeys(zip(texts, voice.tolist(), strict=True)))
    clip_of = {pair: k for k, pair in enumerate(pairs)}
    waves = synthesize([Utterance(t, voices[v]) for t, v in pairs], progress=True)
    offsets = np.cumsum([0] + [len(w) for w in waves], dtype=np.int64)
    samples = np.round(np.concatenate(waves) * 32767).astype(np.int16)
    return {
        "samples": torch.from_numpy(samples),
        "offsets": torch.from_numpy(offsets),
        "clip": torch.tensor([clip_of[p] for p in zip(texts, voice.tolist(), strict=True)]),
        "voice": torch.from_numpy(voice.astype(np.int64)),
    }


def _split_options(options: dict[str, Any]) -> tuple[dict[str, Any], SpokenVoices]:
    voice_keys = {f.name for f in fields(SpokenVoices)}
    spoken = {k: v for k, v in options.items() if k in voice_keys}
    check_option_types(SpokenVoices, spoken, "Spoken Shapes-VQA")
    voices = SpokenVoices(**spoken)
    for split in SPLITS:
        if voices.pool(split) < 1:
            raise ConfigError(
                f"Spoken Shapes-VQA needs voices_{split} >= 1, got {voices.pool(split)}"
            )
    return {k: v for k, v in options.items() if k not in voice_keys}, voices


def build_spoken_shapes_vqa(**options: Any) -> Path:
    """Build (or reuse from the cache) the spoken questions and return their folder.

    Args:
        **options: fields of :class:`SpokenVoices` and of
            :class:`~.shapes_vqa.ShapesVQAConfig`.
    """
    vqa_options, voices = _split_options(options)
    splits = {split: load_shapes_vqa(split, **vqa_options) for split in SPLITS}

    def build(folder: Path) -> dict[str, Any]:
        pools = voice_pools(voices)
        for offset, split in enumerate(SPLITS):
            rng = np.random.default_rng([voices.voice_seed, offset])
            save_file(
                _build_split(splits[split], pools[split], rng), str(folder / f"{split}.safetensors")
            )
        listing = {split: [asdict(v) for v in pool] for split, pool in pools.items()}
        (folder / "voices.json").write_text(json.dumps(listing, indent=1) + "\n")
        return {"voices": {s: voices.pool(s) for s in SPLITS}}

    params = {"vqa": asdict(ShapesVQAConfig(**vqa_options)), **asdict(voices)}
    code = ("polymodal.data.synth.spoken_shapes_vqa",)
    return cached_build("spoken_shapes_vqa", VERSION, params, build, code=code)


class SpokenShapesVQA(Dataset[dict[str, Tensor]]):
    """One split of Spoken Shapes-VQA: Shapes-VQA samples with ``audio`` and ``voice``.

    Args:
        questions: the Shapes-VQA split the speech belongs to.
        folder: a folder written by :func:`build_spoken_shapes_vqa`.
    """

    def __init__(self, questions: ShapesVQA, folder: Path) -> None:
        path = folder / f"{questions.split}.safetensors"
        if not path.is_file():
            raise DataError(f"spoken questions {path} do not exist; rebuild the data set")
        self.questions = questions
        self.folder = folder
        self.tensors = load_file(str(path))
        if self.tensors["clip"].shape[0] != len(questions):
            raise DataError(f"{path} does not match its Shapes-VQA split; delete the folder")

    def __len__(self) -> int:
        return len(self.questions)

    def audio(self, index: int) -> Tensor:
        """(S,) float32 speech of item ``index``."""
        clip = int(self.tensors["clip"][index])
        start, stop = self.tensors["offsets"][clip : clip + 2].tolist()
        return self.tensors["samples"][start:stop].float() / 32767.0

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return {
            **self.questions[index],
            "audio": self.audio(index),
            "voice": self.tensors["voice"][index],
        }

    @cached_property
    def voices(self) -> list[Voice]:
        """The voices of this split (``voice`` indexes this list)."""
        listing = json.loads((self.folder / "voices.json").read_text())
        return [Voice(**v) for v in listing[self.questions.split]]


def load_spoken_shapes_vqa(split: str, **options: Any) -> SpokenShapesVQA:
    """The ``split`` of Spoken Shapes-VQA built with ``options`` (see the builder)."""
    if split not in SPLITS:
        raise ConfigError(f"Spoken Shapes-VQA has splits {SPLITS}, not {split!r}")
    vqa_options, _ = _split_options(options)
    return SpokenShapesVQA(
        load_shapes_vqa(split, **vqa_options), build_spoken_shapes_vqa(**options)
    )


register_dataset("spoken_shapes_vqa")(load_spoken_shapes_vqa)
