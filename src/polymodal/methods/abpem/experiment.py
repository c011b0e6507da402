"""Test streams, adaptation runs and the cached source models shared by the claims and the CLI.

:class:`AbpemBench` names a data set of the comparison: :data:`AV_DIGITS` (embedded, the
``abpem`` check) or :data:`AV_MNIST` (real, ``abpem_av_mnist``). Both train the same
model by the same recipe (``configs/abpem_av_<data>.yaml``, which differ only in their
data section); :func:`source_model` trains it once and caches it.
:func:`corrupted_test_split` gives a trained run's test split under one corruption.

A *stream* is a corrupted test set cut into batches in a seeded order. Every method
sees the same batches; each run starts from the source model
(:meth:`~polymodal.methods.abpem.adapt.TestTimeAdapter.reset`) and adapts online.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from polymodal.data.cache import run_folder
from polymodal.data.real_folders import av_mnist_options
from polymodal.errors import ConfigError
from polymodal.methods.abpem.adapt import TestTimeAdapter
from polymodal.methods.abpem.methods import make_method
from polymodal.methods.abpem.model import FusionTokens
from polymodal.train.config import ExperimentConfig, load_config

BATCH_SIZE = 16
"""Test batch size: between the paper's 8 (Kinetics-Sounds) and 32 (VGGSound)."""
TEST_RECORDINGS = 300
"""FSDD's test split (takes 0-4 of its 6 speakers x 10 digits): AV-MNIST test recordings."""


@dataclass(frozen=True)
class AbpemBench:
    """One data set of the ABPEM comparison: where the source model learns and is tested.

    Args:
        name: the claim check's name (in progress lines and plot names).
        kind: cache family of the trained source model.
        config: the packaged recipe YAML; the model and training are the same for every
            data set, only its data section differs.
        quick: overrides that make the smoke size.
        data: overrides that point the recipe at the data, from ``Context.data_dir``.
        code: modules whose source keys the cached model, beside the recipe's and model's.
        title: the data set's name in texts.
        stream: data-option overrides that give a test build of about ``n`` samples.
        gap_indices: the ``n`` test samples of the attention-gap sweep.
        gap_note: which they are, formatted with ``n``.
        streams_note: how the stream build is made, formatted with ``samples`` and ``pairs``.
        items_note: what the stream items share, formatted the same way.
    """

    name: str
    kind: str
    config: str
    quick: tuple[str, ...]
    data: Callable[[Path | None], list[str]]
    code: tuple[str, ...]
    title: str
    stream: Callable[[int], dict[str, Any]]
    gap_indices: Callable[[int], list[int]]
    gap_note: str
    streams_note: str
    items_note: str


def _av_mnist_folders(root: Path | None) -> list[str]:
    if root is None:
        raise ConfigError("abpem_av_mnist needs a data folder (polymodal bench --data DIR)")
    return [f"data.options.{key}={value}" for key, value in av_mnist_options(root).items()]


