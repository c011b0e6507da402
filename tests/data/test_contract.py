from collections.abc import Iterator

import pytest
import torch

from polymodal.data.contract import (
    MODALITIES,
    TARGETS,
    ModalitySpec,
    TargetSpec,
    collate,
    present,
    register_modality,
    register_target,
    validate_batch,
    validate_sample,
)
from polymodal.errors import DataError

T, F = True, False


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
    with pytest.raises(DataError, match=r"unknown key 'lidar' \(shape \(3,\)\); known modalities"):
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
        validate_batch({"image": torch.zeros(2, 1, 2, 2), "label": torch.zeros(3).long()})
    with pytest.raises(DataError, match="empty list"):
        collate([])


# --- targets ---------------------------------------------------------------


def with_image(**entries: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"image": torch.zeros(1, 2, 2), **entries}


def test_float_label_is_refused_naming_layout_and_dtype():
    with pytest.raises(
        DataError, match=r"target 'label' expected shape \(\) of int64, got float32 of shape \(\)"
    ):
        validate_sample(with_image(label=torch.tensor(1.0)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bool])
def test_multi_hot_labels_accept_float_or_bool_and_stack(dtype: torch.dtype):
    rows = [[1, 0, 1], [0, 0, 1]]
    samples = [with_image(labels=torch.tensor(r, dtype=dtype)) for r in rows]
    validate_sample(samples[0])
    batch = collate(samples)
    assert batch["labels"].dtype == dtype
    assert batch["labels"].tolist() == [
        [bool(v) if dtype == torch.bool else v for v in r] for r in rows
    ]
    assert validate_batch(batch) == 2


def test_integer_multi_hot_labels_are_refused():
    with pytest.raises(
        DataError,
        match=r"target 'labels' expected shape \(K,\) multi-hot of float or bool, got int64",
    ):
        validate_sample(with_image(labels=torch.tensor([1, 0])))


def test_multi_hot_labels_of_different_k_do_not_collate():
    samples = [with_image(labels=torch.zeros(2)), with_image(labels=torch.zeros(3))]
    with pytest.raises(
        DataError,
        match=(
            r"'labels' has different shapes within one batch: \[\(2,\), "
            r"\(3,\)\]; its layout \(K,\) multi-hot is fixed-shape"
        ),
    ):
        collate(samples)


@pytest.mark.parametrize("shape", [(2, 3), (4, 2, 3)])
def test_heatmap_accepts_2d_and_3d_maps(shape: tuple[int, ...]):
    batch = collate([with_image(heatmap=torch.ones(shape)), with_image(heatmap=torch.zeros(shape))])
    assert batch["heatmap"].shape == (2, *shape)
    assert batch["heatmap"].sum() == torch.Size(shape).numel()
    assert validate_batch(batch) == 2


def test_heatmap_of_wrong_rank_or_with_nan_is_refused():
    with pytest.raises(
        DataError,
        match=(
            r"target 'heatmap' expected shape \(H, W\) or \(D, H, W\) \(2 "
            r"or 3 dims\), got \(5,\)"
        ),
    ):
        validate_sample(with_image(heatmap=torch.zeros(5)))
    with pytest.raises(DataError, match=r"target 'heatmap' contains Inf values \(shape \(2, 2\)\)"):
        validate_sample(with_image(heatmap=torch.tensor([[0.0, float("inf")], [0.0, 0.0]])))


def test_tokens_are_padded_with_ignore_index_and_masked():
    samples = [with_image(tokens=torch.tensor([5, 6, 7])), with_image(tokens=torch.tensor([8]))]
    batch = collate(samples)
    assert batch["tokens"].tolist() == [[5, 6, 7], [8, -100, -100]]
    assert batch["tokens_mask"].tolist() == [[T, T, T], [T, F, F]]
    assert validate_batch(batch) == 2


