"""The ASR testbed: fixed utterances with transcripts, heard in every scenario at every severity.

Twenty-four sentences of one set (``everyday``: meeting, stream and call talk;
``shapes``: Shapes-VQA test questions, for recognisers that only know that
vocabulary, such as Nexus-O's stage-1 model) are spoken by
espeak-ng voices drawn with a fixed seed, then degraded by each scenario of
:mod:`polymodal.data.synth.scenarios` at each severity, every clip with its own
seeded generator. The meeting's babble and interrupting talkers are eight other
sentences spoken by eight other voices. Speech comes from the synthesis cache, so
after the first build the testbed costs only the (fast, numpy) degradations.

Example::

    bed = build_testbed(size=12)
    for (scenario, severity), waves in bed.clips.items():
        ...  # waves[i] is bed.transcripts[i] heard in that scenario
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from polymodal.data.synth.scenarios import SCENARIOS, SEVERITIES, degrade
from polymodal.data.synth.speech import Utterance, sample_voices, synthesize
from polymodal.errors import ConfigError

SENTENCES = (
    "please share your screen with the team",
    "the budget review moves to next tuesday",
    "can everyone hear me clearly now",
    "we need the final report by friday",
    "let us start with the sales numbers",
    "thank you all for joining the call today",
    "i will send the slides after the meeting",
    "who is taking notes this morning",
    "the new office opens in the spring",
    "please mute your microphone when not speaking",
    "welcome back to the stream everyone",
    "do not forget to follow the channel",
    "today we are building a small robot",
    "the next game starts in five minutes",
    "thanks for the kind words in the chat",
    "my train is running about ten minutes late",
    "call me back when you get this message",
    "the doctor can see you at three",
    "turn left at the next traffic light",
    "i left my keys on the kitchen table",
    "the weather will be cold and windy tomorrow",
    "could you repeat the last number please",
    "our flight lands at seven in the evening",
    "the package arrived this afternoon",
)
"""The testbed's transcripts (lower case, no punctuation: what WER compares)."""

BABBLE_SENTENCES = (
    "where did we put the printer paper",
    "i think the coffee machine is broken again",
    "has anyone seen the blue folder",
    "the client wants a shorter version",
    "lunch is in the big room today",
    "my laptop needs to restart",
    "we should order more chairs",
    "the parking lot is full again",
)
"""What the other people in the meeting say (babble and interruptions)."""

SHAPES_QUESTIONS = (
    "is there a green circle",
    "is there a red square",
    "is there a red diamond",
    "is there a yellow diamond",
    "what color is the circle",
    "is the red circle left of the blue triangle",
    "how many objects are there",
    "is there a cyan diamond",
    "what color is the triangle",
    "is the purple square left of the yellow circle",
    "what shape is the cyan object",
    "what color is the square",
    "is the red triangle left of the green square",
    "is the blue diamond left of the purple diamond",
    "is there a red triangle",
    "what shape is the yellow object",
    "what shape is the blue object",
    "is the blue circle left of the red triangle",
    "is there a blue square",
    "is there a yellow triangle",
    "is the purple square left of the red square",
    "is there a purple square",
    "is there a purple diamond",
    "is there a yellow square",
)
"""The first 24 distinct questions of the Shapes-VQA test split (question marks dropped)."""

SENTENCE_SETS = {"everyday": SENTENCES, "shapes": SHAPES_QUESTIONS}
"""Sentence set name -> its transcripts (every set has 24, spoken by the same voices)."""

TESTBED_SEED = 20
"""Seed of the voices and of every clip's degradation."""


@dataclass(frozen=True)
class ASRTestbed:
    """Utterances with transcripts, clean and per (scenario, severity).

    Attributes:
        transcripts: N reference transcripts.
        clean: N (S_i,) float32 waveforms at 16 kHz, the undegraded speech.
        clips: (scenario, severity) -> N (S_i,) float32 waveforms, in transcript order.
    """

    transcripts: tuple[str, ...]
    clean: tuple[np.ndarray, ...]
    clips: dict[tuple[str, int], tuple[np.ndarray, ...]]


def _clip_seed(scenario: str, severity: int, index: int) -> list[int]:
    return [TESTBED_SEED, SCENARIOS.index(scenario), severity, index]


def build_testbed(
    size: int = len(SENTENCES),
    scenarios: Sequence[str] = SCENARIOS,
    severities: Sequence[int] = SEVERITIES,
    workers: int | None = None,
    sentences: str = "everyday",
) -> ASRTestbed:
    """The fixed testbed (its first ``size`` sentences), deterministic on every machine.

    Args:
        size: number of utterances, 1..24.
        scenarios: which scenarios to render.
        severities: which severities to render.
        workers: espeak worker processes on a synthesis-cache miss.
        sentences: the sentence set, a key of :data:`SENTENCE_SETS`.

    Returns:
        The testbed; clip ``i`` of every condition is sentence ``i``, same voice.
    """
    if sentences not in SENTENCE_SETS:
        raise ConfigError(f"unknown sentence set {sentences!r}; choose from {list(SENTENCE_SETS)}")
    texts = SENTENCE_SETS[sentences]
    if not 1 <= size <= len(texts):
        raise ConfigError(f"testbed size must be in 1..{len(texts)}, got {size}")
    for name in scenarios:
        if name not in SCENARIOS:
            raise ConfigError(f"unknown scenario {name!r}; choose from {SCENARIOS}")
    voices = sample_voices(
        len(SENTENCES) + len(BABBLE_SENTENCES), seed=TESTBED_SEED, rate=(130, 200)
    )
    speakers, others = voices[: len(SENTENCES)], voices[len(SENTENCES) :]
    utterances = [Utterance(t, v) for t, v in zip(texts[:size], speakers, strict=False)]
    utterances += [Utterance(t, v) for t, v in zip(BABBLE_SENTENCES, others, strict=True)]
    waves = synthesize(utterances, workers=workers, progress=False)
    clean, babble = waves[:size], waves[size:]
    clips = {
        (name, severity): tuple(
            degrade(
                wave, name, severity, np.random.default_rng(_clip_seed(name, severity, i)), babble
            )
            for i, wave in enumerate(clean)
        )
        for name in scenarios
        for severity in severities
    }
    return ASRTestbed(texts[:size], tuple(clean), clips)
