"""Offline, bit-reproducible speech synthesis with espeak-ng.

espeak-ng ships inside the ``espeakng-loader`` wheel (shared library plus voice
data) and is driven through ``ctypes``; nothing is installed system-wide and
nothing is downloaded.

Reproducibility. espeak-ng keeps hidden static state from one utterance to the
next inside a process and draws from libc ``rand()``, so synthesising the same text
twice in one process gives different audio, even after re-seeding. Every utterance
is therefore spoken by a fresh ``fork()`` of a worker that has initialised
espeak-ng but never spoken (:mod:`polymodal.data.synth.espeak_worker`); the same
(text, voice, seed) then gives bit-identical audio whatever the batch, its order or
the number of workers.

Worker processes are fresh interpreters (``subprocess``; never a fork of the
caller, which may hold torch and OpenMP threads, and not ``multiprocessing``,
whose spawned children re-import the caller's ``__main__``). The caller resamples
their 22 050 Hz output to 16 kHz and trims silence. This module imports numpy,
scipy and tqdm lazily, so importing it stays cheap.

Example::

    from polymodal.data.synth.speech import SpeechSynthesizer, Utterance, sample_voices

    voices = sample_voices(20, seed=0)
    with SpeechSynthesizer() as synth:
        waves = synth.synthesize([Utterance("seven", v, seed=i) for i, v in enumerate(voices)])
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from polymodal.data.synth import espeak_worker as protocol
from polymodal.errors import ConfigError

if TYPE_CHECKING:
    import queue
    import threading
    from collections.abc import Sequence
    from pathlib import Path
    from typing import Any

    import numpy as np

SAMPLE_RATE = 16_000
"""Sample rate (Hz) of every waveform this module returns."""

ESPEAK_RATE = 22_050
"""Native sample rate (Hz) of espeak-ng's output."""

CACHE_VERSION = "speech-1"
"""Version of the synthesis pipeline; part of every cache key."""

ENGLISH = (
    "en",
    "en-US",
    "en-GB-x-rp",
    "en-GB-scotland",
    "en-GB-x-gbclan",
    "en-GB-x-gbcwmd",
    "en-029",
    "en-US-nyc",
)
"""espeak-ng's English accents (``en-Shaw``, which reads Shavian script, is left out)."""

HUMAN_VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5")
"""The language's own voice ("") and espeak-ng's male and female variants."""

PITCH_RANGE = (0, 99)
RATE_RANGE = (80, 450)
VOLUME_RANGE = (0, 200)

_INSTALL_HINT = "install it with `pip install espeakng-loader` (or `pip install polymodal[speech]`)"
_IN_FLIGHT = 4  # requests queued per worker, so a worker never waits for the next one
_TRIM_RELATIVE = 1e-3  # trim threshold: -60 dB below the clip's peak
_PROGRESS_MIN = 200  # show a progress bar above this many utterances


def _check_range(what: str, value: object, bounds: tuple[int, int]) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{what} must be an int in {bounds[0]}..{bounds[1]}, got {value!r}")
    if not bounds[0] <= value <= bounds[1]:
        raise ConfigError(f"{what} must be in {bounds[0]}..{bounds[1]}, got {value}")


@dataclass(frozen=True)
class Voice:
    """One espeak-ng voice configuration.

    Args:
        name: ``language`` or ``language+variant``, e.g. ``"en-US+f3"``; see
            :func:`languages` and :func:`variants` for the valid parts.
        pitch: base pitch, 0-99 (espeak's default is 50).
        rate: speaking rate in words per minute, 80-450.
        volume: amplitude, 0-200 (100 is normal; above 120 may clip).
    """

    name: str = "en"
    pitch: int = 50
    rate: int = 175
    volume: int = 100

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or "\0" in self.name:
            raise ConfigError(f"voice name must be a non-empty string, got {self.name!r}")
        _check_range("pitch", self.pitch, PITCH_RANGE)
        _check_range("rate", self.rate, RATE_RANGE)
        _check_range("volume", self.volume, VOLUME_RANGE)


