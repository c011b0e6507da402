"""AV-Digits-Video: talking-digit clips for semi-supervised audio-visual learning.

Each clip shows ``1 + distractors`` handwritten digits (real scans from
scikit-learn's ``load_digits``, as in AV-Digits) drifting across a dark canvas.
One of them is *sounding*: its English word is spoken in the audio track
(espeak-ng, a sampled voice, a random onset, coloured noise at a low SNR) and its
size pulses with the loudness envelope of that speech. Each distractor pulses with
the envelope of another utterance that is not in the audio, so only the timing
ties the sounding digit to the sound. The label is the sounding digit.

A sample holds:

- ``video`` (T, 1, S, S) float in about [0, 1] (pixel noise added);
- ``audio`` (40, 101): log-mel of the 1 s clip (25 ms window, 10 ms hop);
- ``label`` (): the sounding digit;
- ``boxes`` (T, 4): the sounding digit's box per frame, ``(y0, x0, y1, x1)`` in
  pixels, end exclusive (the localisation ground truth, never a training input);
- ``label_mask`` () on the training split when ``labelled_per_class`` is set:
  True for the first ``labelled_per_class`` clips of each class (a view of one
  cached build: every labelled subset shares the clips);
- ``index`` ().

Train, val and test share no digit scan and no voice: ``provenance.safetensors``
in the cache folder records, per clip, the scans drawn (sounding one first) and
the voices of the spoken word and of the distractors' envelopes.

Difficulty knobs: ``audio_snr_db`` (the spoken word under noise), ``pixel_noise``,
``distractors`` and the pulse amplitudes (``pulse`` of the sounding digit,
``distractor_pulse`` of the others: equal amplitudes leave only the timing cue).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import Tensor

from polymodal.data.cache import cached_build
from polymodal.data.dataset import TensorDictDataset
from polymodal.data.options import check_option_types
from polymodal.data.registry import register_dataset
from polymodal.data.synth.av_digits import CLIP_SECONDS, SPLITS, WORDS, _place, clip_features
from polymodal.errors import ConfigError

VERSION = "1"
DIGIT_PIXELS = 10.0
"""Side of a digit at rest on a 32-pixel canvas (scaled with ``size``)."""


@dataclass(frozen=True)
class AVDigitsVideoConfig:
    """Everything a build depends on (the cache key)."""

    seed: int = 0
    train: int = 2000
    val: int = 300
    test: int = 500
    frames: int = 8
    size: int = 32
    distractors: int = 1
    voices: int = 60
    audio_snr_db: float = -15.0
    pixel_noise: float = 0.15
    pulse: float = 1.0
    distractor_pulse: float = 0.35
    speed: float = 0.8
    labelled_per_class: int | None = None

    def count(self, split: str) -> int:
        return int(getattr(self, split))


def envelope(clip: np.ndarray, frames: int) -> np.ndarray:
    """Loudness of ``clip`` over ``frames`` equal windows, scaled to a peak of 1.

    Args:
        clip: (S,) waveform.
        frames: T windows.

    Returns:
        (T,) RMS per window divided by the largest (zeros for a silent clip).
    """
    windows = np.array_split(clip.astype(np.float64), frames)
    rms = np.array([math.sqrt(float(np.mean(w**2))) for w in windows])
    peak = rms.max()
    return (rms / peak if peak > 0 else rms).astype(np.float32)


def trajectories(
    n: int, digits: int, frames: int, size: int, speed: float, rng: np.random.Generator
) -> np.ndarray:
    """Centres of ``digits`` digits per clip drifting in straight lines, in pixels.

    Start points keep a digit inside the canvas; the sounding digit (index 0) and
    the others start in different quadrants, so digits rarely sit on each other.

    Returns:
        (n, digits, T, 2) float32 ``(y, x)`` centres.
    """
    margin = DIGIT_PIXELS * size / 32 * 0.8
    quadrants = np.argsort(rng.random((n, 4)), axis=1)[:, :digits]  # distinct per clip
    half = size / 2
    low = np.stack([(quadrants // 2) * half, (quadrants % 2) * half], -1)  # (n, K, 2)
    start = low + margin / 2 + rng.random((n, digits, 2)) * (half - margin)
    start = np.clip(start, margin, size - margin)
    angle = rng.uniform(0, 2 * np.pi, (n, digits))
    velocity = speed * np.stack([np.sin(angle), np.cos(angle)], -1)  # pixels per frame
    steps = np.arange(frames)[None, None, :, None]
    centres = start[:, :, None] + steps * velocity[:, :, None]
    return np.clip(centres, margin, size - margin).astype(np.float32)


def render_clips(
    scans: Tensor, centres: Tensor, scales: Tensor, size: int, chunk: int = 4096
) -> Tensor:
    """Paint 8×8 scans on a dark canvas, frame by frame, brightest digit on top.

    Args:
        scans: (N, K, 8, 8) digit intensities in [0, 1].
        centres: (N, K, T, 2) ``(y, x)`` centres in pixels.
        scales: (N, K, T) digit side in pixels.
        size: canvas side S.
        chunk: digit-frames rendered per ``grid_sample`` call (bounds memory).

    Returns:
        (N, T, 1, S, S) float32 frames in [0, 1].
    """
    n, k, t = scales.shape
    flat_scans = scans[:, :, None].expand(n, k, t, 8, 8).reshape(-1, 1, 8, 8)
    # affine_grid maps output coordinates in [-1, 1] to input ones: a digit of side
    # s pixels centred at c spans (c ± s/2) / (S/2) - 1 in output coordinates.
    zoom = (size / scales).reshape(-1)
    centre = (centres / (size / 2) - 1).reshape(-1, 2)
    theta = torch.zeros(n * k * t, 2, 3)
    theta[:, 0, 0] = zoom
    theta[:, 1, 1] = zoom
    theta[:, 0, 2] = -centre[:, 1] * zoom
    theta[:, 1, 2] = -centre[:, 0] * zoom
    out = []
    for start in range(0, len(theta), chunk):
        part = theta[start : start + chunk]
        grid = F.affine_grid(part, [len(part), 1, size, size], align_corners=False)
        out.append(F.grid_sample(flat_scans[start : start + chunk], grid, align_corners=False))
    painted = torch.cat(out).reshape(n, k, t, 1, size, size)
    return painted.amax(dim=1)


def digit_boxes(centres: Tensor, scales: Tensor, size: int) -> Tensor:
    """(…, 4) integer pixel boxes ``(y0, x0, y1, x1)`` (end exclusive) of digits of side
    ``scales`` (…) centred at ``centres`` (…, 2), clipped to the canvas."""
    half = scales[..., None] / 2
    low = (centres - half).round().clamp(0, size)
    high = (centres + half).round().clamp(0, size)
    return torch.cat([low, high], dim=-1)


@dataclass
class _Sources:
    """What every split draws from: scans, voices, per-split pools, the speech."""

    scans: Tensor  # (1797, 8, 8) in [0, 1]
    targets: np.ndarray  # (1797,)
    scan_pools: dict[str, np.ndarray]
    voice_pools: dict[str, np.ndarray]
    waves: dict[tuple[int, int], np.ndarray]


def _sources(config: AVDigitsVideoConfig) -> _Sources:
    from sklearn.datasets import load_digits

    from polymodal.data.synth.speech import Utterance, sample_voices, synthesize

    digits = load_digits()
    scans = torch.from_numpy(digits.images / 16.0).float()
    rng = np.random.default_rng(config.seed)

    def pools(n: int) -> dict[str, np.ndarray]:
        order = rng.permutation(n)
        cuts = [round(0.7 * n), round(0.85 * n)]
        return dict(zip(SPLITS, np.split(order, cuts), strict=True))

    scan_pools = pools(len(scans))
    voices = sample_voices(config.voices, seed=config.seed)
    voice_pools = pools(len(voices))
    keys = [(v, d) for v in range(len(voices)) for d in range(10)]
    said = [Utterance(WORDS[d], voices[v], seed=config.seed) for v, d in keys]
    waves = dict(zip(keys, synthesize(said, progress=True), strict=True))
    return _Sources(scans, digits.target.astype(np.int64), scan_pools, voice_pools, waves)


def _split(config: AVDigitsVideoConfig, sources: _Sources, split: str) -> dict[str, Tensor]:
    """The tensors of one split, plus its provenance under ``provenance.*`` keys."""
    from polymodal.data.synth.acoustics import add_noise
    from polymodal.data.synth.speech import SAMPLE_RATE

    rng = np.random.default_rng([config.seed, SPLITS.index(split)])
    n, k, t, size = config.count(split), 1 + config.distractors, config.frames, config.size
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    scan_pool, voice_pool = sources.scan_pools[split], sources.voice_pools[split]
    by_digit = {d: scan_pool[sources.targets[scan_pool] == d] for d in range(10)}
    # Distractors show other digits than the sounding one.
    shown = np.stack([labels, *((labels + rng.integers(1, 10, n)) % 10 for _ in range(k - 1))], 1)
    scans = np.vectorize(lambda d: rng.choice(by_digit[int(d)]))(shown)  # (n, K)
    voices = rng.choice(voice_pool, (n, k))  # voice 0 speaks; the others only pulse
    length = int(CLIP_SECONDS * SAMPLE_RATE)
    clips = np.empty((n, length), np.float32)
    pulses = np.empty((n, k, t), np.float32)
    colours = ("white", "pink", "brown")
    for i in range(n):
        spoken = _place(sources.waves[(int(voices[i, 0]), int(labels[i]))], length, rng)
        pulses[i, 0] = config.pulse * envelope(spoken, t)
        for j in range(1, k):
            other = sources.waves[(int(voices[i, j]), int(rng.integers(10)))]
            pulses[i, j] = config.distractor_pulse * envelope(_place(other, length, rng), t)
        colour = colours[int(rng.integers(len(colours)))]
        clips[i] = add_noise(spoken, config.audio_snr_db, rng, color=colour)
    centres = torch.from_numpy(trajectories(n, k, t, size, config.speed, rng))
    scales = DIGIT_PIXELS * size / 32 * (1 + torch.from_numpy(pulses))  # (n, K, T)
    video = render_clips(sources.scans[torch.from_numpy(scans)], centres, scales, size)
    video = video + config.pixel_noise * torch.from_numpy(rng.standard_normal(video.shape)).float()
    tensors = {
        "video": video.half(),
        "audio": clip_features(clips).half(),
        "label": torch.from_numpy(labels),
        "boxes": digit_boxes(centres[:, 0], scales[:, 0], size),
        "index": torch.arange(n),
        "provenance.scans": torch.from_numpy(scans),
        "provenance.voices": torch.from_numpy(voices),
    }
    return tensors


def labelled_mask(labels: Tensor, per_class: int) -> Tensor:
    """(N,) bool: True for the first ``per_class`` clips of each class in ``labels`` (N,)."""
    mask = torch.zeros(len(labels), dtype=torch.bool)
    for digit in labels.unique():
        mask[torch.nonzero(labels == digit).flatten()[:per_class]] = True
    return mask


def build(config: AVDigitsVideoConfig, folder: Path) -> dict[str, Any]:
    """Write ``{train,val,test}.safetensors`` and ``provenance.safetensors`` into ``folder``."""
    sources = _sources(config)
    provenance: dict[str, Tensor] = {}
    sizes = {}
    for split in SPLITS:
        tensors = _split(config, sources, split)
        for key in [key for key in tensors if key.startswith("provenance.")]:
            provenance[f"{split}.{key.removeprefix('provenance.')}"] = tensors.pop(key)
        TensorDictDataset(tensors).save(folder / f"{split}.safetensors")
        sizes[split] = config.count(split)
    save_file(provenance, str(folder / "provenance.safetensors"))
    return {"sizes": sizes, "voices": config.voices}


class AVDigitsVideo(TensorDictDataset):
    """One split: ``video``, ``audio``, ``label``, ``boxes``, ``index`` (+ ``label_mask``)."""

    num_classes = 10


def _config(**options: Any) -> AVDigitsVideoConfig:
    """The checked :class:`AVDigitsVideoConfig` of ``options``.

    Raises:
        ConfigError: an unknown option or an impossible value.
    """
    check_option_types(AVDigitsVideoConfig, options, "av_digits_video")
    try:
        config = AVDigitsVideoConfig(**options)
    except TypeError as error:
        valid = ", ".join(asdict(AVDigitsVideoConfig()))
        raise ConfigError(f"av_digits_video: {error}; valid options: {valid}") from error
    if min(config.train, config.val, config.test) < 10 or config.voices < 20:
        raise ConfigError("av_digits_video needs at least 10 clips per split and 20 voices")
    if not 0 <= config.distractors <= 3:
        raise ConfigError(f"av_digits_video: distractors must be 0..3, got {config.distractors}")
    if config.size < 16 or config.frames < 2:
        raise ConfigError("av_digits_video needs size >= 16 and frames >= 2")
    if config.labelled_per_class is not None and config.labelled_per_class < 1:
        raise ConfigError("av_digits_video: labelled_per_class must be at least 1 (or null)")
    return config


def build_av_digits_video(**options: Any) -> Path:
    """Build (or reuse from the cache) AV-Digits-Video and return its folder."""
    config = replace(_config(**options), labelled_per_class=None)  # a view, not a build
    return cached_build(
        "av_digits_video", VERSION, asdict(config), lambda f: build(config, f), code=(__name__,)
    )


@register_dataset("av_digits_video")
def load_av_digits_video(split: str, **options: Any) -> AVDigitsVideo:
    """The ``split`` of AV-Digits-Video built with ``options`` (:class:`AVDigitsVideoConfig`)."""
    if split not in SPLITS:
        raise ConfigError(f"av_digits_video has splits {SPLITS}, not {split!r}")
    folder = build_av_digits_video(**options)
    tensors = TensorDictDataset.load(folder / f"{split}.safetensors").tensors
    per_class = options.get("labelled_per_class")
    if per_class is not None and split == "train":
        tensors["label_mask"] = labelled_mask(tensors["label"], per_class)
    return AVDigitsVideo(tensors)
