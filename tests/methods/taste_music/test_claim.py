import numpy as np
import pytest

from polymodal.bench.verdict import Part, decide
from polymodal.methods.taste_music import claim, experiment


def part(low: float, high: float) -> Part:
    return Part("taste", (low + high) / 2, low, high)


@pytest.mark.parametrize(
    ("intervals", "verdict"),
    [
        ([(0.1, 0.3), (0.1, 0.3), (0.05, 0.2), (-0.4, -0.1)], "holds"),  # 3 of 4 above 0
        ([(0.1, 0.3), (0.1, 0.3), (-0.1, 0.2), (-0.4, -0.1)], "inconclusive"),
        ([(0.1, 0.3), (0.1, 0.3), (-0.3, -0.1), (-0.4, -0.1)], "does not hold"),
    ],
)
def test_three_of_four_tastes_decide(intervals, verdict):
    counted = claim.count_part([part(*i) for i in intervals])
    assert decide([counted]) == verdict


def test_taste_parts_pair_clips_by_seed():
    rng = np.random.default_rng(0)
    better = [np.ones(50), np.ones(50)]
    chance = [(rng.random(50) < 0.25).astype(float) for _ in range(2)]
    parts = claim.taste_parts(
        {"sweet": better, "sour": chance}, {"sweet": chance, "sour": chance}, 200
    )
    assert parts[0].verdict == "holds"
    assert parts[1].estimate == 0 and parts[1].verdict == "inconclusive"


def test_every_seed_fine_tunes_the_same_base_with_the_same_budget():
    base = experiment.pretrain_config(quick=True)
    tuned = [experiment.finetune_config(s, quick=True) for s in (0, 1)]
    assert all(t.model.init_from == base.out_dir for t in tuned)
    assert tuned[0].trainer == tuned[1].trainer and tuned[0].data == tuned[1].data
    assert tuned[0].out_dir != tuned[1].out_dir


def test_prompts_cycle_through_unseen_phrasings():
    assert experiment.prompts_for("bitter", 4) == [
        "bitter music", "a melody as bitter as coffee", "bitter and dark", "bitter music",
    ]  # fmt: skip
