"""Nexus-O's stage-1 model as a speech recogniser for the ASR testbed.

Stage 1 taught the audio encoder and adapter to make the frozen language model
write out the question it hears, so a finished run (stage 1, or a later one,
whose adapter moved on) transcribes speech: prompt ``<bos> <audio>×K``, greedy
words up to the question mark. It knows only the Shapes-VQA vocabulary, so it is
scored on the testbed's ``shapes`` sentence set.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from polymodal.data.cache import home
from polymodal.errors import ConfigError
from polymodal.methods.nexus_o.audio import SAMPLE_RATE
from polymodal.methods.nexus_o.batches import OmniBatch
from polymodal.methods.nexus_o.recipe import load_omni
from polymodal.methods.nexus_o.stages import transcribe

CACHE_KIND = "bench/nexus_o/stage1"
"""Where the ``nexus_o`` check keeps its stage-1 runs."""


def cached_stage1() -> Path:
    """The newest finished stage-1 run in the cache.

    Raises:
        ConfigError: none there yet.
    """
    runs = sorted(
        (p.parent for p in (home() / CACHE_KIND).glob("*/metrics.json")),
        key=lambda p: (p / "metrics.json").stat().st_mtime,
    )
    if not runs:
        raise ConfigError(
            "no cached Nexus-O stage-1 run; train one with `polymodal bench --only nexus_o` "
            "or name a run folder: --recognizer nexus-o:RUN_DIR"
        )
    return runs[-1]


class NexusOTranscriber:
    """Greedy transcripts of a Nexus-O run (the check's cached stage-1 run by default).

    Args:
        run_dir: a finished stage run folder; None: :func:`cached_stage1`.
        batch_size: clips per forward pass.
    """

    name = "nexus-o"

    def __init__(self, run_dir: str | Path | None = None, batch_size: int = 32) -> None:
        self.run_dir = Path(run_dir) if run_dir else cached_stage1()
        self.run = load_omni(self.run_dir)
        self.batch_size = batch_size
        self.cropped = 0
        """Clips longer than the audio window seen so far (their end was cut)."""

    def _batch(self, waves: Sequence[np.ndarray]) -> OmniBatch:
        model = self.run.model
        window = int(model.config.window_s * SAMPLE_RATE)
        clips = [torch.as_tensor(np.asarray(w, np.float32))[:window] for w in waves]
        self.cropped += sum(len(w) > window for w in waves)
        lengths = torch.tensor([len(c) for c in clips])
        audio = torch.zeros(len(clips), int(lengths.max()))
        for i, clip in enumerate(clips):
            audio[i, : len(clip)] = clip
        prompt = [model.fmt.bos, *[model.audio_id] * model.config.audio_tokens]
        ids = torch.tensor([prompt] * len(clips))
        zeros = torch.zeros(len(clips), dtype=torch.long)
        return OmniBatch(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            labels=torch.full_like(ids, -100),
            pixel_values=None,
            audio=audio,
            audio_lengths=lengths,
            answer_ids=zeros,
            question_type=zeros,
        )

    def transcribe(self, waves: Sequence[np.ndarray]) -> list[str]:
        """One transcript per (S_i,) 16 kHz waveform (cropped to the model's audio window)."""
        tokenizer = self.run.tokenizer
        end_id = tokenizer.token_to_id("?")
        out = []
        for start in range(0, len(waves), self.batch_size):
            batch = self._batch(waves[start : start + self.batch_size])
            for row in transcribe(self.run.model, batch, end_id):
                out.append(" ".join(tokenizer.id_to_token(t) for t in row if t != end_id))
        return out
