"""Symbolic music as event tokens, and its MIDI round trip.

A :class:`Piece` is a tempo, an instrument and notes on a grid of :data:`TICKS_PER_BEAT`
ticks per beat (32nd notes). As tokens it reads::

    BOS TEMPO_t INSTR_i  [SHIFT_s ...] PITCH_p DUR_d  [SHIFT_s ...] PITCH_p DUR_d ... EOS

``SHIFT`` tokens advance the onset time (several add up; none = a chord tone
starting with the previous note), ``PITCH`` is a MIDI pitch in :data:`PITCHES` and
``DUR`` its length in ticks. MIDI files are written and read with ``pretty_midi``;
a piece written and read back gives the same events (the round trip is exact on
the grid).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from polymodal.errors import DataError

TICKS_PER_BEAT = 8
TEMPOS = (60, 72, 84, 96, 108, 120, 140, 160)
INSTRUMENTS = ("piano", "harp", "brass", "plucked", "percussive")
GM_PROGRAMS = {"piano": 0, "harp": 46, "brass": 58, "plucked": 24, "percussive": 12}
"""General MIDI programs: acoustic grand, orchestral harp, tuba, nylon guitar, marimba."""
PITCHES = range(36, 96)
MAX_SHIFT = 16
MAX_DURATION = 32

PAD, BOS, EOS = 0, 1, 2
_TEMPO0 = 3
_INSTR0 = _TEMPO0 + len(TEMPOS)
_SHIFT0 = _INSTR0 + len(INSTRUMENTS)  # SHIFT_1 .. SHIFT_16
_PITCH0 = _SHIFT0 + MAX_SHIFT
_DUR0 = _PITCH0 + len(PITCHES)  # DUR_1 .. DUR_32
VOCAB_SIZE = _DUR0 + MAX_DURATION


class Note(NamedTuple):
    """One note: onset and length in ticks, MIDI pitch."""

    start: int
    duration: int
    pitch: int


@dataclass
class Piece:
    """A monophonic-instrument piece on the tick grid.

    Attributes:
        tempo: beats per minute, one of :data:`TEMPOS`.
        instrument: one of :data:`INSTRUMENTS`.
        notes: sorted by onset, then pitch (as every reader here returns them).
    """

    tempo: int
    instrument: str
    notes: list[Note] = field(default_factory=list)

    @property
    def seconds_per_tick(self) -> float:
        return 60.0 / self.tempo / TICKS_PER_BEAT

    @property
    def seconds(self) -> float:
        """Length until the last note ends."""
        end = max((n.start + n.duration for n in self.notes), default=0)
        return end * self.seconds_per_tick


def token_name(token: int) -> str:
    """A readable name of one token id, e.g. ``PITCH_60``."""
    bounds = (
        (_TEMPO0, "TEMPO", list(TEMPOS)),
        (_INSTR0, "INSTR", list(INSTRUMENTS)),
        (_SHIFT0, "SHIFT", list(range(1, MAX_SHIFT + 1))),
        (_PITCH0, "PITCH", list(PITCHES)),
        (_DUR0, "DUR", list(range(1, MAX_DURATION + 1))),
    )
    if token in (PAD, BOS, EOS):
        return ("PAD", "BOS", "EOS")[token]
    for first, name, values in reversed(bounds):
        if first <= token < first + len(values):
            return f"{name}_{values[token - first]}"
    raise DataError(f"token id {token} is outside the music vocabulary (0..{VOCAB_SIZE - 1})")


def encode_piece(piece: Piece) -> list[int]:
    """Token ids of ``piece``, BOS ... EOS.

    Raises:
        DataError: a tempo, instrument, pitch or duration outside the vocabulary.
    """
    if piece.tempo not in TEMPOS:
        raise DataError(f"tempo {piece.tempo} is not one of {TEMPOS}")
    if piece.instrument not in INSTRUMENTS:
        raise DataError(f"instrument {piece.instrument!r} is not one of {INSTRUMENTS}")
    ids = [BOS, _TEMPO0 + TEMPOS.index(piece.tempo), _INSTR0 + INSTRUMENTS.index(piece.instrument)]
    time = 0
    for note in sorted(piece.notes, key=lambda n: (n.start, n.pitch)):
        if note.pitch not in PITCHES or not 1 <= note.duration <= MAX_DURATION:
            raise DataError(
                f"{note} is outside the vocabulary: pitch in {PITCHES.start}..{PITCHES.stop - 1}, "
                f"duration in 1..{MAX_DURATION} ticks"
            )
        gap = note.start - time
        while gap > 0:  # a long rest is several shifts
            step = min(gap, MAX_SHIFT)
            ids.append(_SHIFT0 + step - 1)
            gap -= step
        time = note.start
        ids += [_PITCH0 + note.pitch - PITCHES.start, _DUR0 + note.duration - 1]
    return [*ids, EOS]


class Decoded(NamedTuple):
    """A piece read from tokens, and how many tokens did not fit the grammar."""

    piece: Piece
    malformed: int


def decode_tokens(ids: list[int], default_tempo: int = 108) -> Decoded:
    """The piece a (possibly generated) token sequence describes.

    Reading is lenient, as sampled sequences may break the grammar: the first
    ``TEMPO`` and ``INSTR`` count (defaults: ``default_tempo``, piano), a ``PITCH``
    makes a note only when a ``DUR`` follows, reading stops at EOS, and every
    token that fits nowhere is counted in :attr:`Decoded.malformed`.

    Args:
        ids: token ids; padding (-100 or PAD) is skipped.
    """
    tempo, instrument = None, None
    notes, malformed, time, pitch = [], 0, 0, None
    for token in ids:
        if token in (PAD, -100, BOS):
            continue
        if token == EOS:
            break
        if pitch is not None and not _DUR0 <= token < VOCAB_SIZE:
            malformed += 1  # a pitch without its duration
            pitch = None
        if _TEMPO0 <= token < _INSTR0:
            malformed += tempo is not None
            tempo = tempo or TEMPOS[token - _TEMPO0]
        elif _INSTR0 <= token < _SHIFT0:
            malformed += instrument is not None
            instrument = instrument or INSTRUMENTS[token - _INSTR0]
        elif _SHIFT0 <= token < _PITCH0:
            time += token - _SHIFT0 + 1
        elif _PITCH0 <= token < _DUR0:
            pitch = PITCHES.start + token - _PITCH0
        elif _DUR0 <= token < VOCAB_SIZE:
            if pitch is None:
                malformed += 1
            else:
                notes.append(Note(time, token - _DUR0 + 1, pitch))
                pitch = None
        else:
            malformed += 1
    malformed += pitch is not None
    notes.sort(key=lambda n: (n.start, n.pitch))  # the order encode_piece and read_midi use
    return Decoded(Piece(tempo or default_tempo, instrument or "piano", notes), malformed)


def write_midi(piece: Piece, path: str | Path) -> Path:
    """Write ``piece`` as a standard MIDI file (one track, its General MIDI program)."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=float(piece.tempo))
    track = pretty_midi.Instrument(GM_PROGRAMS[piece.instrument], name=piece.instrument)
    tick = piece.seconds_per_tick
    for note in piece.notes:
        start = note.start * tick
        track.notes.append(pretty_midi.Note(90, note.pitch, start, start + note.duration * tick))
    midi.instruments.append(track)
    path = Path(path)
    midi.write(str(path))
    return path


