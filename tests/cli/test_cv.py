"""``polymodal cv`` end to end on a tiny Histo-Omics cohort."""

import json

import numpy as np
import pytest
import torch

import polymodal.data.synth.histo_omics  # noqa: F401  (registers histo_omics)
from polymodal.cli import main
from polymodal.errors import ConfigError
from polymodal.train.config import load_config
from polymodal.train.kfold import classification_metrics, cross_validate, pool_dataset, predict
from polymodal.train.recipe import load_trained


@pytest.mark.slow
def test_cv_command_holds_out_every_patient_once_and_resumes(
    tmp_path, monkeypatch, capsys, tiny_subtype
):
    CONFIG, TINY = tiny_subtype
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path / "home"))
    out = tmp_path / "cv"
    args = ["cv", CONFIG, *TINY, f"out_dir={out}", "--folds", "3", "--val-fraction", "0.25"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "macro_f1" in printed and "mean" in printed

    summary = json.loads((out / "cv.json").read_text())
    assert [f["fold"] for f in summary["folds"]] == [0, 1, 2]
    assert sum(f["test_size"] for f in summary["folds"]) == 24
    for metric in ("accuracy", "macro_f1", "mcc", "pr_auc"):
        values = [f[metric] for f in summary["folds"]]
        assert summary["mean"][metric] == pytest.approx(np.mean(values))
    folds = json.loads((out / "folds.json").read_text())
    assert sorted(np.bincount(folds["fold"]).tolist()) == [8, 8, 8]

    # A fold folder is a run folder: its model reproduces the fold's metrics.
    config, model, _ = load_trained(out / "fold_1")
    held_out = json.loads((out / "fold_1" / "fold.json").read_text())["test"]
    pool = pool_dataset(config)
    subset = torch.utils.data.Subset(pool.dataset, held_out)
    probs, labels = predict(model, subset)
    for name, value in classification_metrics(probs, labels, 4).items():
        assert value == pytest.approx(summary["folds"][1][name], abs=1e-6)

    with pytest.raises(ConfigError, match="already holds a CV run"):
        cross_validate(load_config(CONFIG, [*TINY, f"out_dir={out}"]), folds=3)
    again = cross_validate(load_config(CONFIG, [*TINY, f"out_dir={out}"]), folds=3, resume=True)
    assert again.mean == pytest.approx(summary["mean"])


def test_overrides_after_options_are_taken(tmp_path, capsys):
    missing = tmp_path / "missing.yaml"
    assert main(["cv", str(missing), "--folds", "3", "trainer.max_epochs=1"]) == 2
    assert f"config file {missing} does not exist" in capsys.readouterr().err
