"""Tests of fine-tuning set-up: prefix renaming, loading mapped weights, freezing."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from polymodal.errors import ConfigError
from polymodal.train.init import freeze, init_from, rename

MAP = {"encoder.": "encoders.image."}


class _Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict({"image": nn.Linear(2, 3)})
        self.head = nn.Linear(3, 2)


def _save(path: Path, **tensors: torch.Tensor) -> Path:
    save_file({k.replace("__", "."): v for k, v in tensors.items()}, str(path))
    return path


def test_rename_replaces_the_longest_matching_prefix_first() -> None:
    keys = dict.fromkeys(["encoder.blocks.0.w", "encoder.norm.w", "head.w"], torch.zeros(1))
    renamed = rename(keys, {"encoder.": "a.", "encoder.blocks.": "b."})
    assert renamed == {
        "b.0.w": ("encoder.blocks.0.w", True),
        "a.norm.w": ("encoder.norm.w", True),
        "head.w": ("head.w", False),
    }


def test_init_from_loads_mapped_and_matching_keys_and_skips_the_rest(tmp_path: Path) -> None:
    w, b, h = torch.full((3, 2), 7.0), torch.full((3,), 8.0), torch.full((2, 3), 9.0)
    source = _save(
        tmp_path / "w.safetensors",
        encoder__weight=w,
        encoder__bias=b,
        head__weight=h,
        head__bias=torch.zeros(5),
        extra__x=torch.zeros(1),
    )
    model = _Model()
    head_bias = model.head.bias.detach().clone()
    done = init_from(model, source, MAP)
    assert done.loaded == ["encoders.image.bias", "encoders.image.weight", "head.weight"]
    assert sorted(done.skipped) == ["extra.x", "head.bias"]  # unknown; another shape
    assert torch.equal(model.encoders.image.weight, w) and torch.equal(model.head.weight, h)
    assert torch.equal(model.encoders.image.bias, b)
    assert torch.equal(model.head.bias, head_bias)


def test_init_from_a_checkpoint_folder_reads_the_model_prefix(tmp_path: Path) -> None:
    (tmp_path / "last.ckpt").mkdir()
    folder = tmp_path / "last.ckpt"
    _save(
        folder / "model.safetensors", model__head__weight=torch.ones(2, 3), teacher__x=torch.ones(1)
    )
    (folder / "state.pt").write_bytes(b"")
    model = _Model()
    assert init_from(model, folder).loaded == ["head.weight"]
    assert torch.equal(model.head.weight, torch.ones(2, 3))


def test_mapped_key_of_another_shape_is_an_error_naming_it(tmp_path: Path) -> None:
    source = _save(tmp_path / "w.safetensors", encoder__weight=torch.zeros(4, 2))
    with pytest.raises(
        ConfigError, match=r"'encoder.weight' \(shape \(4, 2\)\).*has shape \(3, 2\)"
    ):
        init_from(_Model(), source, MAP)


def test_mapped_key_the_model_lacks_is_an_error_naming_it(tmp_path: Path) -> None:
    source = _save(tmp_path / "w.safetensors", encoder__scale=torch.zeros(3))
    with pytest.raises(ConfigError, match=r"'encoders.image.scale', which the model is missing"):
        init_from(_Model(), source, MAP)


def test_nothing_that_fits_is_an_error(tmp_path: Path) -> None:
    source = _save(tmp_path / "w.safetensors", encoder__weight=torch.zeros(3, 2))
    with pytest.raises(ConfigError, match="no key of .* fits the model"):
        init_from(_Model(), source)  # without the map, 'encoder.weight' is not in the model
    with pytest.raises(ConfigError, match="does not exist"):
        init_from(_Model(), tmp_path / "absent")


def test_freeze_turns_off_requires_grad_of_matching_parameters() -> None:
    model = _Model()
    assert freeze(model, ["encoders.image.*"]) == ["encoders.image.weight", "encoders.image.bias"]
    grads = {name: p.requires_grad for name, p in model.named_parameters()}
    assert grads == {
        "encoders.image.weight": False,
        "encoders.image.bias": False,
        "head.weight": True,
        "head.bias": True,
    }


def test_freeze_pattern_that_matches_nothing_is_an_error() -> None:
    model = _Model()
    with pytest.raises(ConfigError, match=r"pattern 'encoder.\*' matches no parameter"):
        freeze(model, ["head.*", "encoder.*"])
    assert all(p.requires_grad for p in model.parameters())  # nothing frozen on error
