import pytest
import torch
import torch.nn.functional as F

from polymodal.data.contract import collate
from polymodal.data.synth.music_events import BOS, EOS, VOCAB_SIZE
from polymodal.data.synth.taste_music import encode_text
from polymodal.errors import ConfigError
from polymodal.methods.taste_music import build_taste_music

TEXTS = ("a sweet, gentle melody", "the sourness of lemon")
SEQUENCES = ([BOS, 3, 11, 40, 100, EOS], [BOS, 9, 14, 27, 30, 80, 110, EOS])


def tiny(**options):
    torch.manual_seed(0)
    defaults = dict(dim=32, depth=1, num_heads=2, max_length=16, prefix_tokens=2, dropout=0.0)
    return build_taste_music("", {"text_ids": {}}, VOCAB_SIZE, **{**defaults, **options})


def batch():
    return collate(
        [
            {"text_ids": torch.tensor(encode_text(t)), "tokens": torch.tensor(s)}
            for t, s in zip(TEXTS, SEQUENCES, strict=True)
        ]
    )


def test_logits_score_every_next_token():
    b = batch()
    logits = tiny()(b).logits
    assert logits.shape == (2, b["tokens"].shape[1] - 1, VOCAB_SIZE)


def test_the_description_conditions_the_scores():
    model, b = tiny(), batch()
    swapped = dict(b, text_ids=b["text_ids"].flip(0), text_ids_mask=b["text_ids_mask"].flip(0))
    assert not torch.allclose(model(b).logits, model(swapped).logits)


def test_the_frozen_text_encoder_stays_out_of_the_weights():
    keys = tiny().state_dict()
    assert all(k.startswith(("prefix.", "decoder.")) for k in keys)
    assert sum(v.numel() for v in keys.values()) < 200_000


def test_sampling_is_seeded_and_top_1_is_greedy():
    model = tiny().eval()
    a = model.sample(TEXTS, temperature=1.0, top_k=10, seed=4)
    assert torch.equal(a, model.sample(TEXTS, temperature=1.0, top_k=10, seed=4))
    greedy = model.sample(TEXTS, temperature=0.0)
    assert torch.equal(greedy, model.sample(TEXTS, temperature=2.0, top_k=1, seed=9))
    assert (a[:, 0] == BOS).all() and a.shape[1] <= 16


def test_ids_after_eos_are_ignored_and_start_is_kept():
    model = tiny().eval()
    start = torch.tensor([[BOS, 5, 12], [BOS, 6, 13]])
    out = model.sample(TEXTS, temperature=1.0, seed=1, start=start)
    assert torch.equal(out[:, :3], start)
    for row in out:
        ends = (row == EOS).nonzero()
        if len(ends):
            assert (row[int(ends[0]) + 1 :] == -100).all()


def test_wrong_modalities_and_options_are_config_errors():
    with pytest.raises(ConfigError, match="text_ids only"):
        build_taste_music("", {"image": {}}, VOCAB_SIZE)
    with pytest.raises(ConfigError, match="temperature and top_k"):
        tiny().sample(TEXTS, temperature=-1)


@pytest.mark.slow
def test_two_descriptions_learn_their_own_pieces():
    model, b = tiny(), batch()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(150):
        loss = F.cross_entropy(
            model(b).logits.flatten(0, 1), b["tokens"][:, 1:].flatten(), ignore_index=-100
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    out = model.eval().sample(TEXTS, temperature=0.0)
    for row, expected in zip(out, SEQUENCES, strict=True):
        assert row[: len(expected)].tolist() == expected
