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


def _write_clip(path: Path, frames: int = 10, sound: bool = True, value: int = 200) -> None:
    """A 16 × 16 grey clip at 10 fps whose frame k has a bright column at x = k, with
    a 440 Hz tone at 16 kHz when ``sound``."""
    import av
    import numpy as np

    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=10)
        video.width = video.height = 16
        video.pix_fmt = "yuv420p"
        audio = container.add_stream("pcm_s16le", rate=16000) if sound else None
        if audio is not None:
            audio.layout = "mono"
        for k in range(frames):
            picture = np.zeros((16, 16, 3), np.uint8)
            picture[:, k % 16] = value
            for packet in video.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                container.mux(packet)
        container.mux(video.encode())
        if audio is not None:
            t = np.arange(16000) / 16000
            tone = (0.5 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)[None]
            frame = av.AudioFrame.from_ndarray(tone, format="s16", layout="mono")
            frame.sample_rate = 16000
            for packet in audio.encode(frame):
                container.mux(packet)
            container.mux(audio.encode())


@pytest.fixture
def write_clip():
    """Writes a tiny video file with PyAV: ``write_clip(path, frames=10, sound=True, value=200)``
    (16 × 16 grey, a bright column moving right one pixel a frame, a 440 Hz tone)."""
    pytest.importorskip("av")
    return _write_clip