AV_DIGITS = AbpemBench(
    name="abpem",
    kind="bench/abpem",
    config="abpem_av_digits",
    quick=(
        "data.options.train=1500",
        "data.options.val=300",
        "data.options.test=500",
        "data.options.voices=60",
        "trainer.max_epochs=2",
    ),
    data=lambda _: [],
    code=("polymodal.data.synth.av_digits",),
    title="AV-Digits",
    # Train and val are drawn by their own generators, so a larger test build leaves
    # them, and the cached source model, unchanged.
    stream=lambda n: {"test": n},
    gap_indices=lambda n: list(range(n)),  # the test split is in a random order
    gap_note="first {n} test samples",
    streams_note="the whole test split of a {samples}-sample test build (same train/val)",
    items_note=(
        "every stream holds the same test samples, which reuse the test split's digit "
        "scans and voices, so they do not cover a new draw of scans and voices"
    ),
)
AV_MNIST = AbpemBench(
    name="abpem_av_mnist",
    kind="bench/abpem_av_mnist",
    config="abpem_av_mnist",
    quick=("trainer.max_epochs=2",),
    data=_av_mnist_folders,
    code=("polymodal.data.real.datasets",),
    title="AV-MNIST",
    # The test split has only 300 recordings: pairing each with several test-pool
    # images gives paper-sized streams without touching the training data.
    stream=lambda n: {"pairs_per_recording": max(1, n // TEST_RECORDINGS)},
    # The test pairs are in digit order: spread the sweep's samples over every digit.
    gap_indices=lambda n: torch.linspace(0, TEST_RECORDINGS - 1, n).round().long().tolist(),
    gap_note="{n} test pairs (one per recording) spread evenly over the 300 test recordings",
    streams_note=(
        "the AV-MNIST test split with each of its test recordings paired with {pairs} "
        "test-pool images ({samples} pairs, the source model's train/val unchanged)"
    ),
    items_note=(
        "every stream holds the same pairs, and each test recording's audio repeats in "
        "{pairs} of them (and the test pool's 2,000 images once the pairs outnumber them), "
        "so the bootstrap over "
        "items understates the between-recording noise: the intervals do not cover a new "
        "draw of recordings"
    ),
)


def experiment(
    quick: bool = False, bench: AbpemBench = AV_DIGITS, data_dir: Path | None = None
) -> ExperimentConfig:
    """The source model's training run: the recipe YAML plus named overrides.

    Args:
        quick: a small data set (AV-Digits) and two epochs.
        bench: the data set.
        data_dir: the real-data folder, for data sets that need one.

    Returns:
        The config; its run folder lives under ``$POLYMODAL_HOME/<bench.kind>``, keyed by
        the config and code.
    """
    named = [*bench.data(data_dir), "trainer.progress_bar=false"]
    config = load_config(bench.config, [*named, *(bench.quick if quick else ())])
    code = ("polymodal.train.recipe", "polymodal.methods.abpem.model", *bench.code)
    # Where a run is written is not what it is: key with the default out_dir, as the
    # config was keyed before it came from the YAML, so cached models stay valid.
    params = {**config.to_dict(), "out_dir": ExperimentConfig().out_dir}
    config.out_dir = str(run_folder(bench.kind, params, code=code))
    return config


def source_model(
    quick: bool = False, bench: AbpemBench = AV_DIGITS, data_dir: Path | None = None
) -> tuple[ExperimentConfig, nn.Module, dict[str, float]]:
    """The trained source model (trained on first use, then read from the cache).

    Args:
        quick, bench, data_dir: as for :func:`experiment`.

    Returns:
        ``(config, model in eval mode, its test metrics on clean data)``.
    """
    from polymodal.train.recipe import load_trained, train_cached

    config = experiment(quick, bench, data_dir)
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
    config: ExperimentConfig,
    corruption: Any,
    seed: int,
    samples: int = 0,
    indices: Sequence[int] | None = None,
) -> dict[str, Any]:
    """A run's test split with one modality corrupted, as stacked tensors.

    AV-Digits and AV-MNIST corrupt audio on the waveform; any other data set with an
    ``image`` modality takes the image corruptions.

    Args:
        config: the run's config (its ``data`` section names the data set).
        corruption: a :class:`~polymodal.data.corrupt.Corruption`, or None for clean data.
        seed: seed of the corruption.
        samples: keep the first N samples (0: all).
        indices: keep these samples instead (before corrupting, where the data set can).

    Returns:
        ``{key: (N, ...) tensor}``, the modalities and ``label``.

    Raises:
        ConfigError: AV-MNIST without its folders, or an audio corruption of a data
            set that offers no waveforms.
    """
    from polymodal.data.corrupt import av_digits_c, av_mnist_c, corrupt_images

    options = dict(config.data.options)
    name = config.data.name
    if indices is None and samples:
        indices = list(range(samples))
    if name == "av_digits":
        return dict(av_digits_c(corruption, seed=seed, indices=indices, **options).tensors)
    elif name == "av_mnist":
        folders = {k: options.pop(k, None) for k in ("mnist_folder", "fsdd_root")}
        if not all(folders.values()):
            raise ConfigError("av_mnist needs data.options.mnist_folder and fsdd_root")
        tensors = dict(
            av_mnist_c(
                folders["mnist_folder"],
                folders["fsdd_root"],
                corruption,
                seed,
                indices=indices,
                **options,
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
        if indices is not None:
            keep = torch.as_tensor(indices, dtype=torch.long)
            tensors = {k: v[keep] for k, v in tensors.items()}
    return tensors
