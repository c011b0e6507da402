"""AV-Digits: the embedded audio-visual digit data set.

Each pair shows one digit twice:

* **image** (1, 28, 28): a real handwritten digit from scikit-learn's
  ``load_digits`` (8×8, 1,797 scans), placed in a 28×28 frame with a small random
  affine jitter (rotation, scale, shift), then degraded by Gaussian pixel noise
  and a square occluder;
* **audio** (40, 101): the digit's English word spoken by espeak-ng with a
  sampled voice configuration (language, variant, pitch, rate, volume), placed at
  a random offset in a 1 s window, mixed with coloured noise at a given SNR and
  turned into a log-mel spectrogram (25 ms window, 10 ms hop, 40 bands).

Train, val and test share no source image and no voice configuration.

Difficulty knobs (defaults chosen so that neither modality alone is near
perfect; see the README for the measured unimodal accuracies):

* ``image_noise`` — std of the Gaussian pixel noise (pixels are in [0, 1]);
* ``image_occlusion`` — side in pixels of the occluding square (0 = none);
* ``audio_snr_db`` — signal-to-noise ratio of the noise mixed into the 1 s clip;
* ``audio_rt60`` — optional room reverberation time in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import Tensor

from polymodal.data.cache import cached_build
from polymodal.data.dataset import TensorDictDataset
from polymodal.data.features import log_mel
from polymodal.data.registry import register_dataset
from polymodal.errors import ConfigError

VERSION = "2"
SPLITS = ("train", "val", "test")
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
CLIP_SECONDS = 1.0


@dataclass(frozen=True)
class AVDigitsConfig:
    """Everything an AV-Digits build depends on (the cache key)."""

    seed: int = 0
    train: int = 8000
    val: int = 1000
    test: int = 1000
    voices: int = 240
    image_noise: float = 0.35
    image_occlusion: int = 6
    audio_snr_db: float = -13.0
    audio_rt60: float | None = None

    def size(self, split: str) -> int:
        return int(getattr(self, split))


def _split_indices(
    n: int, rng: np.random.Generator, fractions: Sequence[float]
) -> list[np.ndarray]:
    """A seeded partition of ``range(n)`` into len(fractions) disjoint parts."""
    order = rng.permutation(n)
    cuts = np.cumsum([round(f * n) for f in fractions[:-1]])
    return np.split(order, cuts)


def render_digits(
    sources: Tensor, rng: np.random.Generator, noise: float, occlusion: int
) -> Tensor:
    """Place 8×8 digits in 28×28 frames with jitter, noise and an occluder.

    Args:
        sources: (N, 8, 8) digit intensities in [0, 1].
        rng: seeded generator for the jitter, noise and occluder positions.
        noise: std of additive Gaussian pixel noise.
        occlusion: side of the occluding square in pixels (0 disables it).

    Returns:
        (N, 1, 28, 28) float32 images.
    """
    n = sources.shape[0]
    angle = torch.from_numpy(rng.uniform(-0.2, 0.2, n)).float()  # about ±11 degrees
    # The digit spans ~20 of the 28 pixels, as MNIST digits do; 28/20 = 1.4.
    scale = 1.4 / torch.from_numpy(rng.uniform(0.9, 1.1, n)).float()
    shift = torch.from_numpy(rng.uniform(-2 / 14, 2 / 14, (n, 2))).float()
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )  # (N, 2, 3) maps output coordinates to input coordinates
    grid = F.affine_grid(theta, [n, 1, 28, 28], align_corners=False)
    images = F.grid_sample(sources[:, None].float(), grid, align_corners=False)
    images = images + noise * torch.from_numpy(rng.standard_normal(images.shape)).float()
    if occlusion > 0:
        corners = rng.integers(0, 28 - occlusion + 1, (n, 2))
        shade = torch.from_numpy(rng.uniform(0.0, 1.0, n)).float()
        for i, (top, left) in enumerate(corners):
            images[i, :, top : top + occlusion, left : left + occlusion] = shade[i]
    return images


def _place(wave: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """Put ``wave`` at a random offset in a zero clip of ``length`` samples (crop if longer)."""
    if len(wave) >= length:
        start = (len(wave) - length) // 2
        return wave[start : start + length].copy()
    clip = np.zeros(length, dtype=np.float32)
    offset = int(rng.integers(0, length - len(wave) + 1))
    clip[offset : offset + len(wave)] = wave
    return clip


def _speak(config: AVDigitsConfig, voices: Sequence[Any]) -> dict[tuple[int, int], np.ndarray]:
    """Every digit word in every voice: {(voice index, digit): 16 kHz waveform}."""
    from polymodal.data.synth.speech import Utterance, synthesize

    keys = [(v, d) for v in range(len(voices)) for d in range(10)]
    utterances = [Utterance(WORDS[d], voices[v], seed=config.seed) for v, d in keys]
    waves = synthesize(utterances, progress=True)
    return dict(zip(keys, waves, strict=True))


def _audio_clips(
    waves: dict[tuple[int, int], np.ndarray],
    voice_pool: np.ndarray,
    labels: np.ndarray,
    config: AVDigitsConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """(N, S) noisy 16 kHz clips, one per label, and the voices used."""
    from polymodal.data.synth.acoustics import add_noise, room_reverb
    from polymodal.data.synth.speech import SAMPLE_RATE

    length = int(CLIP_SECONDS * SAMPLE_RATE)
    colors = ("white", "pink", "brown")
    clips = np.empty((len(labels), length), dtype=np.float32)
    voices = rng.choice(voice_pool, size=len(labels))
    for i, (label, voice) in enumerate(zip(labels, voices, strict=True)):
        clip = _place(waves[(int(voice), int(label))], length, rng)
        if config.audio_rt60:
            clip = room_reverb(clip, config.audio_rt60, rng)
        color = colors[int(rng.integers(len(colors)))]
        clips[i] = add_noise(clip, config.audio_snr_db, rng, color=color)
    return clips, voices


def clip_features(clips: np.ndarray) -> Tensor:
    """(N, 40, 101) log-mel features of (N, S) clips, computed in ten chunks to bound memory."""
    chunks = [chunk for chunk in np.array_split(clips, 10) if len(chunk)]
    return torch.cat([log_mel(torch.from_numpy(chunk)) for chunk in chunks])


def _audio_features(
    waves: dict[tuple[int, int], np.ndarray],
    voice_pool: np.ndarray,
    labels: np.ndarray,
    config: AVDigitsConfig,
    rng: np.random.Generator,
) -> tuple[Tensor, np.ndarray]:
    """(N, 40, 101) log-mel features of noisy clips, one per label, and the voices used."""
    clips, voices = _audio_clips(waves, voice_pool, labels, config, rng)
    return clip_features(clips), voices


@dataclass
class _Sources:
    """What every split is drawn from: digit scans, voices, their per-split pools, the speech."""

    images: Tensor  # (1797, 8, 8) in [0, 1]
    targets: np.ndarray  # (1797,) digit of each scan
    image_pools: dict[str, np.ndarray]
    voice_pools: dict[str, np.ndarray]
    voices: list[Any]
    waves: dict[tuple[int, int], np.ndarray]


def _sources(config: AVDigitsConfig) -> _Sources:
    from sklearn.datasets import load_digits

    from polymodal.data.synth.speech import sample_voices

    digits = load_digits()
    sources = torch.from_numpy(digits.images / 16.0).float()  # (1797, 8, 8)
    targets = digits.target.astype(np.int64)
    rng = np.random.default_rng(config.seed)
    fractions = (0.7, 0.15, 0.15)
    image_pools = dict(zip(SPLITS, _split_indices(len(sources), rng, fractions), strict=True))
    voices = sample_voices(config.voices, seed=config.seed)
    voice_pools = dict(zip(SPLITS, _split_indices(len(voices), rng, fractions), strict=True))
    return _Sources(sources, targets, image_pools, voice_pools, voices, _speak(config, voices))


def _draw_split(
    config: AVDigitsConfig, sources: _Sources, split: str
) -> tuple[np.ndarray, np.ndarray, Tensor, np.random.Generator]:
    """Labels, chosen scans and rendered images of a split, and its generator, ready for audio."""
    split_rng = np.random.default_rng([config.seed, SPLITS.index(split)])
    n = config.size(split)
    labels = np.arange(n) % 10
    split_rng.shuffle(labels)
    pool = sources.image_pools[split]
    by_label = {d: pool[sources.targets[pool] == d] for d in range(10)}
    chosen = np.array([split_rng.choice(by_label[int(y)]) for y in labels])
    images = render_digits(
        sources.images[chosen], split_rng, config.image_noise, config.image_occlusion
    )
    return labels, chosen, images, split_rng


def build(config: AVDigitsConfig, folder: Path) -> dict[str, Any]:
    """Write ``{train,val,test}.safetensors`` for ``config`` into ``folder``."""
    drawn = _sources(config)
    waves = drawn.waves
    sizes = {}
    provenance: dict[str, Tensor] = {}
    for split in SPLITS:
        n = config.size(split)
        labels, chosen, images, split_rng = _draw_split(config, drawn, split)
        audio, voices_used = _audio_features(
            waves, drawn.voice_pools[split], labels, config, split_rng
        )
        # Which scan and which voice configuration each pair was made from.
        provenance[f"{split}.image_source"] = torch.from_numpy(chosen)
        provenance[f"{split}.voice"] = torch.from_numpy(voices_used)
        dataset = TensorDictDataset(
            {
                "image": images.half(),
                "audio": audio.half(),
                "label": torch.from_numpy(labels),
                "index": torch.arange(n),
            }
        )
        dataset.save(folder / f"{split}.safetensors")
        sizes[split] = n
    save_file(provenance, str(folder / "provenance.safetensors"))
    return {"sizes": sizes, "source_images": len(drawn.images), "voices": len(drawn.voices)}


class AVDigits(TensorDictDataset):
    """One split of AV-Digits; samples are ``{"image", "audio", "label", "index"}``."""

    num_classes = 10


def _config(**options: Any) -> AVDigitsConfig:
    """The :class:`AVDigitsConfig` of ``options``, checked.

    Raises:
        ConfigError: an unknown option or an impossible value.
    """
    try:
        config = AVDigitsConfig(**options)
    except TypeError as error:
        valid = ", ".join(asdict(AVDigitsConfig()))
        raise ConfigError(f"AV-Digits: {error}; valid options: {valid}") from error
    if min(config.train, config.val, config.test) <= 0 or config.voices < 20:
        raise ConfigError("AV-Digits needs positive split sizes and at least 20 voices")
    if not math.isfinite(config.audio_snr_db):
        raise ConfigError("AV-Digits: audio_snr_db must be a finite number")
    return config


def build_av_digits(**options: Any) -> Path:
    """Build (or reuse from the cache) AV-Digits and return its folder."""
    config = _config(**options)
    return cached_build("av_digits", VERSION, asdict(config), lambda f: build(config, f))


@register_dataset("av_digits")
def load_av_digits(split: str, **options: Any) -> AVDigits:
    """The ``split`` of AV-Digits built with ``options`` (see :class:`AVDigitsConfig`)."""
    if split not in SPLITS:
        raise ConfigError(f"AV-Digits has splits {SPLITS}, not {split!r}")
    folder = build_av_digits(**options)
    return AVDigits(TensorDictDataset.load(folder / f"{split}.safetensors").tensors)


def load_av_digits_waveforms(split: str, **options: Any) -> dict[str, Tensor]:
    """The audio of one split as waveforms: the clips :func:`build` turned into log-mel.

    The clips are drawn again from the same seeds, so ``clip_features(audio)`` reproduces
    the stored ``audio`` features (up to their float16 storage). The cached build and its
    key are not touched; speech synthesis is read from its own cache. Use it to corrupt the
    waveform before the features are computed (see :mod:`polymodal.data.corrupt`).

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        **options: the :class:`AVDigitsConfig` options of the build.

    Returns:
        ``{"audio": (N, S) float32 16 kHz clips, "label": (N,) int64, "index": (N,)}``,
        in the order of the stored split.
    """
    if split not in SPLITS:
        raise ConfigError(f"AV-Digits has splits {SPLITS}, not {split!r}")
    config = _config(**options)
    drawn = _sources(config)
    labels, _, _, split_rng = _draw_split(config, drawn, split)
    clips, _ = _audio_clips(drawn.waves, drawn.voice_pools[split], labels, config, split_rng)
    return {
        "audio": torch.from_numpy(clips),
        "label": torch.from_numpy(labels),
        "index": torch.arange(len(labels)),
    }
