"""Mixing tests on hand-made clips: the pasted region is the localised one, and the
label weights are its area."""

import math

import torch
import torch.nn.functional as F

from polymodal.methods.av_ssl.localisation import map_boxes
from polymodal.methods.av_ssl.mixing import (
    box_masks,
    mixed_targets,
    paste,
    soft_cross_entropy,
    teacher_targets,
    tube_masks,
)


def test_guided_mixup_pastes_the_localised_box_and_weights_labels_by_its_area() -> None:
    # Clip a: 4 frames of 16 × 16, all 1.0; clip b: all 0.0. Its localisation map
    # (2 time slices of a 4 × 4 patch grid) peaks at patch (row 1, col 2) in slice 0
    # and at (row 3, col 0) in slice 1: the 4 × 4-pixel patches at y 4..8, x 8..12
    # and y 12..16, x 0..4.
    a = {"video": torch.ones(1, 4, 1, 16, 16), "audio": torch.full((1, 2, 3), 6.0)}
    b = {"video": torch.zeros(1, 4, 1, 16, 16), "audio": torch.zeros(1, 2, 3)}
    maps = torch.zeros(1, 2, 4, 4)
    maps[0, 0, 1, 2] = 1.0
    maps[0, 1, 3, 0] = 1.0
    boxes = map_boxes(maps, frames=4, size=16, side=4)
    # The upsampled peak is symmetric around the patch centre: the 4-pixel box of
    # largest mass is that patch.
    expected = torch.tensor([[4, 8, 8, 12]] * 2 + [[12, 0, 16, 4]] * 2).float()
    torch.testing.assert_close(boxes[0], expected)

    mixed = paste(a, b, box_masks(boxes, 16))
    video = mixed.batch["video"][0, :, 0]  # (T, 16, 16)
    for t, (y0, x0, y1, x1) in enumerate(expected.long().tolist()):
        inside = torch.zeros(16, 16, dtype=torch.bool)
        inside[y0:y1, x0:x1] = True
        assert torch.equal(video[t] == 1.0, inside)  # exactly the box comes from a
    area = 16 / 256  # a 4 × 4 box in a 16 × 16 frame, every frame
    torch.testing.assert_close(mixed.area, torch.tensor([area]))
    torch.testing.assert_close(mixed.batch["audio"], torch.full((1, 2, 3), 6.0 * area))
    one_hot = torch.eye(10)
    targets = mixed_targets(one_hot[[7]], one_hot[[2]], mixed.area)
    want = torch.zeros(1, 10)
    want[0, 7], want[0, 2] = area, 1 - area
    torch.testing.assert_close(targets, want)


def test_teacher_targets_are_one_hot_where_confident_and_the_probabilities_elsewhere() -> None:
    probs = torch.tensor([[0.1, 0.9, 0.0], [0.5, 0.2, 0.3]])
    targets = teacher_targets(probs, torch.tensor([True, False]))
    torch.testing.assert_close(targets, torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.2, 0.3]]))
    # mixed by a quarter: 0.25 · (0, 1, 0) + 0.75 · (0.5, 0.2, 0.3)
    mixed = mixed_targets(targets[[0]], targets[[1]], torch.tensor([0.25]))
    torch.testing.assert_close(mixed, torch.tensor([[0.375, 0.4, 0.225]]))


def test_box_masks_are_end_exclusive_and_per_frame() -> None:
    boxes = torch.tensor([[[0.0, 1.0, 2.0, 3.0], [1.0, 1.0, 2.0, 2.0]]])  # (1, T=2, 4)
    masks = box_masks(boxes, 4)
    assert masks.shape == (1, 2, 1, 4, 4)
    first = torch.zeros(4, 4, dtype=torch.bool)
    first[0:2, 1:3] = True
    second = torch.zeros(4, 4, dtype=torch.bool)
    second[1, 1] = True
    assert torch.equal(masks[0, 0, 0], first) and torch.equal(masks[0, 1, 0], second)


def test_tube_masks_take_the_asked_share_of_patch_columns_in_every_frame() -> None:
    generator = torch.Generator().manual_seed(0)
    masks = tube_masks(3, 4, 8, 2, torch.tensor([0.25, 0.5, 0.0]), generator)
    assert masks.shape == (3, 4, 1, 8, 8)
    assert torch.equal(masks, masks[:, :1].expand_as(masks))  # a tube: the same in time
    shares = masks.flatten(1).float().mean(dim=1)
    torch.testing.assert_close(shares, torch.tensor([0.25, 0.5, 0.0]))
    cells = masks[:, 0, 0].reshape(3, 4, 2, 4, 2)  # whole 2 × 2 patches, never parts
    assert torch.equal(cells.amin(dim=(2, 4)), cells.amax(dim=(2, 4)))


def test_soft_cross_entropy_is_the_weighted_mean_of_target_cross_entropies() -> None:
    logits = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    targets = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    weight = torch.tensor([1.0, 0.0])
    loss = soft_cross_entropy(logits, targets, weight)
    torch.testing.assert_close(loss, F.cross_entropy(logits[:1], torch.tensor([0])) / 2)
    unweighted = soft_cross_entropy(logits, targets)
    want = (F.cross_entropy(logits[:1], torch.tensor([0])) + math.log(1 + math.exp(2)) - 1) / 2
    torch.testing.assert_close(unweighted, want)