@dataclass(frozen=True)
class Utterance:
    """A text to speak, the voice to speak it with and the seed of espeak's randomness.

    Args:
        text: non-empty UTF-8 text.
        voice: the voice configuration.
        seed: seeds espeak-ng's and libc's random generators, 0 <= seed < 2**32. Only
            voices with a noise ("breath") component draw random numbers (variants f2,
            f3, f5, whisper, ...); for the others every seed gives the same audio.
    """

    text: str
    voice: Voice = field(default_factory=Voice)
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or not self.text.strip():
            raise ConfigError(f"utterance text must be a non-empty string, got {self.text!r}")
        if "\0" in self.text:
            raise ConfigError(f"utterance text must not contain NUL characters: {self.text!r}")
        if not isinstance(self.voice, Voice):
            raise ConfigError(f"utterance voice must be a Voice, got {type(self.voice).__name__}")
        _check_range("seed", self.seed, (0, 2**32 - 1))


# --------------------------------------------------------------------------------------
# Voices
# --------------------------------------------------------------------------------------


def _loader_paths() -> tuple[str, str]:
    """(shared library, data folder) of espeakng-loader; RuntimeError when unusable."""
    try:
        import espeakng_loader
    except ImportError as exc:
        raise RuntimeError(
            f"speech synthesis needs espeak-ng from the espeakng-loader package; {_INSTALL_HINT}"
        ) from exc
    try:
        library, data = espeakng_loader.get_library_path(), espeakng_loader.get_data_path()
    except Exception as exc:  # the loader raises RuntimeError when its data is missing
        raise RuntimeError(
            f"espeakng-loader is broken ({exc}); reinstall: {_INSTALL_HINT}"
        ) from exc
    if not os.path.isfile(library):
        raise RuntimeError(f"espeakng-loader has no library at {library}; {_INSTALL_HINT}")
    return str(library), str(data)


@lru_cache(maxsize=1)
def languages() -> tuple[str, ...]:
    """All language identifiers espeak-ng offers (e.g. ``"en-US"``), sorted.

    Returns:
        The file names under ``espeak-ng-data/lang``.
    """
    lang = os.path.join(_loader_paths()[1], "lang")
    names = (name for _, _, files in os.walk(lang) for name in files)
    return tuple(sorted(names, key=str.lower))


@lru_cache(maxsize=1)
def variants() -> tuple[str, ...]:
    """All voice variants (``m1``..``m8``, ``f1``..``f5``, ``croak``, ``klatt``, ...), sorted.

    Returns:
        The file names under ``espeak-ng-data/voices/!v``.
    """
    folder = os.path.join(_loader_paths()[1], "voices", "!v")
    names = (e.name for e in os.scandir(folder) if e.is_file())
    return tuple(sorted(names, key=str.lower))


def _check_voice_name(name: str) -> None:
    """ValueError unless ``name`` is ``language`` or ``language+variant`` espeak-ng knows.

    espeak-ng itself silently ignores an unknown variant, so both parts are checked
    against its data folder.
    """
    language, _, variant = name.partition("+")
    known_language = language.lower() in {x.lower() for x in languages()}
    if known_language and (not variant or variant in variants()):
        return
    what = f"language {language!r}" if not known_language else f"variant {variant!r}"
    raise ConfigError(
        f"unknown espeak-ng voice {name!r}: no {what}. A voice is 'language' or "
        "'language+variant'; list them with polymodal.data.synth.speech.languages() "
        "and polymodal.data.synth.speech.variants()."
    )


def _voice_name(language: str, variant: str) -> str:
    return f"{language}+{variant}" if variant else language


