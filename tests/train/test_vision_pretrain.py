"""Stage 0 of the VLM recipe: patch labels from scene tables, and the tower learning them."""

from __future__ import annotations

import torch

from polymodal.data.synth.shapes_render import COLORS, SHAPES
from polymodal.hf.llava import SmallLlavaConfig, build_small_llava
from polymodal.train.vision_pretrain import (
    BACKGROUND,
    CENTRE,
    PatchAccuracy,
    VisionPretrainConfig,
    patch_accuracy,
    patch_head,
    patch_labels,
    pretrain_vision_tower,
)


def table(*objects: tuple[str, str, int, float, float, float]) -> torch.Tensor:
    """One scene: (shape, colour, size, x, y, radius) rows, ``present`` first."""
    rows = [[1.0, SHAPES.index(s), COLORS.index(c), big, x, y, r] for s, c, big, x, y, r in objects]
    return torch.tensor([rows])


def test_each_patch_is_labelled_with_the_object_over_its_centre() -> None:
    # A 32-pixel image of 8-pixel patches (4 x 4): a small red circle in patch (0, 1)
    # and a large blue square over the 2x2 block of patches (2..3, 2..3).
    scenes = table(("circle", "red", 0, 12.0, 4.0, 3.2), ("square", "blue", 1, 24.0, 24.0, 6.4))
    labels = patch_labels(scenes, image_size=32, patch_size=8).view(4, 4)
    red_circle = SHAPES.index("circle") * len(COLORS) + COLORS.index("red")
    blue_square = SHAPES.index("square") * len(COLORS) + COLORS.index("blue")
    expected = torch.full((4, 4), BACKGROUND)
    expected[0, 1] = red_circle
    expected[2:, 2:] = blue_square
    assert labels.tolist() == expected.tolist()


def test_absent_rows_label_nothing() -> None:
    scenes = table(("circle", "red", 0, 12.0, 4.0, 3.2))
    scenes[0, 0, 0] = 0.0  # not present
    assert (patch_labels(scenes, 32, 8) == BACKGROUND).all()


def test_the_tower_learns_a_patch_colour_rule() -> None:
    spec = SmallLlavaConfig(
        vocab_size=8,
        image_token_id=4,
        image_size=16,
        patch_size=8,
        vision_hidden=16,
        vision_layers=1,
    )
    tower = build_small_llava(spec).model.vision_tower
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, 3, 16, 16), generator=generator, dtype=torch.uint8)
    bright = images.float().mean(1).view(64, 2, 8, 2, 8).mean((2, 4)) > 127.5  # (64, 2, 2)
    labels = bright.long().view(64, 4)  # class 1 where a patch is brighter than mid-grey
    short = pretrain_vision_tower(tower, images, labels, VisionPretrainConfig(steps=1), lambda x: x)
    longer = build_small_llava(spec).model.vision_tower
    long = pretrain_vision_tower(
        longer, images, labels, VisionPretrainConfig(steps=60, batch_size=16, lr=3e-3), lambda x: x
    )
    assert long < 0.5 * short


def test_centres_label_four_patches_of_an_object_centred_on_a_patch_corner() -> None:
    # A 32-pixel image of 4-pixel patches (8 x 8). A large green diamond centred on the
    # corner (16, 16) covers patches 2..5; its centre patches are the four around that
    # corner. A small red circle centred on the middle of patch (0, 6), (26, 2), has one.
    scenes = table(("diamond", "green", 1, 16.0, 16.0, 7.0), ("circle", "red", 0, 26.0, 2.0, 2.5))
    labels = patch_labels(scenes, image_size=32, patch_size=4, centres=True).view(8, 8)
    diamond = SHAPES.index("diamond") * len(COLORS) + COLORS.index("green")
    circle = SHAPES.index("circle") * len(COLORS) + COLORS.index("red")
    assert (labels[3:5, 3:5] == CENTRE + diamond).all()
    assert int((labels == CENTRE + diamond).sum()) == 4
    assert labels[2, 3] == labels[5, 4] == diamond  # inside, one patch off the centre
    assert labels[0, 6] == CENTRE + circle and int((labels == circle).sum()) == 0
    plain = patch_labels(scenes, 32, 4)  # without centres: the same objects, one class each
    assert (
        plain.tolist()
        == torch.where(labels >= CENTRE, labels - CENTRE, labels).view(1, 64).tolist()
    )
    assert VisionPretrainConfig(centres=True).classes == 49 == 2 * BACKGROUND + 1


def test_patch_accuracy_counts_all_patches_and_object_patches_apart() -> None:
    spec = SmallLlavaConfig(
        vocab_size=8, image_token_id=4, image_size=16, patch_size=8, vision_hidden=16
    )
    tower = build_small_llava(spec).model.vision_tower
    head = patch_head(tower, VisionPretrainConfig())
    with torch.no_grad():  # a head that always answers "background"
        head.weight.zero_()
        head.bias.zero_()
        head.bias[BACKGROUND] = 1.0
    labels = torch.full((3, 4), BACKGROUND)
    labels[0, :3] = 5  # 3 of the 12 patches show an object
    images = torch.zeros(3, 3, 16, 16, dtype=torch.uint8)
    accuracy = patch_accuracy(tower, head, images, labels, lambda x: x, batch_size=2)
    assert accuracy == PatchAccuracy(patches=9 / 12, objects=0.0)
