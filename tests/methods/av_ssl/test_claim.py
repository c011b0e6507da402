"""The av_ssl criterion on hand-made per-clip scores: each verdict."""

import numpy as np

from polymodal.bench.verdict import decide
from polymodal.methods.av_ssl import experiment as ex
from polymodal.methods.av_ssl.claim import RIVALS, criterion_parts


def _scores(ours: float, rivals: float, n: int = 200) -> dict:
    def seeds(p: float) -> list[np.ndarray]:
        return [(np.arange(n) < p * n).astype(float) for _ in range(3)]

    scores = {}
    for k in ex.LABELS_PER_CLASS:
        scores[(ex.OURS, k)] = seeds(ours)
        for rival in RIVALS:
            scores[(rival, k)] = seeds(rivals)
    return scores


def test_six_parts_name_every_rival_at_both_label_counts() -> None:
    parts = criterion_parts(_scores(0.6, 0.4), resamples=200)
    assert len(parts) == 6
    assert all(p.margin == 0.0 for p in parts)
    assert parts[2].name == "av_ssl_guided_mix − av_ssl_box_mix, 1 label(s)/class"
    np.testing.assert_allclose([p.estimate for p in parts], 0.2)


def test_verdicts_follow_the_intervals() -> None:
    assert decide(criterion_parts(_scores(0.6, 0.4), 200)) == "holds"
    assert decide(criterion_parts(_scores(0.3, 0.5), 200)) == "does not hold"
    assert decide(criterion_parts(_scores(0.5, 0.5), 200)) == "inconclusive"


def test_every_variant_runs_the_same_steps_and_data() -> None:
    configs = [ex.run_config(m, 1, 0, ex.QUICK) for m in ex.VARIANTS]
    assert len({c.out_dir for c in configs}) == len(configs)
    for config in configs:
        assert config.data == configs[0].data
        assert config.trainer.max_epochs == ex.QUICK.epochs
        assert config.optim == configs[0].optim
        assert config.task.kind == "semi_supervised"
    supervised = ex.run_config("supervised_av", 1, 0, ex.QUICK)
    assert supervised.task.options["unlabelled_weight"] == 0
    assert supervised.model.options["contrastive_weight"] == 0
