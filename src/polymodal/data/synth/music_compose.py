"""Pieces composed by rules: a :class:`Style` becomes a 4-bar :class:`Piece`, and a
taste becomes a style by the crossmodal correspondences.

A style fixes tempo, register, mode, articulation, rhythm and instrument. The
melody is a random walk on the mode's scale around the register; some notes get a
second voice below, a third or a fifth in a consonant mode, a semitone, tritone or
major seventh in the dissonant one. The tastes (Spence's correspondences, as in
the Multimodal Symphony paper):

=======  ==========================================================
sweet    high, consonant (major), slow, legato; piano or harp
sour     high, dissonant, fast; piano or plucked
bitter   low, legato, dark (minor), slow; brass
salty    staccato, rhythmic (a repeated syncopated bar); marimba or plucked
=======  ==========================================================

Plain descriptions name the style in words ("a slow, high major-key piece,
legato and flowing, played on piano"); taste descriptions name only the taste,
in many phrasings ("the sourness of lemon").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from polymodal.data.synth.music_events import INSTRUMENTS, TEMPOS, TICKS_PER_BEAT, Note, Piece

BARS = 4
BAR = 4 * TICKS_PER_BEAT
MODES = ("major", "minor", "dissonant")
ARTICULATIONS = {"legato": 1.0, "detached": 0.6, "staccato": 0.25}
"""Sounding fraction of each note's time slot."""
RHYTHMS = ("flowing", "even", "rhythmic")
TASTES = ("sweet", "sour", "bitter", "salty")
T = TypeVar("T")
_SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dissonant": tuple(range(12)),
}
_DISSONANT_BELOW = (1, 6, 11)
_RHYTHMIC_BARS = ((4, 2, 2, 4, 4, 2, 2, 4, 8), (2, 2, 4, 2, 2, 4, 4, 4, 8), (6, 2, 6, 2, 4, 4, 8))


@dataclass(frozen=True)
class Style:
    """What the rules compose from.

    Attributes:
        tempo: BPM, one of :data:`~polymodal.data.synth.music_events.TEMPOS`.
        register: centre MIDI pitch of the melody.
        mode: one of :data:`MODES`.
        articulation: one of :data:`ARTICULATIONS`.
        rhythm: ``flowing`` (quarters and halves), ``even`` (eighths) or
            ``rhythmic`` (one syncopated bar repeated).
        instrument: one of :data:`~polymodal.data.synth.music_events.INSTRUMENTS`.
    """

    tempo: int
    register: int
    mode: str
    articulation: str
    rhythm: str
    instrument: str


def _onsets(rhythm: str, rng: np.random.Generator) -> list[tuple[int, int]]:
    """(onset, slot length) in ticks over :data:`BARS` bars."""
    if rhythm == "rhythmic":
        bar = _RHYTHMIC_BARS[rng.integers(len(_RHYTHMIC_BARS))]
        slots = list(bar) * BARS
    else:
        choices, weights = ((8, 16, 4), (0.5, 0.3, 0.2)) if rhythm == "flowing" else ((4,), (1,))
        slots, total = [], 0
        while total < BARS * BAR:
            slot = min(int(rng.choice(choices, p=weights)), BARS * BAR - total)
            slots.append(slot)
            total += slot
    starts = np.cumsum([0, *slots[:-1]])
    return [(int(s), int(n)) for s, n in zip(starts, slots, strict=True)]


def compose(style: Style, rng: np.random.Generator) -> Piece:
    """A 4-bar piece in ``style`` (module doc)."""
    scale = _SCALES[style.mode]
    tonic = style.register - 7 + int(rng.integers(0, 12)) if style.mode != "dissonant" else 0
    degrees = [tonic + 12 * octave + step for octave in range(-1, 11) for step in scale]
    pitches = [p for p in degrees if abs(p - style.register) <= 9 and 36 <= p < 96]
    index = int(np.argmin([abs(p - style.register) for p in pitches]))
    share = ARTICULATIONS[style.articulation]
    second_voice = 0.6 if style.mode == "dissonant" else 0.3
    notes = []
    for start, slot in _onsets(style.rhythm, rng):
        index = int(np.clip(index + rng.choice((-2, -1, -1, 0, 1, 1, 2)), 0, len(pitches) - 1))
        pitch, duration = pitches[index], max(1, round(slot * share))
        notes.append(Note(start, duration, pitch))
        if rng.random() < second_voice:
            if style.mode == "dissonant":
                below = pitch - int(rng.choice(_DISSONANT_BELOW))
            else:
                below = pitches[max(0, index - int(rng.choice((2, 4))))]
            if 36 <= below < pitch:
                notes.append(Note(start, duration, below))
    return Piece(style.tempo, style.instrument, sorted(notes, key=lambda n: (n.start, n.pitch)))


def random_style(rng: np.random.Generator) -> Style:
    """Any style: the taste-agnostic corpus draws from all of them."""
    return Style(
        tempo=int(rng.choice(TEMPOS)),
        register=int(rng.integers(42, 84)),
        mode=str(rng.choice(MODES)),
        articulation=str(rng.choice(list(ARTICULATIONS))),
        rhythm=str(rng.choice(RHYTHMS)),
        instrument=str(rng.choice(INSTRUMENTS)),
    )


