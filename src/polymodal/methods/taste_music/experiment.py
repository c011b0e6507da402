"""The runs the ``taste_music`` check compares and the clips it judges.

One pre-training run (seed 0) is the **base** model; each seed fine-tunes a copy
of it on the 85 taste pieces (the best epoch chosen on the 15 evaluation pieces).
Both are asked for the same clips: per taste, ``clips`` samples cycling through
the taste's :data:`~polymodal.data.synth.music_compose.EVAL_PROMPTS` (phrasings no
training description uses), with the same sampling seed, temperature and top-k,
so clip *i* of the base and of the fine-tuned model form a pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from polymodal.data.synth.music_compose import EVAL_PROMPTS, TASTES
from polymodal.data.synth.music_events import Piece, decode_tokens
from polymodal.data.synth.music_synth import render
from polymodal.methods.taste_music.judge import audio_features, correspondences
from polymodal.methods.taste_music.model import TasteMusicGenerator
from polymodal.train.config import ExperimentConfig, check_run

BASE, TUNED = "base", "fine_tuned"
TEMPERATURE, TOP_K = 1.0, 20
FULL = {"pretrain": "{corpus: pretrain, train: 2000, val: 200}", "pre_epochs": 8, "epochs": 20}
QUICK = {"pretrain": "{corpus: pretrain, train: 64, val: 16}", "pre_epochs": 1, "epochs": 1}
CODE = (
    "polymodal.train.recipe",
    "polymodal.methods.taste_music.model",
    "polymodal.data.synth.taste_music",
)


def pretrain_config(quick: bool, device: str = "cpu") -> ExperimentConfig:
    """The base model: pre-training on the taste-agnostic corpus (seed 0)."""
    size = QUICK if quick else FULL
    overrides = [
        f"data.options={size['pretrain']}",
        f"trainer.max_epochs={size['pre_epochs']}",
    ]
    return check_run("taste_music_pretrain", overrides, device, "bench/taste_music/pretrain", CODE)


def finetune_config(seed: int, quick: bool, device: str = "cpu") -> ExperimentConfig:
    """The base model fine-tuned on the taste corpus with ``seed``."""
    size = QUICK if quick else FULL
    overrides = [
        f"seed={seed}",
        f"trainer.max_epochs={size['epochs']}",
        f"model.init_from={pretrain_config(quick, device).out_dir}",
    ]
    return check_run("taste_music", overrides, device, "bench/taste_music/finetune", CODE)


@dataclass
class Clip:
    """One generated clip and what the judge reads off it.

    Attributes:
        taste: index of the taste asked for.
        prompt: the description given.
        piece: the decoded events.
        malformed: tokens that fit no event.
        wave: (S,) audio of the built-in synthesiser.
        features: (F,) :func:`~polymodal.methods.taste_music.judge.audio_features`.
        correspondence: :func:`~polymodal.methods.taste_music.judge.correspondences`.
    """

    taste: int
    prompt: str
    piece: Piece
    malformed: int
    wave: np.ndarray
    features: np.ndarray
    correspondence: dict[str, float]


def prompts_for(taste: str, clips: int) -> list[str]:
    """``clips`` prompts cycling through the taste's evaluation phrasings."""
    phrasings = EVAL_PROMPTS[taste]
    return [phrasings[i % len(phrasings)] for i in range(clips)]


def generate_clips(model: TasteMusicGenerator, clips: int, seed: int) -> list[Clip]:
    """``clips`` clips per taste, taste by taste, sampled with ``seed``."""
    model.eval()
    out = []
    for index, taste in enumerate(TASTES):
        prompts = prompts_for(taste, clips)
        ids = model.sample(prompts, temperature=TEMPERATURE, top_k=TOP_K, seed=seed * 100 + index)
        for prompt, row in zip(prompts, ids.cpu(), strict=True):
            decoded = decode_tokens(row.tolist())
            wave = render(decoded.piece)
            out.append(
                Clip(
                    index,
                    prompt,
                    decoded.piece,
                    decoded.malformed,
                    wave,
                    audio_features(wave),
                    correspondences(decoded.piece, wave),
                )
            )
    return out
