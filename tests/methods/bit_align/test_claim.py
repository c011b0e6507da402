import numpy as np
import pytest

from polymodal.bench.claims import Context
from polymodal.bench.registry import all_checks
from polymodal.bench.verdict import decide
from polymodal.methods.bit_align.claim import DUAL, OURS, RGB, criterion_parts, ratio_statistic


def _kld(center: float, seeds: int = 3, n: int = 200) -> list[np.ndarray]:
    rng = np.random.default_rng(int(center * 100))
    return [center + 0.05 * rng.standard_normal(n) for _ in range(seeds)]


def test_clearly_better_than_rgb_and_as_good_as_dual_at_few_parameters_holds():
    kld = {OURS: _kld(1.0), RGB: _kld(1.5), DUAL: _kld(1.0)}
    parts = criterion_parts(kld, {OURS: 10_000, DUAL: 200_000})
    assert [p.verdict for p in parts] == ["holds"] * 3
    assert parts[2].estimate == 0.05


def test_worse_than_the_dual_encoder_by_more_than_five_percent_does_not_hold():
    kld = {OURS: _kld(1.2), RGB: _kld(1.5), DUAL: _kld(1.0)}
    parts = criterion_parts(kld, {OURS: 10_000, DUAL: 200_000})
    assert parts[1].verdict == "does not hold" and decide(parts) == "does not hold"


def test_too_many_added_parameters_do_not_hold_whatever_the_kld():
    kld = {OURS: _kld(1.0), RGB: _kld(1.5), DUAL: _kld(1.0)}
    parts = criterion_parts(kld, {OURS: 40_000, DUAL: 200_000})
    assert parts[2].verdict == "does not hold"


def test_a_difference_inside_the_noise_is_inconclusive():
    rng = np.random.default_rng(0)
    ours = [1.0 + rng.standard_normal(30) for _ in range(3)]
    rgb = [1.0 + rng.standard_normal(30) for _ in range(3)]
    parts = criterion_parts({OURS: ours, RGB: rgb, DUAL: ours}, {OURS: 1, DUAL: 100})
    assert parts[0].verdict == "inconclusive"


def test_the_ratio_is_the_mean_over_seeds_of_mean_kld_ratios():
    ours = [np.array([1.0, 3.0]), np.array([2.0, 2.0])]
    dual = [np.array([2.0, 2.0]), np.array([1.0, 3.0])]
    statistic = ratio_statistic(ours, dual)
    assert statistic([np.arange(2), np.arange(2)]) == 0.0
    assert statistic([np.array([1, 1]), np.array([0, 0])]) == np.mean([3 / 2 - 1, 2 / 1 - 1])


def test_the_check_is_registered_with_its_criterion_and_direction():
    check = all_checks()["bit_align"]
    assert not check.higher_is_better and check.unit == "KLD"
    assert "0.05" in check.criterion
    assert "15 %" in check.criterion and not check.default


@pytest.mark.slow
def test_the_quick_check_trains_every_model_and_reports_parameters(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path / "home"))
    outcome = all_checks()["bit_align"].run(Context(tmp_path / "out", quick=True, progress=False))
    assert set(outcome.baselines) == {"rgb", "dual", "bpm", "early"}
    assert len(outcome.parts) == 3 and outcome.seeds == [0]
    rows = {row[0].split(" ")[0]: row for row in outcome.tables[0].rows}
    total, trainable, added = (int(rows["BiT-Align"][i].replace(",", "")) for i in (5, 6, 7))
    assert 0 < added < trainable < total
    assert all(path.is_file() for path in outcome.plots)
