import pytest
import torch

from polymodal.data.contract import collate, present, validate_batch, validate_sample
from polymodal.errors import DataError


def sample(label: int = 0) -> dict[str, torch.Tensor]:
    return {"image": torch.zeros(1, 4, 4), "audio": torch.zeros(3, 5), "label": torch.tensor(label)}


def test_collate_stacks_samples_with_batch_dimension_first():
    batch = collate([sample(0), sample(1)])
    assert batch["image"].shape == (2, 1, 4, 4)
    assert batch["audio"].shape == (2, 3, 5)
    assert batch["label"].tolist() == [0, 1]
    assert "image_mask" not in batch


def test_collate_zero_fills_a_missing_modality_and_flags_it():
    second = sample(1)
    second["audio"] = torch.ones(3, 5)
    first = sample(0)
    del first["audio"]
    batch = collate([first, second])
    assert batch["audio_mask"].tolist() == [False, True]
    assert batch["audio"][0].abs().sum() == 0
    assert batch["audio"][1].sum() == 15
    assert present(batch, "audio").tolist() == [False, True]
    assert present(batch, "image").tolist() == [True, True]
    assert present(batch, "genes") is None


def test_collate_rejects_mismatched_shapes_naming_the_key():
    other = sample(1)
    other["image"] = torch.zeros(1, 5, 5)
    with pytest.raises(DataError, match="'image' has different shapes"):
        collate([sample(0), other])


def test_unknown_modality_key_is_named():
    bad = sample()
    bad["lidar"] = torch.zeros(3)
    with pytest.raises(DataError, match="unknown modality key 'lidar'"):
        validate_sample(bad)


def test_wrong_shaped_image_in_batch_names_modality_and_shapes():
    batch = collate([sample(0), sample(1)])
    batch["image"] = torch.zeros(2, 4, 4)
    with pytest.raises(
        DataError, match=r"modality 'image' expected shape \(B, C, H, W\).*got \(2, 4, 4\)"
    ):
        validate_batch(batch)


def test_expected_shape_mismatch_is_reported():
    batch = collate([sample(0), sample(1)])
    with pytest.raises(
        DataError, match=r"'image' expected shape \(B, 1, 28, 28\), got \(2, 1, 4, 4\)"
    ):
        validate_batch(batch, {"image": (1, 28, 28)})
    assert validate_batch(batch, {"image": (1, -1, 4)}) == 2


def test_nan_audio_is_rejected():
    batch = collate([sample(0), sample(1)])
    batch["audio"][1, 0, 0] = float("nan")
    with pytest.raises(DataError, match="modality 'audio' contains NaN"):
        validate_batch(batch)


def test_empty_batch_and_inconsistent_sizes_are_rejected():
    with pytest.raises(DataError, match="empty batch"):
        validate_batch({"image": torch.zeros(0, 1, 2, 2)})
    with pytest.raises(DataError, match="disagree on batch size"):
        validate_batch({"image": torch.zeros(2, 1, 2, 2), "label": torch.zeros(3)})
    with pytest.raises(DataError, match="empty list"):
        collate([])
