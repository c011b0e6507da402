"""Tests of the fusion heads, with an eye on missing modalities."""

import pytest
import torch
from torch.testing import assert_close

from polymodal.errors import DataError
from polymodal.modules.fusion import CrossAttentionFusion, EarlyFusion, LateFusion


def set_linear(layer: torch.nn.Module, weight: list[list[float]], bias: list[float]) -> None:
    assert isinstance(layer, torch.nn.Linear)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.copy_(torch.tensor(bias))


def hand_late_fusion() -> LateFusion:
    fusion = LateFusion({"a": 2, "b": 2}, num_classes=2)
    set_linear(fusion.heads["a"], [[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0])
    set_linear(fusion.heads["b"], [[2.0, 0.0], [0.0, 2.0]], [1.0, 0.0])
    return fusion


def test_late_fusion_averages_only_present_modalities() -> None:
    fusion = hand_late_fusion()
    # pooled a = [1, 2] for every sample; pooled b = [3, 1]
    a = torch.tensor([[[0.0, 2.0], [2.0, 2.0]]]).repeat(3, 1, 1)
    b = torch.tensor([[[3.0, 1.0]]]).repeat(3, 1, 1)
    present = {"a": torch.tensor([True, True, False]), "b": torch.tensor([True, False, True])}
    logits = fusion({"a": a, "b": b}, present).logits
    head_a = torch.tensor([1.0, 2.0])
    head_b = torch.tensor([7.0, 2.0])  # 2 * [3, 1] + [1, 0]
    expected = torch.stack([(head_a + head_b) / 2, head_a, head_b])
    assert_close(logits, expected)


def test_late_fusion_absent_key_means_missing_everywhere() -> None:
    fusion = hand_late_fusion()
    a = torch.tensor([[[1.0, 2.0]]])
    out = fusion({"a": a}, {"a": torch.tensor([True])})
    assert_close(out.logits, torch.tensor([[1.0, 2.0]]))
    assert out.features is None


def test_late_fusion_sample_without_modality_is_data_error() -> None:
    fusion = hand_late_fusion()
    tokens = {"a": torch.zeros(2, 1, 2), "b": torch.zeros(2, 1, 2)}
    present = {"a": torch.tensor([True, False]), "b": torch.tensor([True, False])}
    with pytest.raises(DataError, match=r"samples \[1\]"):
        fusion(tokens, present)


def test_fusion_rejects_unknown_modality() -> None:
    with pytest.raises(ValueError, match="unknown modalities"):
        hand_late_fusion()({"c": torch.zeros(1, 1, 2)}, None)


def test_fusion_rejects_wrong_token_width() -> None:
    with pytest.raises(DataError, match="'b'"):
        hand_late_fusion()({"a": torch.zeros(1, 1, 2), "b": torch.zeros(1, 1, 3)}, None)


def test_early_fusion_uses_placeholder_for_missing_sample() -> None:
    torch.manual_seed(0)
    fusion = EarlyFusion({"a": 3, "b": 2}, num_classes=4, hidden=8).eval()
    with torch.no_grad():
        fusion.placeholders["a"].copy_(torch.randn(3))
    a, b = torch.randn(2, 5, 3), torch.randn(2, 4, 2)
    missing = fusion({"a": a, "b": b}, {"a": torch.tensor([False, True])})

    # feeding the placeholder value itself as sample 0's only 'a' token must agree
    a_fed = a.clone()
    a_fed[0] = fusion.placeholders["a"].detach()
    fed = fusion({"a": a_fed, "b": b}, None)
    assert_close(missing.logits, fed.logits)
    assert missing.features is not None and missing.features.shape == (2, 5)


def test_early_fusion_absent_key_equals_all_false_mask() -> None:
    torch.manual_seed(0)
    fusion = EarlyFusion({"a": 3, "b": 2}, num_classes=4, hidden=8).eval()
    b = torch.randn(2, 4, 2)
    absent = fusion({"b": b}, None).logits
    masked = fusion({"a": torch.randn(2, 5, 3), "b": b}, {"a": torch.tensor([False, False])}).logits
    assert_close(absent, masked)


def cross_fusion() -> CrossAttentionFusion:
    torch.manual_seed(0)
    return CrossAttentionFusion({"image": 6, "audio": 4}, num_classes=3, dim=8, num_heads=2).eval()


def test_cross_attention_returns_weights_per_direction() -> None:
    fusion = cross_fusion()
    tokens = {"image": torch.randn(2, 5, 6), "audio": torch.randn(2, 7, 4)}
    out = fusion(tokens, None, return_attention=True)
    assert out.logits.shape == (2, 3)
    assert out.features is not None and out.features.shape == (2, 16)
    assert out.attentions is not None
    assert out.attentions["image->audio"].shape == (2, 2, 5, 7)
    assert out.attentions["audio->image"].shape == (2, 2, 7, 5)
    for weights in out.attentions.values():
        assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))
    assert fusion(tokens, None).attentions is None


def test_cross_attention_with_one_modality_missing_for_some_samples() -> None:
    fusion = cross_fusion()
    tokens = {"image": torch.randn(3, 5, 6), "audio": torch.randn(3, 7, 4)}
    present = {
        "audio": torch.tensor([True, False, True]),
        "image": torch.tensor([True, True, False]),
    }
    out = fusion(tokens, present, return_attention=True)
    assert torch.isfinite(out.logits).all()
    assert out.attentions is not None
    i2a, a2i = out.attentions["image->audio"], out.attentions["audio->image"]
    assert torch.all(i2a[1] == 0)  # sample 1 has no audio keys
    assert torch.all(a2i[2] == 0)  # sample 2 has no image keys
    assert_close(i2a[[0, 2]].sum(-1), torch.ones(2, 2, 5))


def test_cross_attention_ignores_content_of_missing_modality() -> None:
    fusion = cross_fusion()
    tokens = {"image": torch.randn(2, 5, 6), "audio": torch.randn(2, 7, 4)}
    present = {"audio": torch.tensor([True, False])}
    changed = {"image": tokens["image"], "audio": tokens["audio"].clone()}
    changed["audio"][1] = 50.0
    assert_close(fusion(tokens, present).logits, fusion(changed, present).logits)


def test_cross_attention_absent_modality_key() -> None:
    fusion = cross_fusion()
    image = torch.randn(2, 5, 6)
    absent = fusion({"image": image}, None, return_attention=True)
    masked = fusion(
        {"image": image, "audio": torch.randn(2, 7, 4)}, {"audio": torch.tensor([False, False])}
    )
    assert_close(absent.logits, masked.logits)


def test_cross_attention_sample_does_not_depend_on_rest_of_batch() -> None:
    fusion = cross_fusion()
    tokens = {"image": torch.randn(4, 5, 6), "audio": torch.randn(4, 7, 4)}
    present = {"audio": torch.tensor([True, False, True, True])}
    perm = torch.tensor([2, 0, 3, 1])
    out = fusion(tokens, present).logits
    out_perm = fusion({m: t[perm] for m, t in tokens.items()}, {"audio": present["audio"][perm]})
    assert_close(out_perm.logits, out[perm], atol=1e-6, rtol=1e-5)
    alone = fusion({m: t[1:2] for m, t in tokens.items()}, {"audio": present["audio"][1:2]})
    assert_close(alone.logits, out[1:2], atol=1e-6, rtol=1e-5)


def test_cross_attention_needs_two_modalities() -> None:
    with pytest.raises(ValueError, match="exactly two"):
        CrossAttentionFusion({"image": 4}, num_classes=2)
