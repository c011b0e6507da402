"""The ``subtype_fusion`` check: config = recipe YAML + named overrides; criterion parts
on pooled out-of-fold predictions (bootstrap over patients of macro-F1 differences)."""

import numpy as np
import pytest
import torch
import yaml
from torchmetrics.functional.classification import multiclass_f1_score

from polymodal.methods.subtype_fusion import claim
from polymodal.train.config import PACKAGED


def flat(values: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in values.items():
        if isinstance(value, dict) and value:
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.mark.parametrize("model", ["concat", claim.ONE_TOKEN])
@pytest.mark.parametrize("quick", [False, True])
def test_bench_config_is_the_yaml_plus_the_named_overrides(model, quick, monkeypatch, tmp_path):
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))
    recipe = flat(yaml.safe_load((PACKAGED / "subtype_fusion.yaml").read_text()))
    bench = flat(claim.experiment(model, quick).to_dict())
    named = {item.split("=", 1)[0] for item in claim.overrides(model, quick)}
    changed = {key for key in recipe if recipe[key] != bench[key]}
    assert changed <= named | {"out_dir"}
    assert "model.fusion" in named and "seed" in named


def test_one_token_row_is_cross_attention_with_a_single_gene_token(monkeypatch, tmp_path):
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))
    paper = claim.experiment(claim.ONE_TOKEN, quick=False).model
    ours = claim.experiment(claim.OURS, quick=False).model
    assert paper.fusion == ours.fusion == "cross_attention"
    assert (paper.modalities["genes"]["tokens"], ours.modalities["genes"]["tokens"]) == (1, 8)


def test_macro_f1_matches_torchmetrics_including_absent_classes():
    rng = np.random.default_rng(0)
    label, pred = rng.integers(0, 3, 40), rng.integers(0, 3, 40)  # class 3 never occurs
    expected = multiclass_f1_score(torch.from_numpy(pred), torch.from_numpy(label), 4, "macro")
    assert claim.macro_f1(pred, label, 4) == pytest.approx(float(expected))


def cohort(ours_right: float, rng_seed: int = 0) -> tuple[dict, np.ndarray]:
    """400 patients, 4 classes; each model right with a given chance, else off by one."""
    rng = np.random.default_rng(rng_seed)
    label = np.arange(400) % 4

    def model(p_right: float) -> np.ndarray:
        right = rng.random(400) < p_right
        return np.where(right, label, (label + 1) % 4)

    preds = {"tiles_only": model(0.6), "genes_only": model(0.7), "concat": model(0.8)}
    preds["cross_attention"] = model(ours_right)
    return preds, label


def test_criterion_holds_when_cross_attention_beats_singles_and_matches_concat():
    parts = claim.criterion_parts(*cohort(0.85), 4, resamples=400)
    assert [p.verdict for p in parts] == ["holds"] * 3
    assert parts[2].margin == -claim.MATCH_TOLERANCE


def test_criterion_does_not_hold_when_cross_attention_trails_concat_clearly():
    parts = claim.criterion_parts(*cohort(0.65), 4, resamples=400)
    assert parts[2].verdict == "does not hold"


def test_criterion_is_inconclusive_when_the_concat_gap_is_inside_the_noise():
    preds, label = cohort(0.85)
    # concat's predictions with 8 of its errors fixed and 14 of its hits broken:
    # about -0.015 macro-F1, close to the -0.02 tolerance for 400 patients
    preds["cross_attention"] = preds["concat"].copy()
    wrong = np.flatnonzero(preds["concat"] != label)[:8]
    preds["cross_attention"][wrong] = label[wrong]
    right = np.flatnonzero(preds["concat"] == label)[:14]
    preds["cross_attention"][right] = (label[right] + 1) % 4
    parts = claim.criterion_parts(preds, label, 4, resamples=400)
    concat = parts[2]
    assert concat.low < -claim.MATCH_TOLERANCE < concat.high
    assert concat.verdict == "inconclusive"
