"""k-fold cross-validation: folds, metrics, predictions (the command: tests/cli/test_cv.py)."""

import json

import numpy as np
import pytest
import torch

import polymodal.data.synth.histo_omics  # noqa: F401  (registers histo_omics)
from polymodal.errors import ConfigError
from polymodal.train.config import load_config
from polymodal.train.kfold import (
    Pool,
    carve_validation,
    classification_metrics,
    cross_validate,
    patient_folds,
    pool_dataset,
)
from polymodal.train.predictions import Predictions
from polymodal.train.recipe import resolve_builder


def test_folds_are_stratified_partitions_that_keep_patients_together():
    labels = np.array([0] * 12 + [1] * 6)
    groups = np.repeat(np.arange(9), 2)  # every patient has two samples
    folds = patient_folds(labels, groups, folds=3, seed=0)
    assert sorted(np.concatenate(folds).tolist()) == list(range(18))
    for fold in folds:
        assert np.bincount(labels[fold], minlength=2).tolist() == [4, 2]
        assert set(groups[fold]).isdisjoint(set(groups[np.setdiff1d(np.arange(18), fold)]))


def test_folds_need_enough_patients_per_class():
    with pytest.raises(ConfigError, match="class 1 has 2 patients, fewer than the 3 folds"):
        patient_folds(np.array([0, 0, 0, 1, 1]), np.arange(5), folds=3, seed=0)


def test_validation_is_carved_by_class_from_the_training_pool():
    labels = np.array([0, 1] * 10)
    pool = Pool(dataset=None, labels=labels, groups=np.arange(20), num_classes=2)  # type: ignore[arg-type]
    train, val = carve_validation(pool, np.arange(20), fraction=0.2, seed=0)
    assert len(val) == 4 and np.bincount(labels[val]).tolist() == [2, 2]
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(20))


def test_metrics_match_hand_computed_values():
    labels = torch.tensor([0, 0, 1, 1])
    probs = torch.tensor([[0.9, 0.1], [0.25, 0.75], [0.2, 0.8], [0.3, 0.7]])
    metrics = classification_metrics(probs, labels, num_classes=2)
    # Predictions 0, 1, 1, 1. F1: class 0 = 2/3, class 1 = 4/5. MCC = 2 / sqrt(12).
    # Average precision per class: ranks pos, neg, pos, neg -> 0.5 * 1 + 0.5 * 2/3.
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert metrics["mcc"] == pytest.approx(2 / 12**0.5)
    assert metrics["pr_auc"] == pytest.approx(5 / 6)


def test_builder_paths_are_checked():
    assert resolve_builder("polymodal.methods.subtype_fusion:build_subtype_model")
    with pytest.raises(ConfigError, match="must look like"):
        resolve_builder("build_subtype_model")
    with pytest.raises(ConfigError, match="cannot be imported"):
        resolve_builder("polymodal.methods.subtype_fusion:nothing_here")


@pytest.mark.slow
def test_cv_keeps_pooled_out_of_fold_predictions_with_patient_ids(
    tmp_path, monkeypatch, tiny_subtype
):
    CONFIG, TINY = tiny_subtype
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path / "home"))
    config = load_config(CONFIG, [*TINY, f"out_dir={tmp_path / 'cv'}"])
    result = cross_validate(config, folds=3, val_fraction=0.25, progress=False)
    pool = pool_dataset(config)
    oof = Predictions.load(tmp_path / "cv" / "oof_predictions.safetensors")
    # every pooled sample exactly once, in pooled order, with its own label and patient
    assert oof.index.tolist() == list(range(24))
    assert oof.labels.tolist() == pool.labels.tolist()
    assert oof.ids.tolist() == pool.groups.tolist()
    folds = json.loads((tmp_path / "cv" / "folds.json").read_text())["fold"]
    for fold in result.folds:
        held_out = np.flatnonzero(np.array(folds) == fold.fold)
        assert fold.predictions.index.tolist() == held_out.tolist()
        assert oof.correct()[held_out].mean() == pytest.approx(fold.metrics["accuracy"])
    again = cross_validate(config, folds=3, val_fraction=0.25, resume=True, progress=False)
    torch.testing.assert_close(again.predictions.logits, result.predictions.logits)
