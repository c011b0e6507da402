import numpy as np
import pytest

from polymodal.bench.verdict import decide
from polymodal.methods.fratmae import claim
from polymodal.methods.fratmae import experiment as ex


def scores(ours: float, single: float, scratch: float, spread: float = 0.01, n: int = 60):
    """Per-case scores of three seeds around the given means, for every task and share:
    a per-case difficulty shared by the initialisations (paired) plus ``spread`` noise."""
    rng = np.random.default_rng(0)
    out = {}
    for task in ex.TASKS:
        for f in ex.FRACTIONS:
            base = rng.normal(0, 0.05, (3, n))  # shared per-case difficulty: paired
            for init, mean in ((claim.OURS, ours), (claim.SINGLE, single), (ex.SCRATCH, scratch)):
                out[(task, init, f)] = list(mean + base + rng.normal(0, spread, (3, n)))
    return out


@pytest.mark.parametrize(
    ("means", "verdict"),
    [
        ((0.6, 0.5, 0.4, 0.01), "holds"),
        ((0.5, 0.6, 0.4, 0.01), "does not hold"),  # FratMAE worse than the single MAEs
        ((None, 0.5, 0.4, 0.01), "inconclusive"),  # FratMAE scores exactly as the MAEs
    ],
)
def test_the_verdict_of_hand_made_scores(means, verdict):
    ours, *rest = means
    made = scores(ours if ours is not None else rest[0], *rest)
    if ours is None:
        for task, init, f in list(made):
            if init == claim.OURS:
                made[(task, init, f)] = made[(task, claim.SINGLE, f)]
    parts = claim.criterion_parts(made, resamples=300)
    assert len(parts) == 8  # 2 label shares x 2 metrics x 2 comparisons
    assert decide(parts) == verdict


def test_every_initialisation_gets_the_same_data_and_schedule():
    budget = ex.QUICK
    for fraction in ex.FRACTIONS:
        configs = [ex.finetune_config("segment", i, fraction, 0, budget) for i in claim.MAIN]
        assert len({c.trainer.max_epochs for c in configs}) == 1
        assert len({c.trainer.val_every_n_epochs for c in configs}) == 1
        assert len({str(c.data) for c in configs}) == 1
        assert len({str(c.optim) for c in configs}) == 1
        assert configs[0].data.options["train_fraction"] == fraction
        assert configs[-1].model.init_from is None  # scratch
        assert configs[0].model.init_from == ex.pretrain_config("fratmae", budget).out_dir
        assert len({c.out_dir for c in configs}) == 3


def test_the_full_runs_validate_five_times_the_last_after_the_last_epoch():
    for fraction, epochs in ex.FULL.finetune_epochs.items():
        every = ex.finetune_config("segment", "scratch", fraction, 0, ex.FULL).trainer
        assert every.max_epochs == epochs
        assert epochs % every.val_every_n_epochs == 0
        assert epochs // every.val_every_n_epochs >= ex.FULL.validations
    assert [ex.FULL.val_every(f) for f in ex.FRACTIONS] == [6, 4, 1]


def test_a_linear_probe_freezes_both_encoders():
    config = ex.finetune_config("classify", "fratmae", 0.1, 0, ex.QUICK, linear_probe=True)
    assert config.model.freeze == ["encoders.*"]
    assert ex.finetune_config("classify", "fratmae", 0.1, 0, ex.QUICK).model.freeze == []


def test_single_modality_maes_are_fratmae_without_its_couplings():
    config = ex.pretrain_config("single_mae", ex.QUICK)
    assert config.model.options["cross_attention"] is False
    assert config.model.options["text_weight"] == 0