def read_midi(path: str | Path) -> Piece:
    """Read a MIDI file into a :class:`Piece` on the tick grid.

    The first tempo is snapped to the nearest of :data:`TEMPOS`, the first track's
    program to the nearest instrument family (unknown programs: piano), and onsets
    and lengths to ticks; pitches outside :data:`PITCHES` move by octaves into range.

    Raises:
        DataError: the file cannot be read, or holds no notes.
    """
    import pretty_midi

    try:
        midi = pretty_midi.PrettyMIDI(str(path))
    except Exception as error:  # mido/pretty_midi raise many types on corrupt files
        raise DataError(f"{path} is not a readable MIDI file: {error}") from error
    tracks = [t for t in midi.instruments if t.notes and not t.is_drum]
    if not tracks:
        raise DataError(f"{path} holds no pitched notes")
    _, tempi = midi.get_tempo_changes()
    tempo = min(TEMPOS, key=lambda t: abs(t - (tempi[0] if len(tempi) else 120.0)))
    programs = {p: name for name, p in GM_PROGRAMS.items()}
    instrument = programs.get(tracks[0].program, "piano")
    tick = 60.0 / tempo / TICKS_PER_BEAT
    notes = []
    for track in tracks:
        for n in track.notes:
            start = round(n.start / tick)
            duration = min(MAX_DURATION, max(1, round((n.end - n.start) / tick)))
            pitch = n.pitch
            while pitch < PITCHES.start:
                pitch += 12
            while pitch >= PITCHES.stop:
                pitch -= 12
            notes.append(Note(start, duration, pitch))
    return Piece(tempo, instrument, sorted(notes, key=lambda n: (n.start, n.pitch)))
