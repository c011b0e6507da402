"""The ``fusion`` check: its config is the recipe YAML plus named overrides, and its
criterion reads per-item test correctness of models chosen on validation."""

import numpy as np
import pytest
import yaml

from polymodal.bench import fusion
from polymodal.train.config import PACKAGED


def flat(values: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in values.items():
        if isinstance(value, dict) and value:
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.mark.parametrize("quick", [False, True])
def test_bench_config_is_the_yaml_plus_the_named_overrides(quick, monkeypatch, tmp_path):
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))
    recipe = flat(yaml.safe_load((PACKAGED / "fusion_av_digits.yaml").read_text()))
    bench = flat(fusion.experiment("late", 2, quick).to_dict())
    named = {item.split("=", 1)[0] for item in fusion.overrides("late", 2, quick)}
    changed = {key for key in bench if recipe.get(key, "absent") != bench[key]}
    # only the named keys differ (out_dir: the cache folder); dataclass defaults the YAML
    # leaves out (e.g. trainer.log_every_n_steps) are the same for both
    assert changed - {k for k in bench if k not in recipe} <= named | {"out_dir"}
    assert {"model.fusion", "seed"} <= changed
    assert bench["trainer.max_epochs"] == (3 if quick else recipe["trainer.max_epochs"])
    assert bench["trainer.patience"] == recipe["trainer.patience"]


def test_bench_and_yaml_agree_on_the_recipe_four_epochs_without_early_stopping():
    config = fusion.experiment("early", 0, quick=False)
    assert (config.trainer.max_epochs, config.trainer.patience) == (4, None)


def scores(p_right: float, n: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(n) < p_right).astype(float)


def inputs(fused: float, single: float) -> tuple[dict, dict]:
    """Per-item correctness for 3 seeds × 400 items; late/audio_only best on validation."""
    correct = {
        "late": [scores(fused, 400, s) for s in range(3)],
        "audio_only": [scores(single, 400, 10 + s) for s in range(3)],
        # best on test, worst on validation: must never be chosen
        "early": [np.ones(400)] * 3,
        "cross_attention": [np.zeros(400)] * 3,
        "image_only": [np.ones(400)] * 3,
    }
    val = {"late": [0.9] * 3, "early": [0.5] * 3, "cross_attention": [0.8] * 3}
    val |= {"audio_only": [0.7] * 3, "image_only": [0.2] * 3}
    return correct, val


def test_criterion_holds_when_the_validation_chosen_fusion_is_clearly_better():
    (part,) = fusion.criterion_parts(*inputs(0.95, 0.80), resamples=500)
    assert "(late)" in part.name and "(audio_only)" in part.name
    assert part.estimate == pytest.approx(0.15, abs=0.03)
    assert part.verdict == "holds"


def test_criterion_does_not_hold_when_the_chosen_fusion_is_clearly_worse():
    (part,) = fusion.criterion_parts(*inputs(0.70, 0.85), resamples=500)
    assert part.verdict == "does not hold"


def test_criterion_is_inconclusive_for_a_difference_inside_the_noise():
    correct, val = inputs(0.8, 0.8)
    correct["late"] = [a.copy() for a in correct["audio_only"]]
    correct["late"][0][:3] = 1 - correct["late"][0][:3]  # a few items flip either way
    (part,) = fusion.criterion_parts(correct, val, resamples=500)
    assert part.low < 0 < part.high and part.verdict == "inconclusive"


def test_av_mnist_runs_point_the_recipe_at_the_data_folder(tmp_path):
    config = fusion.experiment("early", 1, False, fusion.AV_MNIST, tmp_path)
    options = config.data.options
    assert config.data.name == "av_mnist" and options["image_energy"] == 0.25
    assert options["mnist_folder"] == str(tmp_path / "mnist-t10k")
    assert options["fsdd_root"] == str(tmp_path / "fsdd" / "recordings")
    assert "bench/fusion_av_mnist" in config.out_dir


def test_the_dropout_run_differs_from_the_plain_one_only_by_its_rates(monkeypatch, tmp_path):
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))
    extra = ["model.modality_dropout={image: 0.3, audio: 0.3}"]
    plain = flat(fusion.experiment("late", 1, quick=True).to_dict())
    dropout = flat(fusion.experiment("late", 1, quick=True, extra=extra).to_dict())
    assert {k for k in dropout if plain.get(k) != dropout[k]} == {
        "model.modality_dropout.image",
        "model.modality_dropout.audio",
        "out_dir",
    }


def test_a_cuda_run_is_its_own_cache_entry_and_a_cpu_run_keeps_its_key():
    cpu = fusion.experiment("late", 0, quick=True)
    cuda = fusion.experiment("late", 0, quick=True, device="cuda")
    assert cpu.trainer.accelerator == "cpu" and cuda.trainer.accelerator == "gpu"
    assert cpu.out_dir != cuda.out_dir
    assert fusion.experiment("late", 0, quick=True, device="cpu").out_dir == cpu.out_dir
