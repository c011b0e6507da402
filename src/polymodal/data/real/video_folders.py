"""Folders of video clips with sound: a user's own labelled and unlabelled clips.

Each folder holds video files (``.mp4``, ``.avi``, ``.mkv``, ``.mov``, ``.webm``);
a clip's sound is ``<stem>.wav`` beside it when there is one, else the container's
audio track. Clips are decoded with PyAV (FFmpeg): T frames sampled evenly over the
clip, turned grey (or kept RGB) and resized to S × S, and the first
``audio_seconds`` of the sound (mono, 16 kHz, zero-padded) as a 40-band log-mel.

A labelled folder has ``labels.csv`` with a header ``clip,label``: one row per clip
(file name), label a class name. Class ids are the sorted class names of the
labelled training folder. Registered as ``av_video_folders``: the training split is
the ``labelled`` folder plus the ``unlabelled`` one (``label_mask`` False), ``val``
and ``test`` are labelled folders.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from polymodal.data.dataset import TensorDictDataset
from polymodal.data.features import log_mel
from polymodal.data.registry import register_dataset
from polymodal.errors import ConfigError, DataError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")
LABELS = "labels.csv"
SAMPLE_RATE = 16_000


def _frames(container: Any, path: Path, frames: int, channels: int) -> np.ndarray:
    """(T, H, W, C) uint8: ``frames`` evenly spaced frames of the first video stream."""
    if not container.streams.video:
        raise DataError(f"{path.name} has no video stream; every clip needs pictures")
    layout = "gray" if channels == 1 else "rgb24"
    decoded = [f.to_ndarray(format=layout) for f in container.decode(video=0)]
    if len(decoded) < frames:
        raise DataError(
            f"{path.name} has {len(decoded)} frames, fewer than the {frames} a clip needs; "
            "lower data.options.frames or leave the clip out"
        )
    picks = np.linspace(0, len(decoded) - 1, frames).round().astype(int)
    return np.stack([decoded[i].reshape(*decoded[i].shape[:2], channels) for i in picks])


def _track(container: Any) -> np.ndarray | None:
    """(S,) float32 mono 16 kHz samples of the first audio stream, or None without one."""
    import av

    if not container.streams.audio:
        return None
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    chunks = []
    for frame in container.decode(audio=0):
        for out in resampler.resample(frame):
            chunks.append(out.to_ndarray().reshape(-1))
    chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)


def read_clip(
    path: str | Path,
    frames: int = 8,
    size: int = 32,
    channels: int = 1,
    audio_seconds: float = 1.0,
) -> dict[str, Tensor]:
    """One clip as ``{"video": (T, C, S, S) in [0, 1], "audio": (40, 1 + samples // 160)}``.

    Args:
        path: a video file; ``<stem>.wav`` beside it replaces its audio track.
        frames: T.
        size: S.
        channels: 1 (grey) or 3 (RGB).
        audio_seconds: length of sound kept from the start (zero-padded).

    Raises:
        DataError: an unreadable file, no video stream, fewer than T frames, or no
            sound (neither an audio track nor a WAV beside the clip).
    """
    import av

    from polymodal.data.real.wav import read_wav

    path = Path(path)
    try:
        with av.open(str(path)) as container:
            pictures = _frames(container, path, frames, channels)
        wav = path.with_suffix(".wav")
        sound: np.ndarray | None
        if wav.is_file():
            sound = read_wav(wav, SAMPLE_RATE).numpy()
        else:
            with av.open(str(path)) as container:
                sound = _track(container)
    except av.error.FFmpegError as error:
        raise DataError(f"{path.name} cannot be decoded: {error}") from error
    if sound is None:
        raise DataError(
            f"{path.name} has no audio track and no {wav.name} beside it; add the sound "
            "or leave the clip out"
        )
    video = torch.from_numpy(pictures).permute(0, 3, 1, 2).float() / 255  # (T, C, H, W)
    video = F.interpolate(video, size=(size, size), mode="area")
    length = int(audio_seconds * SAMPLE_RATE)
    clip = np.zeros(length, np.float32)
    clip[: min(length, len(sound))] = sound[:length]
    return {"video": video, "audio": log_mel(torch.from_numpy(clip))}


def clip_files(folder: Path) -> list[Path]:
    """The video files of ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)


def read_labels(folder: Path) -> dict[str, str]:
    """``{clip file name: class name}`` from ``folder/labels.csv``.

    Raises:
        DataError: no label file, a bad header, or a row naming a clip that is not there.
    """
    file = folder / LABELS
    if not file.is_file():
        raise DataError(f"{folder} has no {LABELS} (a header 'clip,label', one row per clip)")
    with file.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if rows and not {"clip", "label"} <= set(rows[0]):
        raise DataError(f"{file} needs the header 'clip,label', got {sorted(rows[0])}")
    labels = {row["clip"].strip(): row["label"].strip() for row in rows}
    for name in labels:
        if not (folder / name).is_file():
            raise DataError(f"{file} names {name!r}, which is not in {folder}")
    return labels


def read_folder(
    folder: Path, classes: Sequence[str] | None, labelled: bool, **clip: Any
) -> dict[str, Tensor]:
    """Every clip of a folder stacked: ``video``, ``audio``, ``label``, ``label_mask``.

    ``label`` is the class id in ``classes`` (0 for unlabelled clips); a labelled
    folder reads only the clips its label file names.
    """
    if not folder.is_dir():
        raise DataError(f"clip folder {folder} does not exist")
    names = read_labels(folder) if labelled else {p.name: "" for p in clip_files(folder)}
    if not names:
        raise DataError(f"{folder} holds no clips ({', '.join(VIDEO_SUFFIXES)})")
    unknown = sorted({c for c in names.values() if labelled and c not in (classes or ())})
    if unknown:
        raise DataError(f"{folder / LABELS}: classes {unknown} are not in the training labels")
    samples = [read_clip(folder / name, **clip) for name in sorted(names)]
    count = len(samples)
    ids = [classes.index(names[n]) if labelled and classes else 0 for n in sorted(names)]
    return {
        "video": torch.stack([s["video"] for s in samples]),
        "audio": torch.stack([s["audio"] for s in samples]),
        "label": torch.tensor(ids, dtype=torch.long),
        "label_mask": torch.full((count,), labelled),
        "index": torch.arange(count),
    }


class VideoFolders(TensorDictDataset):
    """One split of a user's clip folders; ``classes`` names the class ids."""

    def __init__(self, tensors: dict[str, Tensor], classes: Sequence[str]) -> None:
        super().__init__(tensors)
        self.classes = list(classes)
        self.num_classes = len(self.classes)


@register_dataset("av_video_folders")
def load_video_folders(
    split: str,
    labelled: str | None = None,
    unlabelled: str | None = None,
    val: str | None = None,
    test: str | None = None,
    frames: int = 8,
    size: int = 32,
    channels: int = 1,
    audio_seconds: float = 1.0,
) -> VideoFolders:
    """The ``split`` of a user's clip folders (module doc).

    Raises:
        ConfigError: a folder the split needs is not set, or a bad size.
        DataError: as :func:`read_clip` and :func:`read_labels`.
    """
    folders = {"train": labelled, "val": val, "test": test}
    if split not in folders:
        raise ConfigError(f"av_video_folders has splits train, val, test, not {split!r}")
    if labelled is None or folders[split] is None:
        option = "labelled" if split == "train" else split
        raise ConfigError(f"av_video_folders: set data.options.{option} to a folder of clips")
    if channels not in (1, 3) or frames < 1 or size < 4:
        raise ConfigError("av_video_folders: channels must be 1 or 3, frames >= 1, size >= 4")
    clip = {"frames": frames, "size": size, "channels": channels, "audio_seconds": audio_seconds}
    classes = sorted(set(read_labels(Path(labelled)).values()))
    tensors = read_folder(Path(str(folders[split])), classes, True, **clip)
    if split == "train" and unlabelled is not None:
        extra = read_folder(Path(unlabelled), classes, False, **clip)
        tensors = {k: torch.cat([tensors[k], extra[k]]) for k in tensors}
        tensors["index"] = torch.arange(len(tensors["label"]))
    return VideoFolders(tensors, classes)
