import numpy as np
import pytest

from polymodal.bench.verdict import decide
from polymodal.methods.abn_blip import claim


def truth_and_predictions(errors_ours: float, errors_generic: float, n: int = 300):
    rng = np.random.default_rng(0)
    truth = (rng.random((n, 16)) < 0.2).astype(np.float32)

    def noisy(rate: float, seed: int) -> np.ndarray:
        flip = np.random.default_rng(seed).random(truth.shape) < rate
        return np.where(flip, 1 - truth, truth)

    ours = [noisy(errors_ours, s) for s in (1, 2, 3)]
    generic = [noisy(errors_generic, s) for s in (4, 5, 6)]
    return truth, ours, generic


@pytest.mark.parametrize(
    ("errors", "verdict"),
    [((0.05, 0.2), "holds"), ((0.2, 0.05), "does not hold")],
)
def test_the_verdict_of_hand_made_findings(errors, verdict):
    truth, ours, generic = truth_and_predictions(*errors)
    parts = claim.criterion_parts(ours, generic, truth, resamples=200)
    assert decide(parts) == verdict


def test_identical_models_are_inconclusive():
    truth, ours, _ = truth_and_predictions(0.1, 0.1)
    parts = claim.criterion_parts(ours, ours, truth, resamples=200)
    assert parts[0].estimate == 0 and decide(parts) == "inconclusive"


def test_both_report_models_share_the_encoder_data_and_schedule():
    ours = claim.report_config(claim.OURS, 1, quick=True)
    generic = claim.report_config(claim.GENERIC, 1, quick=True)
    assert ours.model.init_from == generic.model.init_from == claim.encoder_config(True).out_dir
    assert (
        ours.data == generic.data
        and ours.trainer == generic.trainer
        and ours.optim == generic.optim
    )
    assert ours.model.options["per_abnormality"] and not generic.model.options["per_abnormality"]
