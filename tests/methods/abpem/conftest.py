"""A tiny audio-visual fusion model and batches for the ABPEM tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from polymodal.methods.abpem.model import AVFusionTransformer, build_av_fusion_transformer

IMAGE = (1, 8, 8)  # patch 4 -> 4 image tokens
AUDIO = (8, 12)  # patch (8, 4) -> 3 audio tokens


@pytest.fixture
def tiny_model() -> Callable[..., AVFusionTransformer]:
    """Factory: a 5-class model with 3 audio and 4 image tokens of width 16."""

    def make(seed: int = 0) -> AVFusionTransformer:
        return build_av_fusion_transformer(
            "shared_layer",
            {
                "image": {"shape": list(IMAGE), "patch": 4},
                "audio": {"shape": list(AUDIO), "patch": [8, 4]},
            },
            num_classes=5,
            dim=16,
            seed=seed,
            num_heads=2,
        ).eval()

    return make


@pytest.fixture
def make_batch() -> Callable[..., dict[str, torch.Tensor]]:
    """Factory: a seeded batch of ``size`` image + audio samples for :func:`tiny_model`."""

    def make(size: int = 6, seed: int = 0) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        return {
            "image": torch.rand(size, *IMAGE, generator=g),
            "audio": torch.randn(size, *AUDIO, generator=g),
        }

    return make
