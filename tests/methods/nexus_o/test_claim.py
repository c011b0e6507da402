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
