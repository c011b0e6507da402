import math

import torch

from polymodal.methods.bit_align.tfg import TextFeatureGuidance, unit_range


def _guidance() -> TextFeatureGuidance:
    tfg = TextFeatureGuidance(dim=2, text_dim=2)
    with torch.no_grad():  # the projected text is the text itself
        tfg.text_proj.weight.copy_(torch.eye(2))
        tfg.text_proj.bias.zero_()
    return tfg


# Three patches on a 1x3 grid: "a handle" [1, 0], "a body" [0, 1] twice; the text is [1, 0].
FEATURES = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]])
TEXT = torch.tensor([[1.0, 0.0]])


def test_reweighting_lifts_the_patches_that_look_like_the_word():
    # cos = [1, 0, 0]; standardised (sample std sqrt(1/3)): [2/sqrt(3), -1/sqrt(3), -1/sqrt(3)]
    s = torch.tensor([2.0, -1.0, -1.0]) / math.sqrt(3)
    expected = FEATURES * (1 + torch.sigmoid(s))[None, :, None]
    torch.testing.assert_close(_guidance().reweight(FEATURES, TEXT), expected)


def test_the_head_whose_cls_map_covers_the_word_is_chosen_per_sample():
    # head 0 attends to the handle, head 1 to the body; a second sample asks for the body.
    attention = torch.tensor([[[0.8, 0.1, 0.1], [0.1, 0.45, 0.45]]]).repeat(2, 1, 1)
    features = FEATURES.repeat(2, 1, 1)
    texts = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    heads = _guidance().choose_heads(features, texts, attention)
    torch.testing.assert_close(heads, torch.tensor([0, 1]))


def test_saliency_is_half_pooled_map_half_chosen_head_each_in_unit_range():
    attention = torch.tensor([[[0.8, 0.1, 0.1], [0.1, 0.45, 0.45]]])
    pooled = torch.tensor([[[2.0, 4.0, 0.0]]])  # (1, 1, 3) -> [0.5, 1, 0]
    saliency = _guidance().saliency(pooled, FEATURES, TEXT, attention)
    torch.testing.assert_close(saliency, torch.tensor([[[0.75, 0.5, 0.0]]]))


def test_unit_range_maps_each_sample_to_zero_one():
    maps = torch.tensor([[1.0, 3.0], [-2.0, -2.0]])
    torch.testing.assert_close(unit_range(maps), torch.tensor([[0.0, 1.0], [0.0, 0.0]]))
