"""Tests of the vision taps on tiny random Hugging Face ViT, CLIP and DINOv2 models."""

from collections.abc import Callable

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from polymodal.errors import ConfigError
from polymodal.hf.vision_taps import VisionTaps, encoder_layers

SIZES = {
    "hidden_size": 16,
    "num_hidden_layers": 3,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "image_size": 8,
    "patch_size": 4,
    "num_channels": 3,
}


def _vit() -> nn.Module:
    from transformers import ViTConfig, ViTModel

    return ViTModel(ViTConfig(**SIZES), add_pooling_layer=False)


def _clip() -> nn.Module:
    from transformers import CLIPVisionConfig, CLIPVisionModel

    return CLIPVisionModel(CLIPVisionConfig(**SIZES))


def _dinov2() -> nn.Module:
    from transformers import Dinov2Config, Dinov2Model

    return Dinov2Model(Dinov2Config(**SIZES))


BUILDERS: dict[str, Callable[[], nn.Module]] = {"vit": _vit, "clip": _clip, "dinov2": _dinov2}


def _model(name: str) -> nn.Module:
    torch.manual_seed(0)
    return BUILDERS[name]().eval()


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_taps_equal_output_hidden_states(name: str) -> None:
    model = _model(name)
    pixels = torch.randn(2, 3, 8, 8)
    want = model(pixel_values=pixels, output_hidden_states=True).hidden_states
    with VisionTaps(model) as taps:
        model(pixel_values=pixels)
    assert len(taps.hidden_states) == 4  # embeddings + 3 layers
    for got, expected in zip(taps.hidden_states, want, strict=True):
        assert got.shape == (2, 5, 16)  # CLS + (8 / 4)^2 patches
        assert_close(got, expected)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_zero_hook_is_identity(name: str) -> None:
    model = _model(name)
    pixels = torch.randn(2, 3, 8, 8)
    want = model(pixel_values=pixels).last_hidden_state
    seen: list[int] = []

    def zero(i: int, t: torch.Tensor) -> torch.Tensor:
        seen.append(i)
        return t + torch.zeros_like(t)

    with VisionTaps(model, hook=zero):
        got = model(pixel_values=pixels).last_hidden_state
    assert seen == [0, 1, 2]
    assert_close(got, want)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_hook_on_layer_one_changes_only_later_outputs(name: str) -> None:
    model = _model(name)
    pixels = torch.randn(2, 3, 8, 8)
    with VisionTaps(model) as plain:
        model(pixel_values=pixels)

    def shift(i: int, t: torch.Tensor) -> torch.Tensor:
        return t + 1.0 if i == 1 else t

    with VisionTaps(model, hook=shift) as hooked:
        model(pixel_values=pixels)
    # [0] embeddings, [1] output of layer 0: both before the hook
    for k in (0, 1):
        assert_close(hooked.hidden_states[k], plain.hidden_states[k])
    for k in (2, 3):
        assert not torch.allclose(hooked.hidden_states[k], plain.hidden_states[k])


def test_hook_may_add_prompt_tokens() -> None:
    model = _model("vit")
    pixels = torch.randn(2, 3, 8, 8)
    prompts = torch.randn(3, 2, 16)  # P = 2 prompts per layer

    def deep_prompts(i: int, t: torch.Tensor) -> torch.Tensor:
        rest = t[:, 1:] if i == 0 else t[:, 3:]  # drop the previous layer's prompts
        return torch.cat([t[:, :1], prompts[i].expand(t.shape[0], -1, -1), rest], dim=1)

    with VisionTaps(model, hook=deep_prompts) as taps:
        out = model(pixel_values=pixels).last_hidden_state
    assert [h.shape[1] for h in taps.hidden_states] == [5, 7, 7, 7]
    assert out.shape == (2, 7, 16)


def test_hooks_are_removed_on_exit() -> None:
    model = _model("clip")
    pixels = torch.randn(1, 3, 8, 8)
    want = model(pixel_values=pixels).last_hidden_state
    with VisionTaps(model, hook=lambda i, t: t + 1.0) as taps:
        model(pixel_values=pixels)
    got = model(pixel_values=pixels).last_hidden_state
    assert_close(got, want)
    assert len(taps.hidden_states) == 4  # the call after the block recorded nothing
    assert all(not layer._forward_pre_hooks for layer in encoder_layers(model))


def test_model_without_encoder_layers_is_refused() -> None:
    with pytest.raises(ConfigError, match="Linear has none of the encoder layer lists"):
        encoder_layers(nn.Linear(2, 2))
