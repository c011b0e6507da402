import pytest

from polymodal.data.synth import music_events as me
from polymodal.data.synth.music_compose import TASTES, compose, taste_style
from polymodal.errors import DataError

# Two notes together at tick 0 (a chord), one after a 20-tick rest (two shifts).
PIECE = me.Piece(120, "harp", [me.Note(0, 4, 60), me.Note(0, 4, 64), me.Note(20, 2, 67)])


def test_a_hand_made_piece_encodes_to_the_expected_events():
    names = [me.token_name(t) for t in me.encode_piece(PIECE)]
    assert names == [
        "BOS", "TEMPO_120", "INSTR_harp",
        "PITCH_60", "DUR_4", "PITCH_64", "DUR_4",
        "SHIFT_16", "SHIFT_4", "PITCH_67", "DUR_2",
        "EOS",
    ]  # fmt: skip


def test_tokens_decode_back_to_the_same_piece():
    decoded = me.decode_tokens(me.encode_piece(PIECE))
    assert decoded.piece == PIECE and decoded.malformed == 0


@pytest.mark.parametrize("taste", TASTES)
def test_midi_round_trip_gives_the_same_events(tmp_path, taste):
    import numpy as np

    rng = np.random.default_rng(3)
    piece = compose(taste_style(taste, rng), rng)
    me.write_midi(piece, tmp_path / "piece.mid")
    back = me.read_midi(tmp_path / "piece.mid")
    assert back == piece
    assert me.encode_piece(back) == me.encode_piece(piece)


def test_midi_keeps_the_general_midi_program(tmp_path):
    import pretty_midi

    me.write_midi(PIECE, tmp_path / "p.mid")
    assert pretty_midi.PrettyMIDI(str(tmp_path / "p.mid")).instruments[0].program == 46


def test_broken_generated_tokens_are_counted_not_fatal():
    pitch_60, dur_2 = me.encode_piece(me.Piece(96, "piano", [me.Note(0, 2, 60)]))[3:5]
    ids = [me.BOS, pitch_60, pitch_60, dur_2, dur_2, me.EOS, pitch_60]
    decoded = me.decode_tokens(ids)
    # first pitch lost its duration, last duration has no pitch; after EOS nothing counts
    assert decoded.piece.notes == [me.Note(0, 2, 60)] and decoded.malformed == 2
    assert decoded.piece.tempo == 108 and decoded.piece.instrument == "piano"


def test_events_outside_the_vocabulary_are_refused():
    with pytest.raises(DataError, match="tempo 100"):
        me.encode_piece(me.Piece(100, "piano"))
    with pytest.raises(DataError, match="pitch in 36..95"):
        me.encode_piece(me.Piece(120, "piano", [me.Note(0, 2, 20)]))


def test_a_file_that_is_not_midi_is_one_line_error(tmp_path):
    (tmp_path / "x.mid").write_text("not midi")
    with pytest.raises(DataError, match="not a readable MIDI file"):
        me.read_midi(tmp_path / "x.mid")
