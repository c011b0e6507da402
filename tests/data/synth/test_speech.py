"""Tests of offline speech synthesis (espeak-ng through espeakng-loader)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from polymodal.data.synth import speech
from polymodal.data.synth.speech import (
    SAMPLE_RATE,
    SpeechSynthesizer,
    Utterance,
    Voice,
    sample_voices,
    synthesize,
    voice_grid,
)

needs_espeak = pytest.mark.skipif(
    importlib.util.find_spec("espeakng_loader") is None,
    reason="espeakng-loader is not installed (pip install polymodal[speech])",
)


@pytest.fixture(scope="module")
def synth() -> Iterator[SpeechSynthesizer]:
    pytest.importorskip("espeakng_loader", reason="pip install polymodal[speech]")
    with SpeechSynthesizer(workers=2) as pool:
        yield pool


def say(pool: SpeechSynthesizer, *utterances: Utterance) -> list[np.ndarray]:
    return pool.synthesize(list(utterances), progress=False)


# ---- voices (no espeak needed) --------------------------------------------------------


def test_voice_rejects_out_of_range_parameters() -> None:
    for kwargs in ({"pitch": 100}, {"pitch": -1}, {"rate": 79}, {"rate": 451}, {"volume": 201}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            Voice(**kwargs)  # type: ignore[arg-type]


def test_utterance_rejects_empty_text() -> None:
    for text in ("", "   "):
        with pytest.raises(ValueError, match="non-empty"):
            Utterance(text)


def test_voice_grid_is_the_product_in_order() -> None:
    grid = voice_grid(languages=("en", "en-US"), variants=("", "f3"), pitches=(40, 60))
    assert len(grid) == 8
    assert grid[0] == Voice("en", 40)
    assert grid[1] == Voice("en", 60)
    assert grid[2] == Voice("en+f3", 40)
    assert grid[-1] == Voice("en-US+f3", 60)


def test_sample_voices_are_distinct_reproducible_and_in_range() -> None:
    voices = sample_voices(50, seed=3, pitch=(40, 41), rate=(150, 151), volume=(90, 90))
    assert len(set(voices)) == 50
    assert voices == sample_voices(50, seed=3, pitch=(40, 41), rate=(150, 151), volume=(90, 90))
    assert voices != sample_voices(50, seed=4, pitch=(40, 41), rate=(150, 151), volume=(90, 90))
    assert {v.pitch for v in voices} <= {40, 41}
    assert {v.rate for v in voices} <= {150, 151}
    assert {v.volume for v in voices} == {90}


def test_sample_voices_can_exhaust_a_small_grid_but_not_exceed_it() -> None:
    kwargs = {"languages": ("en",), "variants": ("", "m1"), "pitch": (50, 52), "rate": (175, 175)}
    everything = sample_voices(6, seed=0, volume=(100, 100), **kwargs)  # type: ignore[arg-type]
    assert set(everything) == set(voice_grid(("en",), ("", "m1"), (50, 51, 52)))
    with pytest.raises(ValueError, match="7 distinct voices from 6"):
        sample_voices(7, seed=0, volume=(100, 100), **kwargs)  # type: ignore[arg-type]


def test_missing_loader_raises_runtime_error_naming_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)  # makes the import fail
    with pytest.raises(RuntimeError, match=r"espeakng-loader.*polymodal\[speech\]"):
        SpeechSynthesizer(workers=1)


# ---- synthesis ------------------------------------------------------------------------


def test_output_is_float32_16khz_word_length_and_within_unit_range(
    synth: SpeechSynthesizer,
) -> None:
    (wave,) = say(synth, Utterance("seven"))
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert 0.2 <= len(wave) / SAMPLE_RATE <= 1.5
    assert 0.05 < np.abs(wave).max() <= 1.0


def test_same_utterance_is_bit_identical_within_a_batch(synth: SpeechSynthesizer) -> None:
    u = Utterance("three", Voice("en-US+f3", pitch=60), seed=7)
    first, other, second = say(synth, u, Utterance("four"), u)
    assert np.array_equal(first, second)


def test_utterance_does_not_depend_on_batch_order_or_pool(synth: SpeechSynthesizer) -> None:
    batch = [Utterance(w, Voice("en+f3"), seed=i) for i, w in enumerate(["one", "two", "six"])]
    forward = say(synth, *batch)
    backward = say(synth, *batch[::-1])[::-1]
    fresh = synthesize(batch, workers=1, cache=False, progress=False)  # other processes
    for a, b, c in zip(forward, backward, fresh, strict=True):
        assert np.array_equal(a, b)
        assert np.array_equal(a, c)


def test_seed_changes_a_breathy_voice(synth: SpeechSynthesizer) -> None:
    # only voices with a noise ("breath") component draw random numbers: f2, f3, f5, whisper
    a, b = say(synth, *(Utterance("five", Voice("en+f3"), seed=s) for s in (0, 1)))
    assert len(a) == len(b) and not np.array_equal(a, b)


def test_voice_and_pitch_change_the_audio(synth: SpeechSynthesizer) -> None:
    reference, other_voice, higher = say(
        synth,
        Utterance("five", Voice("en", pitch=50)),
        Utterance("five", Voice("en+m3", pitch=50)),
        Utterance("five", Voice("en", pitch=70)),
    )
    for other in (other_voice, higher):
        assert not (len(other) == len(reference) and np.array_equal(other, reference))


def test_faster_rate_gives_shorter_audio(synth: SpeechSynthesizer) -> None:
    slow, fast = say(
        synth, Utterance("seven", Voice(rate=100)), Utterance("seven", Voice(rate=300))
    )
    assert len(fast) < 0.6 * len(slow)


def test_trimming_cuts_only_quiet_ends(synth: SpeechSynthesizer) -> None:
    u = Utterance("seven")  # espeak starts this word with ~12 ms of zeros
    (trimmed,) = say(synth, u)
    (raw,) = synth.synthesize([u], progress=False, trim=False)
    n = len(trimmed)
    start = next(i for i in range(len(raw) - n + 1) if np.array_equal(raw[i : i + n], trimmed))
    cut = np.concatenate([raw[:start], raw[start + n :]])
    assert start > 0
    assert np.abs(cut).max() < 0.01 * np.abs(trimmed).max()


@needs_espeak
def test_unknown_voice_raises_value_error_naming_it(synth: SpeechSynthesizer) -> None:
    for name in ("xx-klingon", "en+nosuchvariant"):
        with pytest.raises(ValueError, match=name.replace("+", r"\+")):
            say(synth, Utterance("one", Voice(name)))


def test_voice_rejected_by_espeak_raises_and_pool_survives(
    synth: SpeechSynthesizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(speech, "_check_voice_name", lambda name: None)
    with pytest.raises(ValueError, match="'xx'"):
        say(synth, Utterance("one"), Utterance("two", Voice("xx")), Utterance("three"))
    (wave,) = say(synth, Utterance("one"))
    assert len(wave) > 0


@needs_espeak
def test_dead_worker_raises_runtime_error() -> None:
    pool = SpeechSynthesizer(workers=1)
    pool._workers[0].process.kill()
    with pytest.raises(RuntimeError, match="exited unexpectedly"):
        say(pool, Utterance("one"))
    assert pool.workers == 0  # closed: it cannot be trusted any more


# ---- cache ----------------------------------------------------------------------------


@needs_espeak
def test_cache_hit_returns_equal_arrays_without_starting_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))
    batch = [Utterance("nine", Voice("en-GB-x-rp+m2"), seed=s) for s in (0, 1)]
    first = synthesize(batch, workers=1, progress=False)
    assert len(list((tmp_path / "speech").rglob("*.npz"))) == 1

    class NoWorkers:
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise AssertionError("a cache hit must not start espeak-ng")

    monkeypatch.setattr(speech, "SpeechSynthesizer", NoWorkers)
    second = synthesize(list(batch), workers=1, progress=False)
    assert len(second) == 2
    for a, b in zip(first, second, strict=True):
        assert b.dtype == np.float32
        assert np.array_equal(a, b)
    with pytest.raises(AssertionError, match="must not start"):
        synthesize(batch[:1], workers=1, progress=False)  # another batch is a miss


def test_batch_key_depends_on_every_field() -> None:
    u = Utterance("one", Voice("en", 50, 175, 100), seed=0)
    keys = {
        speech.batch_key([u]),
        speech.batch_key([Utterance("one", Voice("en", 50, 175, 100), seed=1)]),
        speech.batch_key([Utterance("one", Voice("en", 51, 175, 100), seed=0)]),
        speech.batch_key([Utterance("one", Voice("en", 50, 176, 100), seed=0)]),
        speech.batch_key([Utterance("one", Voice("en", 50, 175, 101), seed=0)]),
        speech.batch_key([Utterance("one", Voice("en+m1", 50, 175, 100), seed=0)]),
        speech.batch_key([Utterance("One", Voice("en", 50, 175, 100), seed=0)]),
        speech.batch_key([u], trim=False),
        speech.batch_key([u, u]),
    }
    assert len(keys) == 9
    assert speech.batch_key([u]) == speech.batch_key([Utterance("one")])
