import numpy as np
import pytest
import torch

from polymodal.data.synth import taste_music as tm
from polymodal.data.synth.music_compose import (
    ARTICULATIONS,
    EVAL_PROMPTS,
    TASTE_WORDS,
    TASTES,
    content_words,
    describe,
    random_style,
)
from polymodal.data.synth.music_events import decode_tokens
from polymodal.errors import ConfigError


def mean_by_taste(per_taste: int = 12):
    pieces, labels, _ = tm.taste_pieces(per_taste, seed=5)
    out = {}
    for k, taste in enumerate(TASTES):
        chosen = [p for p, label in zip(pieces, labels, strict=True) if label == k]
        out[taste] = {
            "pitch": np.mean([n.pitch for p in chosen for n in p.notes]),
            "tempo": np.mean([p.tempo for p in chosen]),
            "instruments": {p.instrument for p in chosen},
        }
    return out


def test_tastes_follow_their_correspondences():
    m = mean_by_taste()
    assert m["sweet"]["pitch"] > 68 and m["sour"]["pitch"] > 68 and m["bitter"]["pitch"] < 52
    assert m["sour"]["tempo"] >= 140 and m["sweet"]["tempo"] <= 84
    assert m["bitter"]["instruments"] == {"brass"}
    assert m["sweet"]["instruments"] <= {"piano", "harp"}


def test_salty_is_staccato_and_sweet_legato():
    pieces, labels, _ = tm.taste_pieces(4, seed=5)
    salty = [p for p, label in zip(pieces, labels, strict=True) if TASTES[label] == "salty"]
    sweet = [p for p, label in zip(pieces, labels, strict=True) if TASTES[label] == "sweet"]
    assert max(n.duration for p in salty for n in p.notes) <= round(8 * ARTICULATIONS["staccato"])
    assert min(n.duration for p in sweet for n in p.notes) >= 4


def test_judge_and_generator_streams_never_share_pieces():
    judge, _, _ = tm.taste_pieces(5, seed=0, stream="judge")
    taste, _, _ = tm.taste_pieces(5, seed=0, stream="taste")
    assert not any(a == b for a in judge for b in taste)


def test_text_ids_round_trip_any_utf8():
    text = "süß, like crème brûlée"
    ids = torch.tensor([*tm.encode_text(text), 0, 0])
    assert min(ids[:-2]) >= 1 and tm.decode_text(ids) == text


def test_the_taste_corpus_has_85_plus_15_pieces_described_by_taste(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))
    train, val = tm.load_taste_music("train"), tm.load_taste_music("val")
    assert len(train) == 85 and len(val) == 15
    assert torch.equal(tm.load_taste_music("test").tensors["tokens"], val.tensors["tokens"])
    sample = train[0]
    taste = TASTES[int(sample["label"])]
    assert tm.decode_text(sample["text_ids"]) in TASTE_WORDS[taste]
    assert sample["tokens"][0] == tm.BOS and sample["tokens"][-1] == tm.EOS
    assert decode_tokens(sample["tokens"].tolist()).malformed == 0


def test_evaluation_prompts_are_not_training_descriptions():
    training = {t for words in TASTE_WORDS.values() for t in words}
    assert not training & {p for prompts in EVAL_PROMPTS.values() for p in prompts}


def test_plain_descriptions_use_the_known_vocabulary():
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert len(content_words(describe(random_style(rng), rng))) >= 5
    assert content_words("xyzzy plugh music") == []


def test_bad_options_are_config_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="corpus must be one of"):
        tm.load_taste_music("train", corpus="jazz")
    with pytest.raises(ConfigError, match="splits"):
        tm.load_taste_music("holdout")
