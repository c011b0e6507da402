import pytest

from polymodal.errors import ConfigError
from polymodal.train.config import load_config, save_config


def write(tmp_path, text: str):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_yaml_and_overrides_fill_typed_sections(tmp_path):
    path = write(tmp_path, "seed: 3\ntrainer:\n  max_epochs: 2\noptim:\n  lr: 1\n")
    config = load_config(path, ["trainer.max_epochs=5", "model.fusion=late", "data.options.x=0.5"])
    assert config.seed == 3
    assert config.trainer.max_epochs == 5
    assert config.optim.lr == 1.0 and isinstance(config.optim.lr, float)
    assert config.model.fusion == "late"
    assert config.data.options == {"x": 0.5}


def test_unknown_key_is_named_with_a_suggestion(tmp_path):
    path = write(tmp_path, "trainer:\n  max_epoch: 2\n")
    with pytest.raises(
        ConfigError, match=r"unknown config key 'trainer.max_epoch'; did you mean 'max_epochs'"
    ):
        load_config(path)


def test_wrong_type_and_malformed_yaml_are_reported(tmp_path):
    with pytest.raises(ConfigError, match=r"'trainer.max_epochs' expects int, got 'ten'"):
        load_config(write(tmp_path, "trainer:\n  max_epochs: ten\n"))
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(write(tmp_path, "trainer: [unclosed\n"))
    with pytest.raises(ConfigError, match="must look like section.key=value"):
        load_config(None, ["trainer.max_epochs"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_saved_config_loads_back_identically(tmp_path):
    config = load_config(None, ["seed=7", "trainer.devices=2"])
    save_config(config, tmp_path / "saved.yaml")
    assert load_config(tmp_path / "saved.yaml") == config


def test_shipped_config_parses():
    from pathlib import Path

    config = load_config(Path(__file__).resolve().parents[2] / "configs" / "fusion_av_digits.yaml")
    assert config.data.name == "av_digits"


def test_bare_name_loads_the_packaged_yaml(monkeypatch, tmp_path):
    from pathlib import Path

    from polymodal.train.config import PACKAGED

    monkeypatch.chdir(tmp_path)  # no configs/ folder here: the name must resolve in the package
    checkout = Path(__file__).resolve().parents[2] / "configs" / "subtype_fusion.yaml"
    assert load_config("subtype_fusion") == load_config(checkout)
    assert load_config("subtype_fusion.yaml", ["seed=3"]).seed == 3
    assert (PACKAGED / "fusion_av_digits.yaml").is_file()


def test_unknown_bare_name_lists_the_packaged_configs(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="available: .*fusion_av_digits.*subtype_fusion"):
        load_config("fusion_av_digit")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "runs" / "fusion_av_digits.yaml")  # a path is never a name


def test_auto_picks_cuda_only_when_torch_sees_a_gpu(monkeypatch):
    import torch

    from polymodal.train.config import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu" and resolve_device("cpu") == "cpu"
    with pytest.raises(ConfigError, match="device cuda asked for, but this machine has no GPU"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="'tpu' is not one of auto, cpu, cuda"):
        resolve_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda" and resolve_device("cuda") == "cuda"


def test_on_device_sets_the_accelerator_on_a_copy():
    from polymodal.train.config import on_device

    config = load_config(None, ["trainer.max_epochs=2"])
    gpu = on_device(config, "cuda")
    assert gpu.trainer.accelerator == "gpu" and gpu.trainer.max_epochs == 2
    assert config.trainer.accelerator == "cpu"  # the original is left alone
    assert on_device(gpu, "cpu").trainer.accelerator == "cpu"


def test_modality_dropout_is_read_and_checked_against_the_model_modalities():
    config = load_config(None, ["model.modality_dropout={image: 0.3, audio: 0.2}"])
    assert config.model.modality_dropout == {"image": 0.3, "audio": 0.2}
    with pytest.raises(ConfigError, match="model.modality_dropout.depth"):
        load_config(None, ["model.modality_dropout={depth: 0.3}"])
    with pytest.raises(ConfigError, match=r"must lie in \[0, 1\)"):
        load_config(None, ["model.modality_dropout={image: 1}"])


def test_config_without_modality_dropout_keeps_its_dict(tmp_path):
    # Off by default, and left out of to_dict so that cache-key params stay as they were.
    assert "modality_dropout" not in load_config(None).to_dict()["model"]
    config = load_config(None, ["model.modality_dropout={audio: 0.4}"])
    assert config.to_dict()["model"]["modality_dropout"] == {"audio": 0.4}
    save_config(config, tmp_path / "saved.yaml")
    assert load_config(tmp_path / "saved.yaml") == config