def test_a_sample_tokens_mask_is_kept_and_padded_with_false():
    first = with_image(tokens=torch.tensor([5, 0]), tokens_mask=torch.tensor([T, F]))
    second = with_image(tokens=torch.tensor([8, 9, 4]))
    validate_sample(first)
    batch = collate([first, second])
    assert batch["tokens"].tolist() == [[5, 0, -100], [8, 9, 4]]
    assert batch["tokens_mask"].tolist() == [[T, F, F], [T, T, T]]


def test_tokens_mask_of_wrong_length_or_without_tokens_is_refused():
    with pytest.raises(
        DataError,
        match=(
            r"mask 'tokens_mask' expected shape \(2,\) \(the length of "
            r"'tokens' \(2,\)\), got \(3,\)"
        ),
    ):
        validate_sample(with_image(tokens=torch.tensor([5, 6]), tokens_mask=torch.ones(3).bool()))
    with pytest.raises(DataError, match="mask 'tokens_mask' needs 'tokens' in the same sample"):
        validate_sample(with_image(tokens_mask=torch.ones(3).bool()))


def test_float_tokens_are_refused():
    with pytest.raises(
        DataError,
        match=r"target 'tokens' expected shape \(L,\) of int64, got float32 of shape \(2,\)",
    ):
        collate([with_image(tokens=torch.tensor([1.0, 2.0]))])


def test_label_mask_marks_unlabelled_samples_and_defaults_to_labelled():
    samples = [
        with_image(label=torch.tensor(3), label_mask=torch.tensor(True)),
        with_image(label=torch.tensor(-1), label_mask=torch.tensor(False)),
        with_image(label=torch.tensor(4)),
    ]
    validate_sample(samples[1])
    batch = collate(samples)
    assert batch["label"].tolist() == [3, -1, 4]
    assert batch["label_mask"].tolist() == [T, F, T]
    assert present(batch, "label").tolist() == [T, F, T]
    assert validate_batch(batch) == 3


def test_label_mask_without_label_is_refused_in_sample_collate_and_batch():
    lone = with_image(label_mask=torch.tensor(False))
    with pytest.raises(DataError, match="target 'label_mask' needs 'label' in the same sample"):
        validate_sample(lone)
    with pytest.raises(DataError, match="sample 1: target 'label_mask' needs 'label'"):
        collate([with_image(label=torch.tensor(0)), lone])
    batch = {"image": torch.zeros(2, 1, 2, 2), "label_mask": torch.tensor([T, F])}
    with pytest.raises(DataError, match="target 'label_mask' needs 'label' in the same batch"):
        validate_batch(batch)


def test_non_bool_label_mask_is_refused():
    with pytest.raises(
        DataError, match=r"target 'label_mask' expected shape \(B,\) of bool, got int64"
    ):
        validate_batch(
            {
                "image": torch.zeros(2, 1, 2, 2),
                "label": torch.zeros(2).long(),
                "label_mask": torch.ones(2).long(),
            }
        )


def test_a_target_other_than_label_mask_may_not_be_missing():
    with pytest.raises(DataError, match="'heatmap' is missing from some samples"):
        collate([with_image(heatmap=torch.zeros(2, 2)), with_image()])


# --- modalities ------------------------------------------------------------


def test_text_ids_are_padded_with_zero_and_masked():
    batch = collate([{"text_ids": torch.tensor([4, 2])}, {"text_ids": torch.tensor([7, 1, 3])}])
    assert batch["text_ids"].tolist() == [[4, 2, 0], [7, 1, 3]]
    assert batch["text_ids_mask"].tolist() == [[T, T, F], [T, T, T]]
    assert present(batch, "text_ids").tolist() == [T, T]


def test_text_ids_missing_from_a_sample_leave_an_all_false_row():
    batch = collate([{"image": torch.ones(1, 2, 2)}, with_image(text_ids=torch.tensor([4, 2]))])
    assert batch["text_ids"].tolist() == [[0, 0], [4, 2]]
    assert batch["text_ids_mask"].tolist() == [[F, F], [T, T]]
    assert present(batch, "text_ids").tolist() == [F, T]
    assert validate_batch(batch) == 2


