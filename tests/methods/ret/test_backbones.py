import pytest
import torch
from transformers import BertConfig, BertModel

from polymodal.errors import DataError
from polymodal.hf.text_encoder import TextEncoder
from polymodal.methods.ret.backbones import FrozenBackbones, build_vit, pretrain_vit


def test_backbones_with_different_depths_are_refused():
    config = BertConfig(
        vocab_size=50,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    text = TextEncoder(BertModel(config), tokenizer=None)
    with pytest.raises(DataError, match="text encoder has 2 layers, the ViT 6"):
        FrozenBackbones(build_vit(), text)


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
