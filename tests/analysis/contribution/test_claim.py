"""The ``contribution`` check's criterion on hand-made per-item results."""

import numpy as np
import pytest

from polymodal.analysis.contribution.claim import (
    Items,
    Setting,
    criterion_parts,
    pick_balanced,
    pooled_m,
    spearman,
)
from polymodal.bench.verdict import decide

N = 200
RESAMPLES = 300


def shares(image: float, audio: float, n: int = N) -> np.ndarray:
    """(n, 2) occlusion effects that vary from item to item around (image, audio)."""
    wobble = np.linspace(0.5, 1.5, n)[:, None]  # same factor for both: shares stay put
    return np.array([[image, audio]]) * wobble


def hits(accuracy: float, n: int = N, last: bool = False) -> np.ndarray:
    """(n,) 0/1 correctness with exactly ``accuracy * n`` ones, first or last."""
    ones = (np.arange(n) < round(accuracy * n)).astype(float)
    # The image-only model gets the first items right and the audio-only model the
    # last ones, so their errors are not one and the same.
    return ones[::-1].copy() if last else ones


def sweep(reverse: bool = False) -> list[Items]:
    """Five settings from image-friendly to audio-friendly; m follows accuracy unless reversed."""
    settings = []
    for s in range(5):
        image, audio = 0.9 - 0.2 * s, 0.1 + 0.2 * s
        d = shares(1 + s, 5 - s) if reverse else shares(5 - s, 1 + s)
        settings.append(Items(d, hits(image), hits(audio, last=True)))
    return settings


COLLAPSED = Items(shares(0.98, 0.02))
BALANCED = Items(shares(0.5, 0.5))


def test_pooled_m_is_the_share_of_the_mean_effects():
    d = np.array([[3.0, 2.0], [3.0, 6.0]])  # means 3 and 4
    np.testing.assert_allclose(pooled_m(d), [3 / 7, 4 / 7])
    np.testing.assert_allclose(pooled_m(np.zeros((2, 2))), [0.0, 0.0])


def test_spearman_hand_values_and_constant_input():
    assert spearman(np.array([1.0, 2, 3, 4, 5]), np.array([1.0, 3, 2, 4, 5])) == pytest.approx(0.9)
    assert spearman(np.array([1.0, 2, 3]), np.array([3.0, 2, 1])) == pytest.approx(-1.0)
    assert spearman(np.array([1.0, 1, 1]), np.array([1.0, 2, 3])) == 0.0


def test_criterion_holds_when_collapse_balance_and_ranking_are_clear():
    parts = criterion_parts(COLLAPSED, BALANCED, sweep(), resamples=RESAMPLES)
    assert [p.verdict for p in parts] == ["holds"] * 3
    assert decide(parts) == "holds"
    assert parts[0].estimate == pytest.approx(0.02)
    assert parts[1].estimate == pytest.approx(0.5)
    assert parts[2].estimate == pytest.approx(1.0)


def test_criterion_does_not_hold_when_the_noise_modality_keeps_a_share():
    leaky = Items(shares(0.8, 0.2))
    parts = criterion_parts(leaky, BALANCED, sweep(), resamples=RESAMPLES)
    assert parts[0].verdict == "does not hold"
    assert parts[0].low == pytest.approx(0.2)
    assert decide(parts) == "does not hold"


def test_criterion_does_not_hold_when_m_ranks_settings_against_accuracy():
    parts = criterion_parts(COLLAPSED, BALANCED, sweep(reverse=True), resamples=RESAMPLES)
    assert parts[2].estimate == pytest.approx(-1.0)
    assert parts[2].verdict == "does not hold"
    assert decide(parts) == "does not hold"


def test_criterion_is_inconclusive_when_m_audio_straddles_the_margin():
    # 40 items: half with no audio effect, half with some. Pooled m_audio is
    # 0.055 / 1.055 = 0.052, and 40 items cannot tell it from 0.05.
    d = np.array([[1.0, 0.0], [1.0, 0.11]] * 20)
    parts = criterion_parts(Items(d), BALANCED, sweep(), resamples=RESAMPLES)
    assert parts[0].estimate == pytest.approx(0.055 / 1.055)
    assert parts[0].low < 0.05 < parts[0].high
    assert parts[0].verdict == "inconclusive"
    assert decide(parts) == "inconclusive"


def test_ranking_is_inconclusive_when_two_settings_nearly_tie_in_accuracy():
    # Four settings; the middle two differ by two test items in accuracy, so resampled
    # items swap their order often. One swap among four settings gives ρ = 0.8, which
    # does not clear the margin: the interval reaches 0.8 although the estimate is 1.
    settings = sweep()[1:]
    settings[1] = Items(shares(3, 3), hits(0.5), hits(0.49, last=True))
    settings[2] = Items(shares(2, 4), hits(0.5), hits(0.5, last=True))
    parts = criterion_parts(COLLAPSED, BALANCED, settings, resamples=RESAMPLES)
    assert parts[2].estimate == pytest.approx(1.0)
    assert parts[2].low == pytest.approx(0.8)
    assert parts[2].verdict == "inconclusive"
    assert decide(parts) == "inconclusive"


def setting(name: str, val: tuple[float, float], test: tuple[float, float]) -> Setting:
    """A setting recorded from hand-made metrics.json contents of its unimodal models."""
    s = Setting(name, 0.0, 0.0)
    s.record("image_only", {"test_acc": test[0], "best_val_acc": val[0]})
    s.record("audio_only", {"test_acc": test[1], "best_val_acc": val[1]})
    return s


def test_balanced_setting_is_picked_on_validation_not_test_accuracy():
    by_val = setting("closest on validation", val=(0.60, 0.59), test=(0.70, 0.50))
    by_test = setting("closest on test", val=(0.70, 0.50), test=(0.61, 0.60))
    far = setting("far apart", val=(0.90, 0.10), test=(0.90, 0.10))
    assert pick_balanced([by_test, by_val, far]) is by_val


def test_a_unimodal_run_without_validation_accuracy_is_refused():
    with pytest.raises(ValueError, match="best_val_acc"):
        Setting("old run", 0.0, 0.0).record("image_only", {"test_acc": 0.5})


@pytest.mark.parametrize("quick", [False, True])
def test_each_run_is_the_fusion_recipe_plus_named_overrides(quick, monkeypatch, tmp_path):
    from polymodal.analysis.contribution import claim
    from polymodal.train.config import load_config

    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))
    config = claim.experiment("audio_only", 0.5, -10.0, quick).to_dict()
    recipe = load_config(claim.CONFIG).to_dict()
    named = {item.split("=", 1)[0] for item in claim.overrides("audio_only", 0.5, -10.0, quick)}
    assert config["data"]["options"]["image_noise"] == 0.5
    assert config["data"]["options"]["audio_snr_db"] == -10.0
    # Everything the overrides do not name is the recipe's, e.g. occlusion and the optimiser.
    assert (
        config["data"]["options"]["image_occlusion"] == recipe["data"]["options"]["image_occlusion"]
    )
    assert config["optim"] == recipe["optim"] and config["model"]["dim"] == recipe["model"]["dim"]
    expected_trainer = {**recipe["trainer"], "progress_bar": False}
    if quick:  # one epoch fewer, and only through a named override
        assert "trainer.max_epochs" in named
        expected_trainer["max_epochs"] = recipe["trainer"]["max_epochs"] - 1
    assert config["trainer"] == expected_trainer
