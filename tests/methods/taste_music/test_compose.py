import math

import pytest
import torch

from polymodal.data.real.wav import read_wav_native
from polymodal.data.synth.music_compose import FALLBACK_DESCRIPTION
from polymodal.data.synth.music_events import VOCAB_SIZE, read_midi
from polymodal.errors import ConfigError, DataError
from polymodal.methods.taste_music import build_taste_music
from polymodal.methods.taste_music.compose import (
    check_seconds,
    compose_piece,
    understood,
    write_piece,
)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    options = dict(dim=32, depth=1, num_heads=2, max_length=48, prefix_tokens=2)
    return build_taste_music("", {"text_ids": {}}, VOCAB_SIZE, **options).eval()


@pytest.mark.parametrize("seconds", [0, -3, 601, 1e9, math.nan])
def test_zero_or_absurd_durations_are_one_line_errors(seconds):
    with pytest.raises(ConfigError, match=r"--seconds must be above 0 and at most 600") as error:
        check_seconds(seconds)
    assert "\n" not in str(error.value)


def test_an_empty_description_is_refused():
    with pytest.raises(DataError, match="description is empty"):
        understood("   ")


def test_unknown_words_fall_back_and_say_so():
    text, note = understood("zxqv plonk wibble")
    assert text == FALLBACK_DESCRIPTION and "fell back" in note and "\n" not in note
    assert understood("a bitter, dark piece") == ("a bitter, dark piece", "")


def test_a_piece_lasts_at_most_the_seconds_asked(model):
    piece, _, phrases = compose_piece(model, "a bitter, dark piece", 3.0, seed=2)
    assert piece.seconds <= 3.0 + 1e-9
    again, _, _ = compose_piece(model, "a bitter, dark piece", 3.0, seed=2)
    assert again == piece and phrases >= 1


def test_midi_and_wav_are_written_and_read_back(model, tmp_path):
    piece, _, _ = compose_piece(model, "sweet", 2.0, seed=1)
    midi, wav, how = write_piece(piece, tmp_path / "out" / "piece", soundfont=tmp_path / "no.sf2")
    assert read_midi(midi) == piece
    wave, rate = read_wav_native(wav)
    assert rate == 16_000 and wave.numel() > 0
    assert how.startswith("built-in synthesiser (SoundFont") and "does not exist" in how