def voice_grid(
    languages: Sequence[str] = ("en",),
    variants: Sequence[str] = ("",),
    pitches: Sequence[int] = (50,),
    rates: Sequence[int] = (175,),
    volumes: Sequence[int] = (100,),
) -> list[Voice]:
    """Every combination of the given settings (a Cartesian product).

    Args:
        languages: language identifiers, e.g. ``("en", "en-US")``.
        variants: variant names; ``""`` is the language's own voice.
        pitches, rates, volumes: values of each parameter.

    Returns:
        ``len(languages) * len(variants) * len(pitches) * len(rates) * len(volumes)``
        voices, languages varying slowest and volumes fastest.
    """
    return [
        Voice(_voice_name(lang, var), int(p), int(r), int(v))
        for lang, var, p, r, v in itertools.product(languages, variants, pitches, rates, volumes)
    ]


def sample_voices(
    n: int,
    seed: int,
    languages: Sequence[str] = ENGLISH,
    variants: Sequence[str] = HUMAN_VARIANTS,
    pitch: tuple[int, int] = (25, 75),
    rate: tuple[int, int] = (120, 240),
    volume: tuple[int, int] = (80, 120),
) -> list[Voice]:
    """``n`` distinct voices drawn uniformly from language x variant x pitch x rate x volume.

    Args:
        n: number of voices.
        seed: seed of the numpy Generator that draws them.
        languages: language identifiers to draw from.
        variants: variants to draw from (``""`` is the language's own voice).
        pitch, rate, volume: inclusive integer ranges ``(lo, hi)``.

    Returns:
        ``n`` voices, no two equal, in draw order; the same arguments give the same list.
    """
    import numpy as np

    for what, bounds, limits in (
        ("pitch", pitch, PITCH_RANGE),
        ("rate", rate, RATE_RANGE),
        ("volume", volume, VOLUME_RANGE),
    ):
        for value in bounds:
            _check_range(what, value, limits)
        if bounds[0] > bounds[1]:
            raise ConfigError(f"{what} range must be (lo, hi) with lo <= hi, got {bounds}")
    if not languages or not variants:
        raise ConfigError("sample_voices needs at least one language and one variant")
    axes = (len(languages), len(variants), *(hi - lo + 1 for lo, hi in (pitch, rate, volume)))
    total = int(np.prod(axes))
    if not 0 <= n <= total:
        raise ConfigError(f"cannot draw {n} distinct voices from {total} combinations")
    rng = np.random.default_rng(seed)
    flat = rng.choice(total, size=n, replace=False)  # distinct cells of the grid
    cells = np.unravel_index(flat, axes)
    return [
        Voice(
            _voice_name(languages[int(a)], variants[int(b)]),
            pitch[0] + int(c),
            rate[0] + int(d),
            volume[0] + int(e),
        )
        for a, b, c, d, e in zip(*cells, strict=True)
    ]


# --------------------------------------------------------------------------------------
# The caller's side
# --------------------------------------------------------------------------------------


class _Worker:
    """One worker process and its pipes."""

    def __init__(self, library: str, data: str) -> None:
        import subprocess

        program = os.path.abspath(protocol.__file__)
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-S", program, "--serve", library, data],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin, self.stdout = self.process.stdin.fileno(), self.process.stdout.fileno()

    def hello(self) -> int:
        """espeak-ng's sample rate as reported by the worker (blocks until it is up)."""
        try:
            return int(
                protocol.HELLO.unpack(protocol.read_exact(self.stdout, protocol.HELLO.size))[0]
            )
        except EOFError:
            return -1

    def send(self, request: bytes) -> None:
        protocol.write_all(self.stdin, request)

    def receive(self) -> tuple[int, int, bytes]:
        """(stage, code, int16 bytes) of the oldest pending request."""
        try:
            stage, code, n_bytes = protocol.REPLY.unpack(
                protocol.read_exact(self.stdout, protocol.REPLY.size)
            )
            if stage not in (0, *protocol.STAGES) or not 0 <= n_bytes < 1 << 34:
                raise RuntimeError(f"espeak-ng worker {self.process.pid} sent a malformed reply")
            return stage, code, protocol.read_exact(self.stdout, n_bytes)
        except EOFError:
            raise RuntimeError(
                f"espeak-ng worker {self.process.pid} exited unexpectedly "
                f"(exit status {self.process.poll()})"
            ) from None

    def close(self, timeout: float = 5.0) -> None:
        import subprocess

        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()  # end of input: the worker returns
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()


