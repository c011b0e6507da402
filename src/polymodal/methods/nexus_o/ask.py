"""Answering one spoken question about one image: text out and speech out."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from polymodal.data.real.speech_wav import read_speech_wav
from polymodal.errors import DataError
from polymodal.methods.nexus_o.batches import OmniBatch
from polymodal.methods.nexus_o.recipe import OmniRun
from polymodal.train.vqa_batches import normalize_pixels


class Answer(NamedTuple):
    """The model's answer word, its (S,) 16 kHz speech, and notes on the input."""

    text: str
    speech: np.ndarray
    notes: tuple[str, ...]


def read_image(path: str | Path, size: int) -> torch.Tensor:
    """(3, size, size) float image in [0, 1] from any file Pillow reads (RGB, resized)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(f"{path} is not an image Pillow can read ({error})") from None
    return torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)


@torch.no_grad()
def ask(run: OmniRun, image: str | Path, audio: str | Path) -> Answer:
    """Answer the question spoken in ``audio`` about ``image``.

    Raises:
        DataError: an unreadable image, or an empty, silent or too long WAV.
    """
    model = run.model.eval()
    clip = read_speech_wav(audio, model.config.window_s)
    pixels = read_image(image, run.llava.image_size)
    fmt, k = model.fmt, model.config.audio_tokens
    ids = torch.tensor(
        [[fmt.bos, *[fmt.image] * fmt.num_visual_tokens, *[model.audio_id] * k, 0, 0]]
    )
    wave = torch.from_numpy(clip.wave)[None]
    batch = OmniBatch(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        labels=torch.full_like(ids, -100),
        pixel_values=normalize_pixels(pixels[None]),
        audio=wave,
        audio_lengths=torch.tensor([wave.shape[1]]),
        answer_ids=torch.zeros(1, dtype=torch.long),
        question_type=torch.zeros(1, dtype=torch.long),
    )
    answer, state = model.answer(batch)
    units = model.speech_decoder.generate(state)[0]
    speech = model.speech_decoder.to_wave(units).numpy()
    return Answer(run.tokenizer.id_to_token(int(answer)), speech, clip.notes)