def test_video_has_four_dims_and_pads_along_time_when_declared():
    validate_sample({"video": torch.zeros(2, 3, 4, 4)})
    with pytest.raises(
        DataError,
        match=r"modality 'video' expected shape \(T, C, H, W\) \(4 dims\), got \(3, 4, 4\)",
    ):
        validate_sample({"video": torch.zeros(3, 4, 4)})
    clips = [{"video": torch.ones(1, 1, 2, 2)}, {"video": torch.ones(3, 1, 2, 2)}]
    with pytest.raises(DataError, match=r"fixed-shape unless collate gets variable=\('video',\)"):
        collate(clips)
    batch = collate(clips, variable=("video",))
    assert batch["video"].shape == (2, 3, 1, 2, 2)
    assert batch["video"].sum(dim=(2, 3, 4)).tolist() == [[4, 0, 0], [4, 4, 4]]
    assert batch["video_mask"].tolist() == [[T, F, F], [T, T, T]]
    assert validate_batch(batch) == 2


def test_log_mel_audio_pads_along_time_when_declared():
    clips = [{"audio": torch.ones(2, 3)}, {"audio": torch.ones(2, 1)}]
    batch = collate(clips, variable=["audio"])
    assert batch["audio"].tolist() == [[[1, 1, 1], [1, 1, 1]], [[1, 0, 0], [1, 0, 0]]]
    assert batch["audio_mask"].tolist() == [[T, T, T], [T, F, F]]


def test_padding_needs_the_other_axes_to_agree():
    clips = [{"audio": torch.ones(2, 3)}, {"audio": torch.ones(4, 3)}]
    with pytest.raises(
        DataError,
        match=(
            r"'audio' \(S,\) waveform or \(F, T\) log-mel may differ only "
            r"along axis -1 .*\[\(2, 3\), \(4, 3\)\]"
        ),
    ):
        collate(clips, variable=["audio"])


def test_a_key_without_length_axis_cannot_be_declared_variable():
    with pytest.raises(
        DataError, match=r"cannot pad 'image': its layout \(C, H, W\) has no length axis"
    ):
        collate([with_image()], variable=["image"])


def test_depth_must_have_one_channel():
    validate_sample({"depth": torch.zeros(1, 4, 4)})
    with pytest.raises(
        DataError,
        match=r"modality 'depth' expected shape \(1, H, W\) with size 1 on axis 0, got \(3, 4, 4\)",
    ):
        validate_sample({"depth": torch.zeros(3, 4, 4)})


def test_integer_image_is_refused():
    with pytest.raises(
        DataError, match=r"modality 'image' expected shape \(C, H, W\) of float, got uint8"
    ):
        validate_sample({"image": torch.zeros(1, 2, 2, dtype=torch.uint8)})


# --- volumes and spacing ----------------------------------------------------


@pytest.mark.parametrize("name", ["ct", "pet"])
def test_volume_spacing_validates_and_stacks(name: str):
    samples = [
        {name: torch.zeros(2, 3, 3), f"{name}_spacing": torch.tensor([2.5, 1.0, 1.0])},
        {name: torch.zeros(2, 3, 3), f"{name}_spacing": torch.tensor([3.0, 0.5, 0.5])},
    ]
    validate_sample(samples[0])
    batch = collate(samples)
    assert batch[f"{name}_spacing"].tolist() == [[2.5, 1.0, 1.0], [3.0, 0.5, 0.5]]
    assert validate_batch(batch) == 2


