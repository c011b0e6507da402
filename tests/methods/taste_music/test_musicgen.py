import numpy as np
import pytest

from polymodal.data.real.wav import read_wav_native
from polymodal.data.synth.music_synth import render
from polymodal.data.synth.taste_music import taste_pieces
from polymodal.methods.taste_music import musicgen


@pytest.fixture(scope="module")
def model():
    return musicgen.tiny_musicgen(text_vocab_size=30522, seed=0)


@pytest.fixture(scope="module")
def pairs():
    pieces, _, texts = taste_pieces(1, seed=0)  # one piece per taste
    return texts, [render(p)[:16_000] for p in pieces]  # 1 s each


def test_audio_becomes_two_codebooks_of_varied_codes(model, pairs):
    musicgen.seed_codebooks(model, pairs[1])
    codes = musicgen.audio_codes(model, pairs[1])
    assert codes.shape == (4, 63, 2)  # 1 s at 63 frames/s, 2 codebooks
    assert len(codes.unique()) > 4 and int(codes.max()) < 64


@pytest.mark.slow
def test_fine_tuning_lowers_the_loss_and_generation_writes_audio(model, pairs, tmp_path):
    texts, waves = pairs
    text_before = {k: v.clone() for k, v in model.text_encoder.state_dict().items()}
    losses = musicgen.finetune_musicgen(model, musicgen.minilm_tokenize, texts, waves, steps=8)
    assert losses[-1] < losses[0] - 0.1
    assert all(
        np.array_equal(v, model.text_encoder.state_dict()[k]) for k, v in text_before.items()
    )
    audio = musicgen.generate_audio(model, musicgen.minilm_tokenize, texts[:2], frames=16)
    assert audio.shape[0] == 2 and audio.shape[1] > 0 and np.isfinite(audio).all()
    paths = musicgen.write_clips(audio, 16_000, tmp_path, ["sweet", "sour"])
    wave, rate = read_wav_native(paths[0])
    assert rate == 16_000 and wave.numel() == audio.shape[1]
