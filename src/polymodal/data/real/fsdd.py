"""The Free Spoken Digit Dataset (FSDD) read from its WAV recordings.

FSDD is a folder of ``{digit}_{speaker}_{take}.wav`` files (mono 8 kHz; the public
release has 6 speakers x 10 digits x 50 takes). The standard split holds out takes
0-4 of every speaker for testing and trains on the rest.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from polymodal.data.contract import validate_sample
from polymodal.data.features import log_mel
from polymodal.data.real.wav import read_wav
from polymodal.errors import ConfigError, DataError

__all__ = ["FSDD", "FSDD_NAME", "TEST_TAKES", "fit_length", "parse_fsdd_name"]

FSDD_NAME = re.compile(r"^(?P<digit>\d)_(?P<speaker>[^_]+)_(?P<take>\d+)\.wav$")
"""File names of FSDD recordings: ``{digit}_{speaker}_{take}.wav``."""

TEST_TAKES = range(0, 5)
"""Takes held out for testing (of every speaker), as in the FSDD README."""

Split = Literal["train", "test", "all"]
Features = Literal["log_mel", "waveform"]


def parse_fsdd_name(name: str) -> tuple[int, str, int] | None:
    """``"3_jackson_7.wav"`` -> ``(3, "jackson", 7)``; None for other names."""
    match = FSDD_NAME.match(name)
    if match is None:
        return None
    return int(match["digit"]), match["speaker"], int(match["take"])


def fit_length(wave: Tensor, length: int) -> Tensor:
    """Centre-crop or centre-pad (with zeros) a (S,) waveform to ``length`` samples."""
    size = wave.shape[-1]
    if size == length:
        return wave
    if size > length:
        start = (size - length) // 2
        return wave[..., start : start + length]
    left = (length - size) // 2
    return torch.nn.functional.pad(wave, (left, length - size - left))


def _find_recordings(root: Path) -> tuple[Path, list[tuple[Path, int, str, int]], list[str]]:
    """The folder actually holding the recordings, the parsed files and the misnamed ones."""
    folders = [root]
    if (root / "recordings").is_dir():
        folders.append(root / "recordings")
    for folder in folders:
        parsed: list[tuple[Path, int, str, int]] = []
        misnamed: list[str] = []
        for path in folder.glob("*.wav"):
            fields = parse_fsdd_name(path.name)
            if fields is None:
                misnamed.append(path.name)
            else:
                parsed.append((path, *fields))
        if parsed:
            parsed.sort(key=lambda item: (item[1], item[2], item[3]))
            return folder, parsed, sorted(misnamed)
    raise DataError(f"no FSDD recordings ({{digit}}_{{speaker}}_{{take}}.wav) found in {root}")


class FSDD(Dataset[dict[str, Tensor]]):
    """Spoken digits from a folder of FSDD recordings.

    Files are read when a sample is requested (nothing is cached) unless
    :meth:`preload` is called, which reads and featurises every recording once.

    Each waveform is resampled to ``sample_rate`` and centre-cropped or
    centre-padded with zeros to ``duration`` seconds, so samples of one dataset
    share a shape and collate. ``.wav`` files whose names do not follow
    ``{digit}_{speaker}_{take}.wav`` are skipped with one warning that counts them;
    other files are ignored silently.

    Args:
        root: the folder of ``.wav`` files, or a folder with a ``recordings/``
            sub-folder (the layout of the FSDD repository). A ``speakers.json``
            beside the recordings or in ``root`` fills :attr:`speaker_info`.
        split: ``"test"`` keeps takes 0-4 of every speaker, ``"train"`` the other
            takes, ``"all"`` everything.
        sample_rate: rate in Hz the audio is resampled to.
        features: ``"log_mel"`` gives ``audio`` (40, T) log-mel with a 25 ms window
            and 10 ms hop (T = 101 for 1 s); ``"waveform"`` gives (S,) with
            S = round(duration * sample_rate).
        duration: seconds per sample; ``None`` keeps each recording's own length
            (samples then differ in length; batch them with
            ``functools.partial(collate, variable=("audio",))``, which pads
            along time and adds ``audio_mask`` (B, T)).
        n_mels: mel bands for ``"log_mel"``.

    Samples are ``{"audio": (40, T) float32 or (S,) float32, "label": () int64}``.
    Per-sample metadata lives in the attributes :attr:`files`, :attr:`labels`,
    :attr:`speakers` and :attr:`takes` (same order as the samples).

    Raises:
        DataError: missing folder, or no FSDD recordings in it.
    """

    def __init__(
        self,
        root: str | Path,
        split: Split = "train",
        sample_rate: int = 16_000,
        features: Features = "log_mel",
        duration: float | None = 1.0,
        n_mels: int = 40,
    ) -> None:
        if split not in ("train", "test", "all"):
            raise ConfigError(f"split must be 'train', 'test' or 'all', got {split!r}")
        if features not in ("log_mel", "waveform"):
            raise ConfigError(f"features must be 'log_mel' or 'waveform', got {features!r}")
        if sample_rate <= 0:
            raise ConfigError(f"sample_rate must be positive, got {sample_rate}")
        if duration is not None and duration <= 0:
            raise ConfigError(f"duration must be positive or None, got {duration}")
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"FSDD folder {root} does not exist")
        folder, parsed, misnamed = _find_recordings(root)
        if misnamed:
            warnings.warn(
                f"skipped {len(misnamed)} .wav file(s) in {folder} not named "
                f"{{digit}}_{{speaker}}_{{take}}.wav (e.g. {misnamed[0]})",
                stacklevel=2,
            )
        if split != "all":
            want_test = split == "test"
            parsed = [item for item in parsed if (item[3] in TEST_TAKES) == want_test]
        if not parsed:
            raise DataError(f"FSDD folder {folder} has no recordings in the {split!r} split")

        self.root = folder
        self.split: Split = split
        self.sample_rate = sample_rate
        self.features: Features = features
        self.duration = duration
        self.n_mels = n_mels
        self.files: list[Path] = [item[0] for item in parsed]
        self.labels: list[int] = [item[1] for item in parsed]
        self.speakers: list[str] = [item[2] for item in parsed]
        self.takes: list[int] = [item[3] for item in parsed]
        self.skipped: list[str] = misnamed
        self.speaker_info: dict[str, dict[str, str]] = self._read_speaker_info(root, folder)
        self._cache: list[Tensor] | None = None
        validate_sample(self[0])

    @staticmethod
    def _read_speaker_info(root: Path, folder: Path) -> dict[str, dict[str, str]]:
        for path in (folder / "speakers.json", root / "speakers.json"):
            if path.is_file():
                try:
                    info = json.loads(path.read_text())
                except ValueError as error:
                    raise DataError(f"{path} is not valid JSON ({error})") from error
                if not isinstance(info, dict):
                    raise DataError(f"{path} should map speaker names to attributes")
                return info
        return {}

    @property
    def num_samples(self) -> int | None:
        """Waveform length in samples after cropping/padding (None: variable)."""
        if self.duration is None:
            return None
        return round(self.duration * self.sample_rate)

    def __len__(self) -> int:
        return len(self.files)

    def load_audio(self, index: int) -> Tensor:
        """The featurised recording ``index``: (F, T) log-mel or (S,) waveform."""
        if self._cache is not None:
            return self._cache[index]
        wave = read_wav(self.files[index], self.sample_rate)
        if self.num_samples is not None:
            wave = fit_length(wave, self.num_samples)
        if self.features == "waveform":
            return wave
        return log_mel(
            wave,
            sample_rate=self.sample_rate,
            n_fft=round(0.025 * self.sample_rate),  # 25 ms window
            hop_length=round(0.010 * self.sample_rate),  # 10 ms hop
            n_mels=self.n_mels,
        )

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} recordings")
        return {
            "audio": self.load_audio(index),
            "label": torch.tensor(self.labels[index], dtype=torch.int64),
        }

    def preload(self, progress: bool = True) -> FSDD:
        """Read and featurise every recording now and keep them in memory.

        Args:
            progress: show a progress bar (on stderr) while reading.

        Returns:
            ``self``, so ``FSDD(...).preload()`` chains.
        """
        if self._cache is None:
            indices = tqdm(
                range(len(self)), desc=f"FSDD {self.split}", disable=not progress, leave=False
            )
            self._cache = [self.load_audio(index) for index in indices]
        return self

    def __repr__(self) -> str:
        return (
            f"FSDD(root={str(self.root)!r}, split={self.split!r}, n={len(self)}, "
            f"sample_rate={self.sample_rate}, features={self.features!r}, duration={self.duration})"
        )
