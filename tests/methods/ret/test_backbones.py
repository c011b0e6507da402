import pytest
import torch
from transformers import BertConfig, BertModel, CLIPVisionConfig, CLIPVisionModel

from polymodal.errors import ConfigError
from polymodal.hf.text_encoder import TextEncoder
from polymodal.methods.ret.backbones import (
    ClipLayers,
    FrozenBackbones,
    build_vit,
    load_clip_vision,
    paired_layers,
    pretrain_vit,
)


def tiny_text(layers):
    config = BertConfig(
        vocab_size=50,
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=64,
    )
    return TextEncoder(BertModel(config), tokenizer=None)


def test_paired_layers_are_evenly_spaced_and_end_at_the_last():
    assert paired_layers(12, 6) == [1, 3, 5, 7, 9, 11]
    assert paired_layers(6, 6) == [0, 1, 2, 3, 4, 5]
    assert paired_layers(6, 2) == [2, 5]


def test_backbones_of_different_depths_pair_layers_by_relative_depth():
    backbones = FrozenBackbones(build_vit(), tiny_text(2))
    assert backbones.layers == 2
    assert backbones.vision_layers == [2, 5] and backbones.text_layers == [0, 1]


def test_clip_vision_model_is_tapped_at_every_layer_through_vision_taps(tiny_clip):
    torch.manual_seed(0)
    model = CLIPVisionModel(CLIPVisionConfig(**tiny_clip)).eval()
    layers = ClipLayers(model)
    images = torch.rand(2, 3, 48, 48)  # resized to the model's 32 pixels
    tapped = layers(images)
    assert len(tapped) == 4 and tapped[0].shape == (2, 1 + 16, 32)
    # the taps equal the model's own hidden states on the normalised, resized pixels
    pixels = torch.nn.functional.interpolate(images, size=(32, 32), mode="bilinear")
    own = model(pixel_values=(pixels - layers.mean) / layers.std, output_hidden_states=True)
    for tap, hidden in zip(tapped, own.hidden_states[1:], strict=True):
        torch.testing.assert_close(tap, hidden)


def test_clip_backbone_from_a_tiny_config_is_frozen_and_paired_with_the_text(tiny_clip):
    vision = load_clip_vision(config=tiny_clip)
    assert not any(p.requires_grad for p in vision.parameters())
    backbones = FrozenBackbones(vision, tiny_text(2))
    assert backbones.vision_layers == [1, 3] and backbones.image_size == 32


def test_clip_backbone_needs_a_local_folder_or_a_config(tmp_path):
    with pytest.raises(ConfigError, match="clip_path .* or clip_config"):
        load_clip_vision()
    with pytest.raises(ConfigError, match="is not a folder"):
        load_clip_vision(str(tmp_path / "nowhere"))


def test_vit_pretraining_learns_the_shape_under_each_patch_and_freezes_it():
    torch.manual_seed(0)
    images = torch.rand(64, 3, 48, 48)
    scenes = torch.zeros(64, 4, 7)
    scenes[:, 0] = torch.tensor([1, 2, 0, 0, 18.0, 18.0, 4.0])  # a small square in cell (1, 1)
    images[:, :, 12:24, 12:24] = 1.0
    vit = build_vit()
    first = pretrain_vit(vit, images, scenes, steps=1)
    vit = build_vit()
    last = pretrain_vit(vit, images, scenes, steps=15)
    assert last < first / 2
    assert not any(p.requires_grad for p in vit.parameters())
