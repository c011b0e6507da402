import numpy as np
import pytest

from polymodal.data.synth.music_events import Note, Piece
from polymodal.data.synth.music_synth import render
from polymodal.methods.taste_music import judge


def chord(interval: int) -> Piece:
    return Piece(60, "piano", [Note(0, 16, 60), Note(0, 16, 60 + interval)])


def test_correspondences_of_a_hand_made_piece():
    # 120 bpm, tick = 1/16 s: onsets at 0, 8, 16 (two notes), last note ends at tick 24
    piece = Piece(
        120,
        "piano",
        [Note(0, 8, 60), Note(8, 2, 64), Note(16, 8, 66), Note(16, 8, 72)],
    )
    features = judge.correspondences(piece, render(piece))
    assert features["mean pitch"] == pytest.approx((60 + 64 + 66 + 72) / 4)
    assert features["tempo"] == 120
    assert features["dissonance"] == 1.0  # 66-72 is a tritone
    assert features["legato"] == pytest.approx((8 / 8 + 2 / 8) / 2)
    assert features["note rate"] == pytest.approx(3 / 1.5)


def test_a_consonant_chord_has_no_dissonance_and_an_empty_piece_has_no_pitch():
    assert judge.correspondences(chord(7), render(chord(7)))["dissonance"] == 0.0
    empty = Piece(120, "piano", [])
    assert np.isnan(judge.correspondences(empty, render(empty))["mean pitch"])
    assert np.isfinite(judge.audio_features(render(empty))).all()


def test_audio_features_hear_pitch_brightness_and_roughness():
    low, high = (Piece(120, "piano", [Note(0, 16, p)]) for p in (45, 81))
    f_low, f_high = judge.audio_features(render(low)), judge.audio_features(render(high))
    assert f_low[3] == pytest.approx(np.log2(110), abs=0.1)  # dominant frequency, A2
    assert f_high[1] > f_low[1] + 1  # centroid over an octave higher
    rough = judge.audio_features(render(chord(1)))[6]
    smooth = judge.audio_features(render(chord(7)))[6]
    assert rough > smooth


def test_brightness_is_the_spectral_centroid():
    assert judge.spectral_centroid(render(Piece(120, "harp", [Note(0, 16, 69)]))) < 600
    assert judge.spectral_centroid(render(Piece(120, "brass", [Note(0, 16, 69)]))) > 800


@pytest.mark.slow
def test_the_judge_recognises_held_out_tastes():
    fitted = judge.train_judge((6, 3, 5), seed=50)
    assert fitted.test_accuracy >= 0.9
    assert fitted.confusion.sum() == 20
