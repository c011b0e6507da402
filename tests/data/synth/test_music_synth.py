import numpy as np
import pytest

from polymodal.data.synth.music_events import Note, Piece
from polymodal.data.synth.music_synth import SAMPLE_RATE, TIMBRES, render, render_soundfont
from polymodal.errors import DataError


def a4(instrument: str, ticks: int = 16) -> Piece:
    # 120 bpm: a tick is 1/16 s; 16 ticks = 1 s of A4 (440 Hz)
    return Piece(120, instrument, [Note(0, ticks, 69)])


@pytest.mark.parametrize("instrument", list(TIMBRES))
def test_a4_sounds_at_440_hz(instrument):
    wave = render(a4(instrument))
    spectrum = np.abs(np.fft.rfft(wave[: SAMPLE_RATE // 2]))
    peak = np.fft.rfftfreq(SAMPLE_RATE // 2, 1 / SAMPLE_RATE)[spectrum.argmax()]
    assert abs(peak - 440) <= 2
    assert np.abs(wave).max() == pytest.approx(0.8, abs=1e-6)


def test_length_is_the_piece_plus_release_and_tail():
    wave = render(a4("piano"), tail=0.3)
    expected = (1.0 + TIMBRES["piano"].release + 0.3) * SAMPLE_RATE
    assert abs(wave.size - expected) <= 1


def test_brass_sustains_while_a_pluck_dies_away():
    def late_over_early(instrument):
        wave = render(a4(instrument))
        rms = lambda a, b: np.sqrt(np.mean(wave[int(a * SAMPLE_RATE) : int(b * SAMPLE_RATE)] ** 2))  # noqa: E731
        return rms(0.8, 0.9) / rms(0.1, 0.2)

    # the pluck's fundamental decays at 3 /s: 0.7 s later at most e^-2.1 of its level
    assert late_over_early("brass") > 0.9 and late_over_early("plucked") < np.exp(-2.1) + 0.01


def test_rests_are_silent_and_rendering_is_deterministic():
    piece = Piece(120, "harp", [Note(32, 4, 60)])  # starts at 2 s
    wave = render(piece)
    assert np.all(wave[: 2 * SAMPLE_RATE - 1] == 0)
    assert np.array_equal(wave, render(piece))


def test_a_missing_soundfont_is_one_line_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        render_soundfont(a4("piano"), tmp_path / "none.sf2")