def _encode(utterance: Utterance) -> bytes:
    voice, text = utterance.voice, utterance.text.encode()
    name = voice.name.encode()
    header = protocol.REQUEST.pack(
        utterance.seed, voice.pitch, voice.rate, voice.volume, len(name), len(text)
    )
    return header + name + text


def _validate(utterances: Sequence[Utterance]) -> list[Utterance]:
    items = list(utterances)
    for i, item in enumerate(items):
        if not isinstance(item, Utterance):
            raise ConfigError(f"utterances[{i}] must be an Utterance, got {type(item).__name__}")
    for name in sorted({u.voice.name for u in items}):
        _check_voice_name(name)
    return items


@lru_cache(maxsize=1)
def _resampling_filter() -> np.ndarray:
    """The FIR filter ``resample_poly(x, 320, 441)`` designs, computed once.

    Passing it back as ``window`` gives bit-identical output at a fifth of the cost.
    """
    from scipy.signal import firwin

    half_len = 10 * 441
    return firwin(2 * half_len + 1, 1.0 / 441, window=("kaiser", 5.0))


def _to_wave(raw: bytes, trim: bool) -> np.ndarray:
    """int16 bytes at 22 050 Hz -> (S,) float32 at 16 kHz in [-1, 1], silence trimmed."""
    import numpy as np
    from scipy.signal import resample_poly

    samples = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    if samples.size == 0:
        return np.zeros(0, dtype=np.float32)
    wave = resample_poly(samples, 320, 441, window=_resampling_filter())
    wave = np.clip(wave, -1.0, 1.0).astype(np.float32)
    peak = float(np.abs(wave).max())
    if trim and peak > 0:
        loud = np.flatnonzero(np.abs(wave) > _TRIM_RELATIVE * peak)
        wave = wave[loud[0] : loud[-1] + 1].copy()
    return wave


