"""A small additive synthesiser: a :class:`~polymodal.data.synth.music_events.Piece` to audio.

Each instrument is a recipe of partials (which harmonics, how loud, how fast each
decays) and an envelope, enough for the timbres to be told apart by ear and by
spectral features: a piano's bright decaying partials, a harp's soft pluck, a
brass tone's slow attack and strong odd-and-even harmonics, a guitar-like pluck
whose upper partials die first, and a marimba's wooden knock (fundamental plus
its 4th partial). Rendering is deterministic: the same piece gives the same
samples. :func:`render_soundfont` renders through FluidSynth instead, for users
who have a SoundFont (and ``pyfluidsynth``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from polymodal.data.synth.music_events import Piece
from polymodal.errors import DataError

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class Timbre:
    """How one instrument sounds.

    Attributes:
        partials: harmonic numbers (may be non-integer for inharmonic tones).
        amplitudes: loudness of each partial.
        decay: per-second exponential decay of the fundamental.
        decay_per_partial: extra decay per harmonic number (upper partials die first).
        attack: seconds to full level.
        release: seconds of fade after the note's end.
        sustains: the tone holds for the note's length (brass) instead of decaying freely.
        click: level of a short noise burst at the onset (a mallet's knock).
    """

    partials: tuple[float, ...]
    amplitudes: tuple[float, ...]
    decay: float
    decay_per_partial: float
    attack: float
    release: float
    sustains: bool = False
    click: float = 0.0


TIMBRES = {
    "piano": Timbre((1, 2, 3, 4, 5, 6), (1, 0.5, 0.3, 0.2, 0.12, 0.08), 1.2, 0.5, 0.004, 0.12),
    "harp": Timbre((1, 2, 3, 4), (1, 0.3, 0.1, 0.05), 1.6, 0.8, 0.003, 0.4),
    "brass": Timbre(
        (1, 2, 3, 4, 5, 6, 7), (1, 0.8, 0.6, 0.45, 0.3, 0.2, 0.12), 0.0, 0.0, 0.06, 0.08, True
    ),
    "plucked": Timbre((1, 2, 3, 4, 5), (1, 0.6, 0.35, 0.2, 0.1), 3.0, 2.5, 0.002, 0.05),
    "percussive": Timbre((1, 3.9, 9.2), (1, 0.35, 0.1), 9.0, 3.0, 0.001, 0.03, False, 0.3),
}


def midi_hz(pitch: int | np.ndarray) -> np.ndarray:
    """Frequency in Hz of a MIDI pitch (A4 = 69 = 440 Hz)."""
    return np.asarray(440.0 * 2.0 ** ((np.asarray(pitch, dtype=np.float64) - 69) / 12))


def _note(timbre: Timbre, pitch: int, seconds: float, rate: int) -> np.ndarray:
    """(S,) samples of one note, its release included."""
    length = int((seconds + timbre.release) * rate)
    t = np.arange(length) / rate
    f0 = float(midi_hz(pitch))
    wave = np.zeros(length)
    for k, amplitude in zip(timbre.partials, timbre.amplitudes, strict=True):
        if k * f0 >= rate / 2:  # above Nyquist it would alias
            continue
        decay = np.exp(-t * (timbre.decay + timbre.decay_per_partial * (k - 1)))
        wave += amplitude * decay * np.sin(2 * np.pi * k * f0 * t)
    envelope = np.minimum(1.0, t / timbre.attack)
    end = t - seconds  # > 0 during the release
    envelope *= np.where(end > 0, np.clip(1 - end / timbre.release, 0, 1), 1.0)
    wave *= envelope
    if timbre.click:
        burst = int(0.005 * rate)
        noise = np.random.default_rng(pitch).standard_normal(burst)
        wave[:burst] += timbre.click * noise * np.linspace(1, 0, burst)
    return wave


def render(piece: Piece, sample_rate: int = SAMPLE_RATE, tail: float = 0.3) -> np.ndarray:
    """(S,) float32 waveform of ``piece``, peak-normalised to 0.8.

    Args:
        piece: the notes; an empty piece gives ``tail`` seconds of silence.
        sample_rate: in Hz.
        tail: seconds of audio after the last note ends (for releases).
    """
    timbre = TIMBRES[piece.instrument]
    tick = piece.seconds_per_tick
    out = np.zeros(int((piece.seconds + timbre.release + tail) * sample_rate) + 1)
    for note in piece.notes:
        seconds = note.duration * tick
        if not timbre.sustains:  # free decay: the note rings at most its written length
            seconds = min(seconds, 4.0)
        samples = _note(timbre, note.pitch, seconds, sample_rate)
        start = int(round(note.start * tick * sample_rate))
        out[start : start + samples.size] += samples[: out.size - start]
    peak = np.abs(out).max()
    return (out * (0.8 / peak) if peak > 0 else out).astype(np.float32)


def render_soundfont(piece: Piece, soundfont: str | Path, sample_rate: int = 44_100) -> np.ndarray:
    """(S,) float32 waveform of ``piece`` rendered by FluidSynth with ``soundfont``.

    Raises:
        DataError: the SoundFont file is missing, or ``pyfluidsynth`` / the FluidSynth
            library is not installed (the message says so; the built-in
            :func:`render` needs neither).
    """
    path = Path(soundfont)
    if not path.is_file():
        raise DataError(f"SoundFont {path} does not exist; pass an existing .sf2 file")
    try:
        import fluidsynth  # noqa: F401  (pretty_midi imports it itself)
    except (ImportError, OSError) as error:
        raise DataError(
            f"SoundFont rendering needs pyfluidsynth and the FluidSynth library ({error}); "
            "pip install pyfluidsynth, or leave out the SoundFont to use the built-in synthesiser"
        ) from error
    import pretty_midi

    from polymodal.data.synth.music_events import GM_PROGRAMS

    midi = pretty_midi.PrettyMIDI(initial_tempo=float(piece.tempo))
    track = pretty_midi.Instrument(GM_PROGRAMS[piece.instrument])
    tick = piece.seconds_per_tick
    for n in piece.notes:
        track.notes.append(
            pretty_midi.Note(90, n.pitch, n.start * tick, (n.start + n.duration) * tick)
        )
    midi.instruments.append(track)
    wave = midi.fluidsynth(fs=sample_rate, sf2_path=str(path))
    peak = np.abs(wave).max()
    return (wave * (0.8 / peak) if peak > 0 else wave).astype(np.float32)
