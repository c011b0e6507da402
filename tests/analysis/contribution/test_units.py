"""Occlusion units: how a sample is cut into patches, chunks, tiles and groups."""

import pytest
import torch

from polymodal.analysis.contribution.units import (
    Chunks,
    Groups,
    Patches,
    Tiles,
    Whole,
    default_units,
    parse_units,
)


def test_unit_masks_partition_the_sample():
    for spec, shape, units in (
        (Patches(2), (1, 5, 5), 9),
        (Patches((2, 3)), (3, 4, 6), 4),
        (Chunks(count=16), (40, 101), 16),
        (Chunks(size=1), (7,), 7),
        (Tiles(), (4, 3, 2, 2), 4),
        (Whole(), (2, 3), 1),
    ):
        masks = spec.masks(shape)
        assert masks.shape == (units, *shape)
        assert torch.equal(masks.sum(dim=0), torch.ones(shape, dtype=torch.long))


def test_groups_cover_their_positions():
    masks = Groups(groups={"a": [0, 2], "b": [1]}).masks((4,))
    assert masks.tolist() == [[True, False, True, False], [False, True, False, False]]
    with pytest.raises(ValueError, match="group positions"):
        Groups(groups={"a": [5]}).masks((4,))


def test_parse_units_reads_the_command_line_forms():
    assert parse_units("patches:4") == Patches((4, 4))
    assert parse_units("patches:2x3") == Patches((2, 3))
    assert parse_units("chunks:16") == Chunks(count=16)
    assert parse_units("entries") == Chunks(size=1)
    assert parse_units("tiles") == Tiles()
    with pytest.raises(ValueError, match="bad unit spec"):
        parse_units("pixels:3")
    assert default_units("image", (1, 28, 28)) == Patches((4, 4))
    assert default_units("audio", (40, 101)) == Chunks(count=16)


def test_a_chunk_count_larger_than_the_axis_cannot_cut():
    with pytest.raises(ValueError, match="cannot cut"):
        Chunks(count=9).masks((4,))