class SpeechSynthesizer:
    """A pool of espeak-ng worker processes; use as a context manager.

    Args:
        workers: number of worker processes; defaults to ``os.cpu_count()``.

    Raises:
        RuntimeError: espeak-ng (the espeakng-loader package) cannot be loaded, or
            the platform has no ``fork()``.
    """

    def __init__(self, workers: int | None = None) -> None:
        import threading

        if not hasattr(os, "fork"):
            raise RuntimeError("speech synthesis needs os.fork(), which this platform lacks")
        count = workers if workers is not None else (os.cpu_count() or 1)
        if count < 1:
            raise ConfigError(f"workers must be >= 1, got {count}")
        self._library, self._data = _loader_paths()
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()  # one batch at a time: the pipes carry one conversation
        try:
            self._workers = [_Worker(self._library, self._data) for _ in range(count)]
            _resampling_filter()  # imports scipy while the workers start
            rates = [w.hello() for w in self._workers]
        except BaseException:
            self.close()
            raise
        if any(rate != ESPEAK_RATE for rate in rates):
            self.close()
            raise RuntimeError(
                f"espeak-ng failed to initialise from {self._library} (reported sample rates "
                f"{rates}, expected {ESPEAK_RATE}); reinstall it: {_INSTALL_HINT}"
            )

    @property
    def workers(self) -> int:
        """Number of live worker processes."""
        return len(self._workers)

    def __enter__(self) -> SpeechSynthesizer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at exit; the workers end with our pipes anyway
            self.close()

    def close(self) -> None:
        """Stop the worker processes (idempotent)."""
        workers, self._workers = getattr(self, "_workers", []), []
        for worker in workers:
            worker.close()

    def synthesize(
        self, utterances: Sequence[Utterance], progress: bool = True, trim: bool = True
    ) -> list[np.ndarray]:
        """Speak every utterance.

        Args:
            utterances: what to say, with which voice and seed.
            progress: show a progress bar when there are more than 200 utterances.
            trim: cut leading and trailing samples quieter than -60 dB re. the peak.

        Returns:
            One (S,) float32 waveform per utterance, in input order, at
            :data:`SAMPLE_RATE` Hz, values in [-1, 1]. The same utterance always gives
            the same array (bit for bit), whatever else is in the batch.

        Raises:
            ValueError: an utterance is not an :class:`Utterance` or names an unknown voice.
            RuntimeError: the pool is closed or a worker failed.
        """
        items = _validate(utterances)
        if not items:
            return []
        with self._lock:
            return self._run(items, progress, trim)

    def _run(self, items: list[Utterance], progress: bool, trim: bool) -> list[np.ndarray]:
        import queue
        import threading

        from tqdm.auto import tqdm

        if not self._workers:
            raise RuntimeError("this SpeechSynthesizer is closed; create a new one")
        requests = [_encode(u) for u in items]
        todo: queue.SimpleQueue[int] = queue.SimpleQueue()
        for index in range(len(items)):
            todo.put(index)
        replies: queue.SimpleQueue[tuple[int, int, int, bytes] | BaseException | None]
        replies = queue.SimpleQueue()
        stop = threading.Event()
        threads = []
        for worker in self._workers:
            pending: queue.SimpleQueue[int | None] = queue.SimpleQueue()
            slots = threading.Semaphore(_IN_FLIGHT)
            threads += [
                threading.Thread(
                    target=_feed, args=(worker, requests, todo, pending, slots, stop), daemon=True
                ),
                threading.Thread(
                    target=_collect, args=(worker, pending, slots, replies, stop), daemon=True
                ),
            ]
        for thread in threads:
            thread.start()

        waves: list[np.ndarray | None] = [None] * len(items)
        failure: BaseException | None = None
        broken = False  # a worker died or its replies can no longer be trusted
        running = len(self._workers)
        bar = tqdm(
            total=len(items),
            desc="espeak-ng",
            unit="utt",
            disable=not progress or len(items) <= _PROGRESS_MIN,
        )
        try:
            while running:
                reply = replies.get()
                if reply is None:  # one collector finished
                    running -= 1
                elif isinstance(reply, BaseException):
                    failure, broken = failure or reply, True
                else:
                    index, stage, code, raw = reply
                    if stage == 0:
                        waves[index] = _to_wave(raw, trim)
                        bar.update()
                    elif failure is None:
                        stop.set()  # let in-flight requests finish, send no new ones
                        failure = _item_error(items[index], stage, code)
        except BaseException:  # e.g. KeyboardInterrupt: replies may be half read
            stop.set()
            for worker in self._workers:
                worker.process.kill()  # unblocks the threads on both pipes
            for thread in threads:
                thread.join()
            self.close()
            raise
        finally:
            bar.close()
        for thread in threads:
            thread.join()
        if broken:
            self.close()
        if failure is not None:
            raise failure
        assert all(w is not None for w in waves)
        return [w for w in waves if w is not None]


def _item_error(utterance: Utterance, stage: int, code: int) -> Exception:
    if stage == 1:
        return ValueError(
            f"espeak-ng rejected voice {utterance.voice.name!r} (error {code}); list valid "
            "voices with polymodal.data.synth.speech.languages() and variants()"
        )
    return RuntimeError(
        f"espeak-ng {protocol.STAGES.get(stage, 'worker')} failed (code {code}) on {utterance!r}"
    )


def _feed(
    worker: _Worker,
    requests: list[bytes],
    todo: queue.SimpleQueue[int],
    pending: queue.SimpleQueue[int | None],
    slots: threading.Semaphore,
    stop: threading.Event,
) -> None:
    """Send requests to one worker, at most ``_IN_FLIGHT`` unanswered at a time."""
    import queue

    try:
        while True:
            slots.acquire()
            if stop.is_set():
                return
            try:
                index = todo.get_nowait()
            except queue.Empty:
                return
            pending.put(index)
            worker.send(requests[index])
    except OSError:
        stop.set()  # the worker is gone; its collector reports it
    finally:
        pending.put(None)


