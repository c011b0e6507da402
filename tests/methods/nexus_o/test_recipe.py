"""Tests of the stage configs: the packaged YAMLs load, bad ones get one-line errors."""

from __future__ import annotations

import pytest

from polymodal.cli import main
from polymodal.cli.fit import task_kind
from polymodal.errors import ConfigError
from polymodal.methods.nexus_o.recipe import load_stage_config


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_packaged_stage_configs_load_and_chain(stage):
    config = load_stage_config(f"nexus_o_stage{stage}")
    assert config.stage == stage
    assert task_kind(f"configs/nexus_o_stage{stage}.yaml", []) == "omni"
    if stage > 1:
        assert config.init_from == f"runs/nexus_o_stage{stage - 1}"
    assert load_stage_config("nexus_o_stage1").data == config.data  # same spoken data


def test_bad_stage_configs_are_named():
    with pytest.raises(ConfigError, match="stage must be 1, 2 or 3, got 4"):
        load_stage_config("nexus_o_stage1", ["stage=4"])
    with pytest.raises(ConfigError, match="stage 2 needs init_from"):
        load_stage_config("nexus_o_stage2", ['init_from=""'])


def test_fit_of_a_stage_without_its_previous_run_is_one_line(tmp_path, capsys):
    code = main(["fit", "configs/nexus_o_stage2.yaml", f"init_from={tmp_path / 'missing'}"])
    assert code == 2
    err = capsys.readouterr().err
    assert "is not a finished Nexus-O stage run" in err and err.count("\n") == 1
