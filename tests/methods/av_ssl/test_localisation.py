"""Localisation tests: similarity maps, boxes from maps, IoU."""

import torch

from polymodal.methods.av_ssl.localisation import (
    box_iou,
    map_boxes,
    random_boxes,
    similarity_map,
)


def test_similarity_map_is_the_cosine_of_audio_with_each_patch_in_grid_order() -> None:
    audio = torch.tensor([[2.0, 0.0]])
    patches = torch.tensor([[[1.0, 0.0], [0.0, 3.0], [-1.0, 0.0], [1.0, 1.0]]])
    maps = similarity_map(audio, patches, (1, 2, 2))
    want = torch.tensor([[[[1.0, 0.0], [-1.0, 2**-0.5]]]])
    torch.testing.assert_close(maps, want)


def test_a_map_from_per_slice_audio_compares_each_slice_with_its_own_patches() -> None:
    # Two time slices of two patches; the audio of slice 0 points along x, of slice 1
    # along y: the same patches light up in one slice and not in the other.
    audio = torch.tensor([[[1.0, 0.0], [0.0, 5.0]]])  # (B=1, t=2, E=2)
    patches = torch.tensor([[[3.0, 0.0], [0.0, 1.0], [3.0, 0.0], [0.0, 1.0]]])
    maps = similarity_map(audio, patches, (2, 1, 2))
    torch.testing.assert_close(maps, torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]]))
    # One clip embedding is the same as that embedding repeated in every slice.
    clip = torch.tensor([[1.0, 0.0]])
    torch.testing.assert_close(
        similarity_map(clip, patches, (2, 1, 2)),
        similarity_map(clip[:, None].expand(1, 2, 2), patches, (2, 1, 2)),
    )


def test_box_iou_by_hand() -> None:
    a = torch.tensor([[0.0, 0.0, 4.0, 4.0], [0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 0.0, 0.0]])
    b = torch.tensor([[2.0, 2.0, 6.0, 6.0], [0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(box_iou(a, b), torch.tensor([4 / 28, 1.0, 0.0]))


def test_map_boxes_follow_the_peak_and_stay_inside_the_frame() -> None:
    maps = torch.zeros(1, 1, 4, 4)
    maps[0, 0, 0, 3] = 5.0  # top-right corner patch
    boxes = map_boxes(maps, frames=2, size=16, side=6)
    torch.testing.assert_close(boxes, torch.tensor([[[0.0, 10.0, 6.0, 16.0]] * 2]))


def test_random_boxes_have_the_side_asked_and_lie_inside_the_frame() -> None:
    boxes = random_boxes(50, 3, 16, 5, torch.Generator().manual_seed(0))
    assert boxes.shape == (50, 3, 4)
    assert torch.equal(boxes[:, 0], boxes[:, 2])  # one box per clip
    assert (boxes[..., 2:] - boxes[..., :2] == 5).all()
    assert boxes.min() >= 0 and boxes.max() <= 16
