"""From a description to a piece: sampling, longer pieces, MIDI and WAV.

A piece longer than one training phrase (4 bars) is built from successive phrases
sampled for the same description, each continuing after the previous one's last
bar and forced to the first phrase's tempo and instrument, so the whole piece
keeps one pulse and one timbre.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from polymodal.data.synth.music_compose import BAR, FALLBACK_DESCRIPTION, content_words
from polymodal.data.synth.music_events import BOS, Note, Piece, decode_tokens, write_midi
from polymodal.data.synth.music_synth import SAMPLE_RATE, render, render_soundfont
from polymodal.errors import ConfigError, DataError
from polymodal.methods.taste_music.model import TasteMusicGenerator

MAX_SECONDS = 600.0


def check_seconds(seconds: float) -> None:
    """Refuse a duration that is not in (0, :data:`MAX_SECONDS`].

    Raises:
        ConfigError: naming the accepted range.
    """
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_SECONDS:
        raise ConfigError(
            f"--seconds must be above 0 and at most {MAX_SECONDS:.0f}, got {seconds:g}; "
            "e.g. --seconds 10"
        )


def understood(description: str) -> tuple[str, str]:
    """The description to condition on, and a note when it had to be replaced.

    MiniLM embeds any text, but one with no word the training descriptions use
    (a taste, a tempo, an instrument ...) lands far from everything the generator
    learnt; such a description falls back to :data:`FALLBACK_DESCRIPTION`.

    Raises:
        DataError: an empty description.
    """
    if not description.strip():
        raise DataError('the description is empty; describe the piece, e.g. "a bitter, dark piece"')
    if content_words(description):
        return description, ""
    return FALLBACK_DESCRIPTION, (
        f"no word of {description!r} is in the training vocabulary (tastes, tempi, registers, "
        f"modes, articulations, instruments); fell back to {FALLBACK_DESCRIPTION!r}"
    )


def compose_piece(
    model: TasteMusicGenerator,
    description: str,
    seconds: float,
    temperature: float = 1.0,
    top_k: int = 20,
    seed: int = 0,
) -> tuple[Piece, int, int]:
    """Sample phrases for ``description`` until the piece lasts ``seconds`` (module doc).

    Returns:
        The piece cut at ``seconds``, the count of malformed tokens, the phrases sampled.

    Raises:
        ConfigError: a duration outside (0, 600] seconds.
        DataError: an empty description.
    """
    check_seconds(seconds)
    if not description.strip():
        raise DataError('the description is empty; describe the piece, e.g. "a bitter, dark piece"')
    model.eval()
    notes: list[Note] = []
    tempo, instrument, malformed, offset, phrases = None, None, 0, 0, 0
    start: torch.Tensor | None = None
    while True:
        ids = model.sample(
            [description], temperature=temperature, top_k=top_k, seed=seed + phrases, start=start
        )
        decoded = decode_tokens(ids[0].tolist())
        phrases += 1
        malformed += decoded.malformed
        if start is None:  # the first phrase fixes the pulse and the timbre
            tempo, instrument = decoded.piece.tempo, decoded.piece.instrument
            start = ids[:1, :3] if ids.shape[1] >= 3 else torch.tensor([[BOS]])
        notes += [Note(n.start + offset, n.duration, n.pitch) for n in decoded.piece.notes]
        end = max((n.start + n.duration for n in notes), default=offset)
        offset = max(offset + BAR, math.ceil(end / BAR) * BAR)
        assert tempo is not None and instrument is not None
        if (
            Piece(tempo, instrument, [Note(offset, 1, 60)]).seconds >= seconds
            or phrases > 4 * seconds
        ):
            break
    piece = Piece(tempo, instrument, notes)
    limit = int(seconds / piece.seconds_per_tick)
    kept = [
        Note(n.start, min(n.duration, limit - n.start), n.pitch) for n in notes if n.start < limit
    ]
    return Piece(tempo, instrument, kept), malformed, phrases


def write_piece(
    piece: Piece, stem: str | Path, soundfont: str | Path | None = None
) -> tuple[Path, Path, str]:
    """Write ``<stem>.mid`` and ``<stem>.wav``.

    Args:
        piece: the events.
        stem: output path without suffix (folders are created).
        soundfont: an ``.sf2`` file to render with FluidSynth; when that is not
            possible the built-in synthesiser renders instead (the returned note says why).

    Returns:
        The MIDI path, the WAV path, and a note on how the audio was rendered.
    """
    from polymodal.data.real.wav import write_wav

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    midi = write_midi(piece, stem.with_suffix(".mid"))
    note, rate = "built-in synthesiser", SAMPLE_RATE
    wave = None
    if soundfont is not None:
        try:
            wave, rate = render_soundfont(piece, soundfont), 44_100
            note = f"FluidSynth with {soundfont}"
        except DataError as error:
            note = f"built-in synthesiser ({error})"
    if wave is None:
        wave = render(piece, rate)
    wav = stem.with_suffix(".wav")
    write_wav(wav, torch.from_numpy(wave), rate)
    return midi, wav, note


__all__ = ["check_seconds", "compose_piece", "understood", "write_piece"]
