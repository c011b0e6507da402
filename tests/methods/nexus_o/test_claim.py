"""Tests of the nexus_o check: registered with its criterion, sizes as the configs say."""

from __future__ import annotations

from polymodal.bench.registry import all_checks
from polymodal.methods.nexus_o import claim
from polymodal.methods.nexus_o.recipe import load_stage_config


def test_check_is_registered_with_every_part_stated():
    check = all_checks()["nexus_o"]
    for words in ("−3 pts", "−1 pt", "ρ(severity, WER) ≥ 0.8", "80 %"):
        assert words in check.criterion
    assert (claim.SPOKEN_MARGIN, claim.TYPED_MARGIN, claim.RHO_MIN, claim.SPEECH_RATIO) == (
        -0.03,
        -0.01,
        0.8,
        0.8,
    )


def test_full_size_is_the_recipe_configs():
    full = claim.SIZES["full"]
    for stage in (1, 2, 3):
        config = load_stage_config(f"nexus_o_stage{stage}")
        assert config.epochs == full["epochs"][stage]
        assert {k: config.data[k] for k in full["data"]} == full["data"]


def test_the_base_vlm_is_the_bench_vlm_with_question_loss():
    from polymodal.bench.vlm import vlm_config
    from polymodal.train.vlm import load_vlm_config

    for quick in (True, False):
        base, bench = claim.base_config(quick), vlm_config(quick)
        assert base.task.options == {"question_loss": True}
        assert bench.task.options == {}  # the other checks' VLM is untouched
        assert base.model == bench.model and base.data == bench.data
    stage1 = load_stage_config("nexus_o_stage1")
    assert load_vlm_config(None, stage1.base_overrides).task.options == {"question_loss": True}
