"""Tests of the multimodal classifier and its builder."""

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from polymodal.errors import DataError
from polymodal.modules.classifier import MultimodalClassifier, build_classifier
from polymodal.modules.fusion import EarlyFusion, LateFusion

MODALITIES: dict[str, dict[str, Any]] = {
    "image": {"encoder": "cnn", "shape": [1, 8, 8]},
    "audio": {"encoder": "spectrogram", "n_mels": 8, "shape": [8, 16]},
}


def batch(b: int = 3) -> dict[str, torch.Tensor]:
    return {
        "image": torch.randn(b, 1, 8, 8),
        "audio": torch.randn(b, 8, 16),
        "label": torch.zeros(b, dtype=torch.long),
    }


@pytest.mark.parametrize("fusion", ["early", "late", "cross_attention", "image_only", "audio_only"])
def test_every_fusion_gives_logits(fusion: str) -> None:
    model = build_classifier(fusion, MODALITIES, num_classes=4, dim=8, seed=0)
    assert model(batch()).logits.shape == (3, 4)


def test_wrong_image_shape_raises_data_error_naming_image() -> None:
    model = build_classifier("early", MODALITIES, num_classes=2, dim=8, seed=0)
    bad = batch()
    bad["image"] = torch.randn(3, 1, 9, 8)
    with pytest.raises(DataError, match="'image'.*expected shape"):
        model(bad)


def test_nan_audio_raises_data_error_naming_audio() -> None:
    model = build_classifier("early", MODALITIES, num_classes=2, dim=8, seed=0)
    bad = batch()
    bad["audio"][1, 2, 3] = float("nan")
    with pytest.raises(DataError, match="'audio'.*NaN"):
        model(bad)


def test_modality_missing_from_batch_is_absent_for_every_sample() -> None:
    model = build_classifier("early", MODALITIES, num_classes=2, dim=8, seed=0).eval()
    full = batch()
    without = {k: v for k, v in full.items() if k != "audio"}
    masked = dict(full, audio_mask=torch.zeros(3, dtype=torch.bool))
    assert_close(model(without).logits, model(masked).logits)


def test_mask_reaches_fusion() -> None:
    model = build_classifier("late", MODALITIES, num_classes=2, dim=8, seed=0).eval()
    full = batch()
    masked = dict(full, audio_mask=torch.tensor([True, False, True]))
    image_only = {"image": full["image"]}
    assert isinstance(model.fusion, LateFusion)
    # sample 1 has only its image: late fusion then equals the image head alone
    assert_close(model(masked).logits[1], model(image_only).logits[1])
    assert not torch.allclose(model(masked).logits[0], model(image_only).logits[0])


def test_unimodal_builder_keeps_one_encoder_and_ignores_other_modalities() -> None:
    model = build_classifier("image_only", MODALITIES, num_classes=2, dim=8, seed=0).eval()
    assert list(model.encoders) == ["image"]
    full = batch()
    assert_close(model(full).logits, model({"image": full["image"]}).logits)


def test_batch_without_any_encoded_modality_is_data_error() -> None:
    model = build_classifier("audio_only", MODALITIES, num_classes=2, dim=8, seed=0)
    with pytest.raises(DataError, match="none of the modalities"):
        model({"image": torch.randn(2, 1, 8, 8)})


def test_cross_attention_classifier_returns_attention_and_embeddings() -> None:
    model = build_classifier("cross_attention", MODALITIES, num_classes=2, dim=8, num_heads=2)
    out = model(batch(), return_attention=True, return_embeddings=True)
    assert out.attentions is not None
    # image: 8 -> 4 -> 2 -> 1 per side = 1 token; audio: T 16 -> 2 tokens
    assert out.attentions["image->audio"].shape == (3, 2, 1, 2)
    assert out.embeddings is not None and out.embeddings["audio"].shape == (3, 2, 8)
    assert model(batch()).attentions is None


def test_builder_reads_sizes_from_shape() -> None:
    mods: dict[str, dict[str, Any]] = {
        "image": {
            "encoder": "vit",
            "shape": [3, 16, 16],
            "patch_size": 4,
            "depth": 1,
            "num_heads": 2,
        },
        "genes": {"encoder": "mlp", "shape": [30], "tokens": 2, "hidden": [16]},
    }
    model = build_classifier("early", mods, num_classes=3, dim=8, seed=0)
    x = {"image": torch.randn(2, 3, 16, 16), "genes": torch.randn(2, 30)}
    out = model(x, return_embeddings=True)
    assert out.embeddings is not None
    assert out.embeddings["image"].shape == (2, 17, 8)
    assert out.embeddings["genes"].shape == (2, 2, 8)


def test_bad_encoder_option_is_value_error() -> None:
    mods: dict[str, dict[str, Any]] = {"image": {"encoder": "cnn", "kernel": 5}}
    with pytest.raises(ValueError, match="bad options for encoder 'cnn'"):
        build_classifier("early", mods, num_classes=2)


def test_same_seed_same_parameters() -> None:
    a = build_classifier("early", MODALITIES, num_classes=2, dim=8, seed=3)
    b = build_classifier("early", MODALITIES, num_classes=2, dim=8, seed=3)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_unknown_fusion_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="early, late, cross_attention, image_only, audio_only"):
        build_classifier("middle", MODALITIES, num_classes=2)


def test_unknown_encoder_lists_valid_names() -> None:
    mods: dict[str, dict[str, Any]] = {"image": {"encoder": "resnet"}}
    with pytest.raises(ValueError, match="cnn, cnn3d, mlp, spectrogram, text, vit, vit3d"):
        build_classifier("early", mods, num_classes=2)


def test_only_fusion_for_unconfigured_modality() -> None:
    with pytest.raises(ValueError, match="'video'"):
        build_classifier("video_only", MODALITIES, num_classes=2)


def test_classifier_accepts_prebuilt_modules() -> None:
    enc = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Unflatten(1, (1, 4)))
    enc.dim = 4  # type: ignore[assignment]
    model = MultimodalClassifier({"genes": enc}, EarlyFusion({"genes": 4}, 2), {"genes": (4,)})
    assert model({"genes": torch.randn(5, 4)}).logits.shape == (5, 2)
    with pytest.raises(DataError, match="'genes'"):
        model({"genes": torch.randn(5, 3)})


def separable_problem(n: int = 32) -> dict[str, torch.Tensor]:
    """Class 1: bright top half of the image and loud high mel bands; class 0: the reverse."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 2
    sign = (2 * y - 1).float()[:, None, None]
    image = 0.5 * torch.randn(n, 1, 8, 8, generator=g)
    image[:, :, :4] += sign[:, None]
    image[:, :, 4:] -= sign[:, None]
    audio = 0.5 * torch.randn(n, 8, 16, generator=g)
    audio[:, 4:] += sign
    return {"image": image, "audio": audio, "label": y}


def test_training_reduces_loss_on_separable_problem() -> None:
    torch.manual_seed(0)
    model = build_classifier("early", MODALITIES, num_classes=2, dim=8, hidden=16, seed=0)
    data = separable_problem()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = F.cross_entropy(model(data).logits, data["label"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
