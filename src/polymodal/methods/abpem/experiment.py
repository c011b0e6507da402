"""Test streams, adaptation runs and the cached AV-Digits model shared by the claim and the CLI.

:func:`corrupted_test_split` gives a trained run's test split under one corruption.

A *stream* is a corrupted test set cut into batches in a seeded order. Every method
sees the same batches; each run starts from the source model
(:meth:`~polymodal.methods.abpem.adapt.TestTimeAdapter.reset`) and adapts online.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from polymodal.data.cache import run_folder
from polymodal.errors import ConfigError
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

    The run folder lives under ``$POLYMODAL_HOME/bench/abpem``, keyed by the config and code.
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
    code = (
        "polymodal.train.recipe",
        "polymodal.methods.abpem.model",
        "polymodal.data.synth.av_digits",
    )
    config.out_dir = str(run_folder("bench/abpem", config.to_dict(), code=code))
    return config


def source_model(quick: bool = False) -> tuple[ExperimentConfig, nn.Module, dict[str, float]]:
    """The trained source model (trained on first use, then read from the cache).

    Returns:
        ``(config, model in eval mode, its test metrics on clean data)``.
    """
    from polymodal.train.recipe import load_trained, train_cached

    config = experiment(quick)
    metrics = train_cached(config).metrics
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
    """Per-batch and per-sample outcome of one method on one stream.

    Attributes:
        method: the method's name.
        correct, sizes, skipped: per batch, correct predictions, samples and samples
            skipped for non-finite input.
        hits: per sample in stream order, 1.0 when the prediction made after the
            update is right (skipped samples count as wrong); methods run on the same
            stream give paired items.
        seconds: wall time of the run.
    """

    method: str
    correct: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    hits: list[float] = field(default_factory=list)
    seconds: float = 0.0

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
    started = time.perf_counter()
    adapter.reset()
    result = RunResult(adapter.method.name)
    for i, (batch, labels) in enumerate(zip(stream.batches, stream.labels, strict=True)):
        out = adapter.step_encoded(encoded[i]) if encoded is not None else adapter.step(batch)
        hits = (out.logits.argmax(dim=-1) == labels) & out.valid
        result.correct.append(int(hits.sum()))
        result.sizes.append(len(labels))
        result.skipped.append(int((~out.valid).sum()))
        result.hits.extend(hits.float().tolist())
    result.seconds = time.perf_counter() - started
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


def corrupted_test_split(
    config: ExperimentConfig, corruption: Any, seed: int, samples: int = 0
) -> dict[str, Any]:
    """A run's test split with one modality corrupted, as stacked tensors.

    AV-Digits and AV-MNIST corrupt audio on the waveform; any other data set with an
    ``image`` modality takes the image corruptions.

    Args:
        config: the run's config (its ``data`` section names the data set).
        corruption: a :class:`~polymodal.data.corrupt.Corruption`, or None for clean data.
        seed: seed of the corruption.
        samples: keep the first N samples (0: all).

    Returns:
        ``{key: (N, ...) tensor}``, the modalities and ``label``.

    Raises:
        ConfigError: AV-MNIST without its folders, or an audio corruption of a data
            set that offers no waveforms.
    """
    from polymodal.data.corrupt import av_digits_c, av_mnist_c, corrupt_images

    options = dict(config.data.options)
    name = config.data.name
    if name == "av_digits":
        indices = list(range(samples)) if samples else None
        return dict(av_digits_c(corruption, seed=seed, indices=indices, **options).tensors)
    elif name == "av_mnist":
        folders = {k: options.pop(k, None) for k in ("mnist_folder", "fsdd_root")}
        if not all(folders.values()):
            raise ConfigError("av_mnist needs data.options.mnist_folder and fsdd_root")
        tensors = dict(
            av_mnist_c(
                folders["mnist_folder"], folders["fsdd_root"], corruption, seed, **options
            ).tensors
        )
    else:
        from polymodal.data.contract import collate
        from polymodal.data.registry import build_dataset

        if corruption is not None and corruption.modality != "image":
            raise ConfigError(
                f"audio corruptions need waveforms; data set {name!r} only offers features "
                "(supported: av_digits, av_mnist)"
            )
        dataset = build_dataset(name, "test", **options)
        tensors = collate([dataset[i] for i in range(len(dataset))])  # type: ignore[arg-type]
        if corruption is not None:
            tensors["image"] = corrupt_images(
                tensors["image"], corruption.name, corruption.severity, seed
            )
    if samples:
        tensors = {k: v[:samples] for k, v in tensors.items()}
    return tensors