def _collect(
    worker: _Worker,
    pending: queue.SimpleQueue[int | None],
    slots: threading.Semaphore,
    replies: queue.SimpleQueue[tuple[int, int, int, bytes] | BaseException | None],
    stop: threading.Event,
) -> None:
    """Read one worker's replies, in the order its requests were sent."""
    try:
        while (index := pending.get()) is not None:
            stage, code, raw = worker.receive()
            slots.release()
            replies.put((index, stage, code, raw))
    except BaseException as exc:
        stop.set()
        slots.release()  # wake the feeder so that it sees `stop`
        replies.put(exc)
    finally:
        replies.put(None)


# --------------------------------------------------------------------------------------
# Cached batches
# --------------------------------------------------------------------------------------


def _engine_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("espeakng-loader")
    except PackageNotFoundError:
        return "missing"


def batch_key(utterances: Sequence[Utterance], trim: bool = True) -> str:
    """sha256 over the pipeline version, the espeak-ng build and every utterance.

    Args:
        utterances: the batch, in order.
        trim: whether silence is trimmed.

    Returns:
        64 hex digits; equal for equal batches.
    """
    record = {
        "version": CACHE_VERSION,
        "engine": _engine_version(),
        "trim": trim,
        "utterances": [
            [u.text, u.voice.name, u.voice.pitch, u.voice.rate, u.voice.volume, u.seed]
            for u in utterances
        ],
    }
    import hashlib
    import json

    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def synthesize(
    utterances: Sequence[Utterance],
    workers: int | None = None,
    cache: bool = True,
    progress: bool = True,
    trim: bool = True,
) -> list[np.ndarray]:
    """Speak a batch of utterances, reusing the cached audio of an identical earlier batch.

    The batch is stored as one ``speech.npz`` (all samples concatenated, plus offsets)
    in a cache entry under ``$POLYMODAL_HOME/speech/``, keyed by :func:`batch_key`.

    Args:
        utterances: what to say, with which voice and seed.
        workers: worker processes for a cache miss; defaults to ``os.cpu_count()``.
        cache: read and write the cache; False always synthesises.
        progress: show a progress bar for more than 200 utterances.
        trim: cut leading and trailing silence (see :meth:`SpeechSynthesizer.synthesize`).

    Returns:
        One (S,) float32 waveform per utterance at :data:`SAMPLE_RATE` Hz, in [-1, 1].

    Raises:
        ValueError: bad utterance or unknown voice.
        RuntimeError: espeak-ng (the espeakng-loader package) cannot be loaded.
    """
    items = _validate(utterances)
    if not items:
        return []
    if not cache:
        with SpeechSynthesizer(workers) as synth:
            return synth.synthesize(items, progress=progress, trim=trim)

    import numpy as np

    from polymodal.data.cache import cached_build

    def build(folder: Path) -> dict[str, Any]:
        with SpeechSynthesizer(workers) as synth:
            waves = synth.synthesize(items, progress=progress, trim=trim)
        offsets = np.cumsum([0] + [len(w) for w in waves], dtype=np.int64)
        samples = np.concatenate(waves) if waves else np.zeros(0, np.float32)
        np.savez(folder / "speech.npz", samples=samples, offsets=offsets)
        return {"utterances": len(waves), "seconds": round(len(samples) / SAMPLE_RATE, 3)}

    params = {"batch": batch_key(items, trim), "count": len(items)}
    folder = cached_build(
        "speech", CACHE_VERSION, params, build, code=("polymodal.data.synth.speech",)
    )
    with np.load(folder / "speech.npz") as stored:
        samples, offsets = stored["samples"], stored["offsets"]
    if len(offsets) != len(items) + 1 or offsets[-1] != len(samples):
        raise RuntimeError(f"cached speech in {folder} is inconsistent; delete the folder")
    return [samples[a:b] for a, b in itertools.pairwise(offsets.tolist())]
