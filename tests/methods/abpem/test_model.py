import pytest
import torch

from polymodal.errors import DataError
from polymodal.methods.abpem.model import build_av_fusion_transformer


def test_fusion_attention_exposes_logits_over_audio_then_image_tokens(tiny_model, make_batch):
    out = tiny_model()(make_batch(6), return_attention=True)
    assert out.logits.shape == (6, 5)
    assert out.attention_logits is not None and out.attention_logits.shape == (6, 2, 7, 7)
    assert out.fused is not None
    assert out.fused.segments == {"audio": slice(0, 3), "image": slice(3, 7)}


def test_forward_is_fuse_of_encode(tiny_model, make_batch):
    model, batch = tiny_model(), make_batch(4)
    with torch.no_grad():
        assert torch.equal(model(batch).logits, model.fuse(model.encode(batch)).logits)


def test_a_masked_image_does_not_reach_the_prediction(tiny_model, make_batch):
    model, batch = tiny_model(), make_batch(3)
    batch["image_mask"] = torch.tensor([True, False, True])
    other = {**batch, "image": batch["image"].clone()}
    other["image"][1] = 0.9
    with torch.no_grad():
        a, b = model(batch).logits, model(other).logits
    assert torch.equal(a[1], b[1])
    assert torch.isfinite(a).all()


def test_a_sample_without_any_modality_is_a_data_error(tiny_model, make_batch):
    batch = make_batch(2)
    batch["image_mask"] = torch.tensor([True, False])
    batch["audio_mask"] = torch.tensor([True, False])
    with pytest.raises(DataError, match=r"samples \[1\] carry none"):
        tiny_model()(batch)


def test_nan_input_is_a_data_error_naming_the_modality(tiny_model, make_batch):
    batch = make_batch(2)
    batch["audio"][0, 0, 0] = float("nan")
    with pytest.raises(DataError, match="'audio' contains NaN"):
        tiny_model()(batch)


def test_the_builder_rejects_an_unknown_fusion():
    with pytest.raises(ValueError, match="unknown fusion 'late'"):
        build_av_fusion_transformer("late", {"image": {"shape": [1, 8, 8]}}, num_classes=2)


def test_the_builder_is_seeded(tiny_model):
    a, b = tiny_model(seed=3), tiny_model(seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