def taste_style(taste: str, rng: np.random.Generator) -> Style:
    """A style that follows ``taste``'s correspondences (module doc)."""

    def pick(*options: T) -> T:
        return options[rng.integers(len(options))]

    if taste == "sweet":
        return Style(
            int(pick(60, 72, 84)), int(rng.integers(72, 82)), "major", "legato", "flowing",
            str(pick("piano", "harp")),
        )  # fmt: skip
    if taste == "sour":
        return Style(
            int(pick(140, 160)), int(rng.integers(72, 82)), "dissonant", "detached", "even",
            str(pick("piano", "plucked")),
        )  # fmt: skip
    if taste == "bitter":
        return Style(
            int(pick(60, 72, 84)), int(rng.integers(42, 50)), "minor", "legato", "flowing", "brass"
        )
    if taste == "salty":
        return Style(
            int(pick(96, 108, 120)), int(rng.integers(58, 66)), str(pick("major", "minor")),
            "staccato", "rhythmic", str(pick("percussive", "plucked")),
        )  # fmt: skip
    raise ValueError(f"unknown taste {taste!r}; tastes are {TASTES}")


_WORDS = {
    "slow": ("slow", "calm", "unhurried"),
    "moderate": ("moderate", "walking-pace"),
    "fast": ("fast", "quick", "lively"),
    "low": ("low", "deep"),
    "middle": ("middle-register", "mid-range"),
    "high": ("high", "high-pitched"),
    "major": ("major-key", "consonant"),
    "minor": ("minor-key", "sombre minor"),
    "dissonant": ("dissonant", "clashing", "atonal"),
    "legato": ("legato", "smooth", "connected"),
    "detached": ("detached", "lightly separated"),
    "staccato": ("staccato", "short, clipped"),
    "flowing": ("flowing", "free-flowing"),
    "even": ("steady", "evenly pulsed"),
    "rhythmic": ("rhythmic", "syncopated"),
    "piano": ("piano",),
    "harp": ("harp",),
    "brass": ("brass", "tuba"),
    "plucked": ("guitar", "plucked strings"),
    "percussive": ("marimba", "mallet percussion"),
}

TASTE_WORDS = {
    "sweet": (
        "a sweet, gentle melody", "music that tastes like honey", "the sweetness of ripe "
        "strawberries", "a sugary, tender tune", "sweet like candy", "a piece as sweet as "
        "caramel", "sweet", "the taste of sugar", "a sweet dessert in music",
    ),
    "sour": (
        "the sourness of lemon", "a sour, sharp tune", "music as sour as green apples",
        "tart like vinegar", "sour", "sharp and acidic like lime", "the taste of sour candy",
        "a sour piece", "an acidic, tangy melody",
    ),
    "bitter": (
        "a bitter, dark piece", "bitter like black coffee", "the bitterness of dark chocolate",
        "bitter", "music as bitter as strong tea", "the bitter taste of grapefruit peel",
        "a bitter herbal liqueur in sound", "bitter medicine", "a dark and bitter melody",
    ),
    "salty": (
        "a salty snack of a song", "the saltiness of the sea", "salty like potato chips",
        "salty", "a salty, crunchy tune", "music that tastes of sea salt", "salted pretzels "
        "in sound", "a salty piece", "the taste of salt",
    ),
}  # fmt: skip
"""Taste descriptions of the taste corpus."""

EVAL_PROMPTS = {
    "sweet": ("sweet music", "a melody as sweet as ice cream", "sugar-sweet"),
    "sour": ("sour music", "a melody as sour as a lemon", "sour and tangy"),
    "bitter": ("bitter music", "a melody as bitter as coffee", "bitter and dark"),
    "salty": ("salty music", "a melody as salty as the ocean", "salty and savoury"),
}
"""Prompts the claim check asks for; no training description uses them."""


def _band(value: int, edges: tuple[int, int], names: tuple[str, str, str]) -> str:
    return names[0] if value < edges[0] else names[2] if value >= edges[1] else names[1]


def describe(style: Style, rng: np.random.Generator) -> str:
    """A plain-words description of ``style`` in one of a few phrasings."""

    def word(key: str) -> str:
        options = _WORDS[key]
        return str(options[rng.integers(len(options))])

    tempo = word(_band(style.tempo, (80, 115), ("slow", "moderate", "fast")))
    register = word(_band(style.register, (56, 70), ("low", "middle", "high")))
    mode, articulation = word(style.mode), word(style.articulation)
    rhythm, instrument = word(style.rhythm), word(style.instrument)
    phrasing = int(rng.integers(3))
    if phrasing == 0:
        return f"a {tempo}, {register} {mode} piece, {articulation} and {rhythm}, on {instrument}"
    if phrasing == 1:
        return f"{instrument} playing a {register}, {mode} tune; {tempo}, {rhythm}, {articulation}"
    return f"{articulation} {instrument} music, {tempo} and {rhythm}, {register} and {mode}"


def describe_taste(taste: str, rng: np.random.Generator) -> str:
    """One of the taste's phrasings (:data:`TASTE_WORDS`)."""
    options = TASTE_WORDS[taste]
    return str(options[rng.integers(len(options))])


_GENERIC = frozenset({
    "a", "an", "and", "as", "in", "of", "on", "the", "like", "that", "to", "with",
    "piece", "music", "tune", "melody", "song",
})  # fmt: skip
VOCABULARY = frozenset(
    w
    for phrases in (*_WORDS.values(), *TASTE_WORDS.values(), *EVAL_PROMPTS.values())
    for phrase in phrases
    for w in re.findall(r"[a-z]+", phrase.lower())
    if w not in _GENERIC
)
"""Content words of every description the corpora and the check use."""
FALLBACK_DESCRIPTION = "a moderate, middle-register major-key piece, detached and steady, on piano"


def content_words(text: str) -> list[str]:
    """The words of ``text`` that :data:`VOCABULARY` knows (taste, tempo, instrument ...)."""
    return [w for w in re.findall(r"[a-z]+", text.lower()) if w in VOCABULARY]
