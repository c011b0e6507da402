"""Test streams, adaptation runs and the cached AV-Digits model shared by the claim and the CLI.

A *stream* is a corrupted test set cut into batches in a seeded order. Every method
sees the same batches; each run starts from the source model
(:meth:`~polymodal.methods.abpem.adapt.TestTimeAdapter.reset`) and adapts online.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from polymodal.data.cache import home, params_key
from polymodal.methods.abpem.adapt import TestTimeAdapter
from polymodal.methods.abpem.methods import make_method
from polymodal.methods.abpem.model import FusionTokens
from polymodal.train.config import ExperimentConfig, from_dict

BUILDER = "polymodal.methods.abpem.model:build_av_fusion_transformer"
TRAIN_DATA = {"image_noise": 0.0, "image_occlusion": 0, "audio_snr_db": -5.0}
"""The AV-Digits build the source model learns from: clean images, speech 5 dB under the
noise, so that neither modality alone is perfect and a corruption of either matters."""
QUICK_SIZES = {"train": 1500, "val": 300, "test": 500, "voices": 60}
BATCH_SIZE = 16
"""Test batch size: between the paper's 8 (Kinetics-Sounds) and 32 (VGGSound)."""


def experiment(quick: bool = False) -> ExperimentConfig:
    """The source model's training run (quick: a small data set and two epochs).

    The run folder lives under ``$POLYMODAL_HOME/bench/abpem``, keyed by the config.
    """
    values = {
        "name": "abpem-av-digits",
        "seed": 0,
        "data": {
            "name": "av_digits",
            "options": {**TRAIN_DATA, **(QUICK_SIZES if quick else {})},
            "batch_size": 64,
        },
        "model": {
            "fusion": "shared_layer",
            "dim": 64,
            "modalities": {
                "image": {"patch": 7, "depth": 1},
                "audio": {"patch": [40, 5], "depth": 1},
            },
            "options": {"builder": BUILDER, "num_heads": 4},
        },
        "optim": {"lr": 2e-3, "weight_decay": 1e-4},
        "trainer": {"max_epochs": 2 if quick else 5, "patience": None, "progress_bar": False},
    }
    config = from_dict(ExperimentConfig, values)
    config.out_dir = str(home() / "bench" / "abpem" / params_key(config.to_dict()))
    return config


def source_model(quick: bool = False) -> tuple[ExperimentConfig, nn.Module, dict[str, float]]:
    """The trained source model (trained on first use, then read from the cache).

    Returns:
        ``(config, model in eval mode, its test metrics on clean data)``.
    """
    from polymodal.bench.fusion import train_cached
    from polymodal.train.recipe import load_trained

    config = experiment(quick)
    metrics = train_cached(config)
    _, model, _ = load_trained(config.out_dir)
    return config, model, metrics


@dataclass
class Stream:
    """A test set in batches: ``batches[i]`` (modality tensors) and ``labels[i]`` (B,)."""

    batches: list[dict[str, Tensor]]
    labels: list[Tensor]

    @property
    def size(self) -> int:
        return sum(len(y) for y in self.labels)


def make_stream(tensors: Mapping[str, Tensor], seed: int, batch_size: int = BATCH_SIZE) -> Stream:
    """Cut ``tensors`` (``image``, ``audio``, ``label``, ...) into batches in a seeded order."""
    labels = tensors["label"]
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    modalities = [k for k in ("image", "audio") if k in tensors]
    batches, targets = [], []
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        batches.append({m: tensors[m][idx].float() for m in modalities})
        targets.append(labels[idx])
    return Stream(batches, targets)


@torch.no_grad()
def encode_stream(model: nn.Module, stream: Stream) -> list[FusionTokens]:
    """The encoder output of every batch (shared by the methods that keep encoders frozen)."""
    return [model.encode(b) for b in stream.batches]  # type: ignore[operator]


@dataclass
class RunResult:
    """Per-batch outcome of one method on one stream."""

    method: str
    correct: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        """Correct predictions over all samples (skipped samples count as wrong)."""
        return sum(self.correct) / max(1, sum(self.sizes))

    @property
    def batch_accuracy(self) -> list[float]:
        return [c / max(1, n) for c, n in zip(self.correct, self.sizes, strict=True)]


def run_stream(
    adapter: TestTimeAdapter, stream: Stream, encoded: Sequence[FusionTokens] | None = None
) -> RunResult:
    """Reset ``adapter`` to the source model, then adapt and predict batch after batch.

    Args:
        adapter: the method wrapped around its own copy of the model.
        stream: the test batches.
        encoded: the stream's encoder output (:func:`encode_stream`), when the
            method keeps the encoders frozen; skips encoding again.
    """
    adapter.reset()
    result = RunResult(adapter.method.name)
    for i, (batch, labels) in enumerate(zip(stream.batches, stream.labels, strict=True)):
        out = adapter.step_encoded(encoded[i]) if encoded is not None else adapter.step(batch)
        hits = (out.logits.argmax(dim=-1) == labels) & out.valid
        result.correct.append(int(hits.sum()))
        result.sizes.append(len(labels))
        result.skipped.append(int((~out.valid).sum()))
    return result


def make_adapters(
    model: nn.Module, methods: Sequence[str], **options: Any
) -> dict[str, TestTimeAdapter]:
    """One adapter per method, each around its own copy of ``model``.

    Args:
        model: the source model (left untouched).
        methods: method names (``none``, ``tent``, ``read``, ``abpem``).
        **options: :class:`TestTimeAdapter` options (``lr``, ``cache_size``, ...).
    """
    return {
        name: TestTimeAdapter(copy.deepcopy(model), make_method(name), **options)
        for name in methods
    }