@pytest.mark.parametrize(
    ("spacing", "message"),
    [
        (
            torch.tensor([1.0, 0.0, 1.0]),
            r"spacing 'ct_spacing' expected shape \(3,\) voxel size along "
            r"\(D, H, W\), > 0, got \[1.0, 0.0, 1.0\]",
        ),
        (
            torch.tensor([1.0, 1.0]),
            r"spacing 'ct_spacing' expected shape \(3,\) .* with size 3 on axis 0, got \(2,\)",
        ),
        (
            torch.tensor([1, 1, 1]),
            r"spacing 'ct_spacing' expected shape \(3,\) .* of float, got int64",
        ),
    ],
)
def test_bad_spacing_is_refused(spacing: torch.Tensor, message: str):
    with pytest.raises(DataError, match=message):
        validate_sample({"ct": torch.zeros(2, 3, 3), "ct_spacing": spacing})


def test_spacing_needs_its_volume_and_only_volumes_have_spacing():
    with pytest.raises(DataError, match="spacing 'ct_spacing' needs 'ct' in the same sample"):
        validate_sample({"image": torch.zeros(1, 2, 2), "ct_spacing": torch.ones(3)})
    with pytest.raises(DataError, match="unknown key 'image_spacing'"):
        validate_sample({"image": torch.zeros(1, 2, 2), "image_spacing": torch.ones(3)})


def test_missing_volume_gets_unit_spacing_but_a_present_one_needs_its_own():
    scan = {"ct": torch.ones(1, 2, 2), "ct_spacing": torch.tensor([2.0, 1.0, 1.0])}
    batch = collate([scan, with_image()])
    assert batch["ct_mask"].tolist() == [T, F]
    assert batch["ct_spacing"].tolist() == [[2.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    with pytest.raises(
        DataError, match="spacing 'ct_spacing' is missing from sample 1, which carries 'ct'"
    ):
        collate([scan, {"ct": torch.ones(1, 2, 2)}])


# --- masks and registries ---------------------------------------------------


def test_a_sample_presence_flag_merges_with_missing_modalities():
    first = {
        "image": torch.ones(1, 2, 2),
        "audio": torch.ones(3),
        "audio_mask": torch.tensor(False),
    }
    batch = collate(
        [
            first,
            {"image": torch.ones(1, 2, 2)},
            {"image": torch.ones(1, 2, 2), "audio": torch.ones(3)},
        ]
    )
    assert batch["audio_mask"].tolist() == [F, F, T]


def test_batch_position_mask_must_match_the_sequence_length():
    batch = collate([with_image(tokens=torch.tensor([1, 2]))])
    batch["tokens_mask"] = torch.ones(1, 3, dtype=torch.bool)
    with pytest.raises(
        DataError,
        match=(
            r"mask 'tokens_mask' expected shape \(1, 2\) \(the length of "
            r"'tokens' \(1, 2\)\), got \(1, 3\)"
        ),
    ):
        validate_batch(batch)


@pytest.fixture
def restore_registries() -> Iterator[None]:
    modalities, targets = dict(MODALITIES), dict(TARGETS)
    yield
    MODALITIES.clear()
    MODALITIES.update(modalities)
    TARGETS.clear()
    TARGETS.update(targets)


def test_a_registered_target_is_validated_and_a_duplicate_refused(restore_registries: None):
    register_target(
        "regions", TargetSpec("(N, 4)", (2,), length_axis=-2, variable=True, pad_value=-1.0)
    )
    batch = collate([with_image(regions=torch.ones(1, 4)), with_image(regions=torch.ones(2, 4))])
    assert batch["regions"][0].tolist() == [[1, 1, 1, 1], [-1, -1, -1, -1]]
    assert batch["regions_mask"].tolist() == [[T, F], [T, T]]
    with pytest.raises(ValueError, match="'regions' is already registered as a target \\(N, 4\\)"):
        register_target("regions", TargetSpec("(N, 4)", (2,)))
    with pytest.raises(ValueError, match="'label' is already registered as a target"):
        register_modality("label", ModalitySpec("()", (0,)))
    with pytest.raises(ValueError, match="'image' is already registered as a modality"):
        register_target("image", TargetSpec("()", (0,)))
    with pytest.raises(ValueError, match="'lidar_mask' is a reserved key name"):
        register_modality("lidar_mask", ModalitySpec("(N, 3)", (2,)))
