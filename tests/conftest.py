"""Fixtures shared by the whole test suite."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_SUBTYPE = (
    "configs/subtype_fusion.yaml",
    [
        "data.options={patients: 24, genes: 300, min_tiles: 2, max_tiles: 4, tile_size: 16}",
        "data.batch_size=8",
        "model.dim=8",
        "model.modalities.genes.hidden=[16]",
        "model.modalities.tiles.depth=2",
        "trainer.max_epochs=1",
        "trainer.progress_bar=false",
    ],
)
"""The subtype-fusion recipe and overrides that make a CV run of a few seconds."""

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data sets beside the project (``../shared/data``); skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"../shared/data not found: real-data tests need {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def tiny_subtype() -> tuple[str, list[str]]:
    """``(config, overrides)`` of a tiny Histo-Omics CV run (24 patients, 1 epoch)."""
    config, overrides = TINY_SUBTYPE
    return config, list(overrides)
