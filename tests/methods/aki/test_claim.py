"""The ``aki`` check: equal training budgets for both rules, and its criterion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from polymodal.bench.vlm import vlm_config
from polymodal.data.synth.shapes_vqa import load_shapes_vqa
from polymodal.methods.aki.claim import RULES, SEEDS, criterion_parts, planned_steps, rule_config
from polymodal.train.vlm import steps_per_epoch, training_rows


def _verdict(mma: list[np.ndarray], causal: list[np.ndarray]) -> str:
    from polymodal.bench.verdict import decide

    return decide(criterion_parts(mma, causal))


def test_both_rules_train_on_the_same_rows_and_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))
    base = vlm_config(quick=True)
    train = load_shapes_vqa("train", train=40, val=4, test=4)  # 10 scenes of 4 questions
    configs = {rule: rule_config(base, rule, seed=3) for rule in RULES}
    rows = {rule: training_rows(train, c) for rule, c in configs.items()}
    assert rows["causal"] is rows["mma"] is train  # one question per row, same order
    steps = {rule: steps_per_epoch(train, c) * c.trainer.max_epochs for rule, c in configs.items()}
    assert steps == {"causal": 1, "mma": 1}  # 40 rows in batches of 64
    # everything but the rule is the same: data, schedule, optimizer, seed, sizes
    as_dicts = {rule: {**c.to_dict(), "attention": None} for rule, c in configs.items()}
    assert as_dicts["causal"] == as_dicts["mma"]


def test_planned_steps_are_equal_and_match_the_recipe_at_both_sizes() -> None:
    for quick in (True, False):
        base = vlm_config(quick)
        causal, mma = (planned_steps(rule_config(base, rule, 0)) for rule in RULES)
        assert causal == mma
    assert planned_steps(rule_config(vlm_config(False), "mma", 0)) == 8 * 1000  # 64,000 / 64
    assert planned_steps(rule_config(vlm_config(True), "mma", 0)) == 32  # ceil(2,000 / 64)
    assert SEEDS == (0, 1, 2, 3, 4)


def test_criterion_holds_when_mma_is_right_more_often_on_every_seed() -> None:
    causal = [np.tile([1.0, 0.0], 100)] * 3  # 50 %
    mma = [np.tile([1.0, 1.0, 1.0, 0.0], 50)] * 3  # 75 % on the same questions
    assert _verdict(mma, causal) == "holds"


def test_criterion_does_not_hold_when_mma_is_worse() -> None:
    causal = [np.tile([1.0, 1.0, 1.0, 0.0], 50)] * 3
    mma = [np.tile([1.0, 0.0], 100)] * 3
    assert _verdict(mma, causal) == "does not hold"


def test_criterion_is_inconclusive_for_a_difference_inside_the_noise() -> None:
    causal = [np.tile([1.0, 0.0], 20)]
    mma = causal[0].copy()
    mma[1] = 1.0  # one question of 40 better: +0.025, interval spans 0
    parts = criterion_parts([mma], causal)
    assert parts[0].estimate == pytest.approx(0.025)
    assert parts[0].low <= 0.0 < parts[0].high and parts[0].verdict == "inconclusive"
