import pytest
import torch

from polymodal.errors import ConfigError
from polymodal.modules.modality_dropout import check_rates, drop_modalities

# torch.rand((4, 2)) from a generator seeded 0, three rounds in a row:
#   round 1: [.4963 .7682] [.0885 .1320] [.3074 .6341] [.4901 .8964]
#   round 2: [.4556 .6323] [.3489 .4017] [.0223 .1689] [.2939 .5185]
#   round 3: [.6977 .8000] [.1610 .2823] [.6816 .9152] [.3971 .8742]
# Columns are (image, audio); a modality is dropped where u < its rate.


def batch(**masks: list[bool]) -> dict[str, torch.Tensor]:
    out = {"image": torch.zeros(4, 1, 2, 2), "audio": torch.zeros(4, 3, 5)}
    out.update({key: torch.tensor(v) for key, v in masks.items()})
    return out


def dropped(b: dict[str, torch.Tensor], rates: dict[str, float]) -> dict[str, torch.Tensor]:
    return drop_modalities(b, rates, torch.Generator().manual_seed(0))


def test_zero_rates_change_nothing():
    b = batch(image_mask=[True, False, True, True])
    out = dropped(b, {"image": 0.0, "audio": 0.0})
    assert out.keys() == b.keys()
    assert all(out[k] is b[k] for k in b)


def test_seeded_drops_are_the_hand_checked_ones():
    # Rates image .4, audio .2. Round 1: sample 0 keeps both, sample 1 would lose both
    # (.0885 < .4, .1320 < .2) and is redrawn, sample 2 loses its image (.3074), sample 3
    # keeps both. Round 2, sample 1 only: .3489 < .4 drops the image, .4017 keeps audio.
    out = dropped(batch(), {"image": 0.4, "audio": 0.2})
    assert out["image_mask"].tolist() == [True, False, False, True]
    assert out["audio_mask"].tolist() == [True, True, True, True]


def test_masks_already_false_stay_false():
    # Sample 0 has no image: its round-1 audio draw .7682 keeps the audio.
    out = dropped(batch(image_mask=[False, True, True, True]), {"image": 0.4, "audio": 0.2})
    assert out["image_mask"].tolist() == [False, False, False, True]
    assert out["audio_mask"].tolist() == [True, True, True, True]


def test_a_sample_with_one_modality_never_loses_it():
    # Sample 1 carries only its image; its draws .0885, .3489, .1610 (< .4) are all redrawn.
    out = dropped(batch(audio_mask=[True, False, True, True]), {"image": 0.4, "audio": 0.2})
    assert out["image_mask"].tolist() == [True, True, False, True]
    assert out["audio_mask"].tolist() == [True, False, True, True]


def test_never_every_modality_of_a_sample():
    b = {"image": torch.zeros(500, 1), "audio": torch.zeros(500, 1), "genes": torch.zeros(500, 2)}
    out = drop_modalities(
        b, {"image": 0.9, "audio": 0.9, "genes": 0.9}, torch.Generator().manual_seed(1)
    )
    masks = torch.stack([out[f"{m}_mask"] for m in ("image", "audio", "genes")], dim=1)
    assert masks.any(dim=1).all()
    assert (~masks).any()  # it did drop


def test_a_rate_zero_modality_counts_as_one_that_stays():
    # Audio is never dropped, so nothing is redrawn; the only draws are image's, a
    # (4, 1) tensor: the first four numbers above, .4963 .7682 .0885 .1320 (< .4 drops).
    out = dropped(batch(), {"image": 0.4, "audio": 0.0})
    assert out["image_mask"].tolist() == [True, True, False, False]
    assert "audio_mask" not in out


@pytest.mark.parametrize("rates", [{"image": 1.0}, {"image": -0.1}, {"image": "high"}])
def test_rates_outside_zero_to_one_are_rejected(rates):
    with pytest.raises(ConfigError, match="model.modality_dropout.image"):
        check_rates(rates, ["image", "audio"])


def test_a_rate_for_an_unknown_modality_is_rejected():
    with pytest.raises(ConfigError, match="no modality 'depth'"):
        check_rates({"depth": 0.3}, ["image", "audio"])
