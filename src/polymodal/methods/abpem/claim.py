"""Claim checks ``abpem`` and ``abpem_av_mnist``: test-time adaptation, one modality corrupted.

A CAV-MAE-style model (:mod:`~polymodal.methods.abpem.model`) is trained once on a
clean AV-Digits build (``configs/abpem_av_digits.yaml``) and cached. At test time one
modality is corrupted at severity 5 and streamed in batches of 16 in a seeded order; no
adaptation, Tent, READ and ABPEM each adapt online from the
source model on the *same* stream with their defaults (Adam, lr 1e-4, one step per
batch) and are scored per sample on the predictions made after each update.

Equal, paper-sized budgets: the paper's streams give 300-440 updates (Kinetics50-C,
about 2,400 clips at batch 8; VGGSound-C, about 14,000 at batch 32). The 1,000-sample
test split gives only 63 batches of 16, so the streams come from a larger test build
of the same AV-Digits data (``test:`` :data:`STREAM_SAMPLES`; train and val are drawn
by their own generators and stay identical, so the cached source model is unchanged):
4,800 samples, 300 updates for every method. Batches stay at 16 (between the paper's 8
and 32), which keeps ABPEM's cache at two batches, the paper's ratio.

Each adaptation step costs about 0.1 s for the four methods together (Tent's, with a
full forward and backward through the encoders, is half of it), so a 300-update stream
takes half a minute to a minute on a shared core. The default size therefore runs a
subset of the corruptions (:data:`SUITES` ``"default"``: READ's Gaussian noise and one
environmental overlay (wind) on the audio; ImageNet-C Gaussian noise and contrast on the
images; 3 seeds each, 13 streams with the clean one, about 15 min); the full suite (6
audio + 15 image corruptions × 3 seeds, 64 streams, about an hour) runs with
``POLYMODAL_ABPEM_SUITE=full``. The source model's attention gap is measured at
severities 0-5 for every corruption of the full suite in any case (it is cheap).

Verdict (:func:`criterion_parts`): paired bootstraps over the stream items, pooled over
corruptions and seeds, for ABPEM − READ, READ − Tent and Tent − none (the average of the
audio- and the image-corrupted accuracy); and, per corrupted modality, Spearman ρ of the
mean gap curve and gap(5) − gap(0), bootstrapped over the gap sweep's samples.

``abpem_av_mnist`` runs the same comparison, parts and margins on real AV-MNIST from the
folder ``polymodal bench --data DIR`` gives (:data:`~polymodal.methods.abpem.experiment.AV_MNIST`):
the same model and recipe (``configs/abpem_av_mnist.yaml``, only the data section
differs; MultiBench's 25 % PCA-energy images) trained on the AV-MNIST train split.
Its test split has only 300 FSDD recordings, so the streams pair each recording with
16 test-pool images (4,800 pairs, 300 updates); a recording's audio repeats across its
pairs, so the bootstrap over items understates the between-recording noise.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from polymodal.bench.claims import ClaimCheck, Context, Outcome, Table
from polymodal.bench.registry import register
from polymodal.bench.report import mean_std, table
from polymodal.bench.verdict import RESAMPLES, Part, bootstrap
from polymodal.data.corrupt import AUDIO_CORRUPTIONS, IMAGE_CORRUPTIONS, Corruption
from polymodal.methods.abpem.experiment import AV_DIGITS, AV_MNIST, AbpemBench
from polymodal.train.config import ExperimentConfig

METHODS = ("none", "tent", "read", "abpem")
COMPARED = (("abpem", "read"), ("read", "tent"), ("tent", "none"))
"""The accuracy parts: each method against the next weaker one in the claimed order."""
NAMES = {"none": "none", "tent": "Tent", "read": "READ", "abpem": "ABPEM"}
MODALITIES = ("audio", "image")
SEVERITY = 5
SEEDS = (0, 1, 2)
BATCH = 16
"""Test batch size (:data:`~polymodal.methods.abpem.experiment.BATCH_SIZE`)."""
STREAM_SAMPLES = 4800
"""Samples per stream: the size of the larger test build, 300 updates at batch 16."""
QUICK_STREAM_SAMPLES = 1600
"""Smoke size: 100 updates per stream."""
GAP_SAMPLES = 256
QUICK_GAP_SAMPLES = 64
RHO_MIN = 0.8
SUITES: dict[str, dict[str, tuple[str, ...]]] = {
    "quick": {"audio": ("gaussian_noise", "wind"), "image": ("gaussian_noise", "contrast")},
    "default": {"audio": ("gaussian_noise", "wind"), "image": ("gaussian_noise", "contrast")},
    "full": {"audio": tuple(AUDIO_CORRUPTIONS), "image": tuple(IMAGE_CORRUPTIONS)},
}
"""Corruptions of the accuracy streams; ``"full"`` with ``POLYMODAL_ABPEM_SUITE=full``."""
SUITE_VARIABLE = "POLYMODAL_ABPEM_SUITE"

Hits = Mapping[str, Mapping[str, Sequence[np.ndarray]]]
"""``{method: {modality: [per-sample correctness (N,) of each stream]}}``."""


def suite_name(quick: bool) -> str:
    """``"quick"``, or the default-size suite ``$POLYMODAL_ABPEM_SUITE`` names (``"default"``)."""
    if quick:
        return "quick"
    name = os.environ.get(SUITE_VARIABLE, "default")
    if name not in ("default", "full"):
        raise ValueError(f"{SUITE_VARIABLE} must be 'default' or 'full', got {name!r}")
    return name


def _modality_average(
    ours: Mapping[str, Sequence[np.ndarray]], baseline: Mapping[str, Sequence[np.ndarray]]
) -> tuple[list[np.ndarray], Any]:
    """Per-stream differences, and the statistic: mean over modalities of the mean over
    that modality's streams of the (resampled) per-stream mean difference."""
    diffs = [ours[m][i] - baseline[m][i] for m in MODALITIES for i in range(len(ours[m]))]
    owner = [m for m in MODALITIES for _ in range(len(ours[m]))]

    def statistic(indices: list[np.ndarray]) -> float:
        means: dict[str, list[float]] = {m: [] for m in MODALITIES}
        for d, m, idx in zip(diffs, owner, indices, strict=True):
            means[m].append(float(d[idx].mean()))
        return float(np.mean([np.mean(means[m]) for m in MODALITIES]))

    return diffs, statistic


def _spearman(curve: np.ndarray) -> float:
    """Spearman ρ of (0, 1, ..., S-1) and ``curve`` (S,); 0 for a flat curve."""
    from scipy.stats import rankdata

    ranks = rankdata(curve)
    if np.ptp(ranks) == 0:
        return 0.0
    return float(np.corrcoef(np.arange(len(curve)), ranks)[0, 1])


def _gap_parts(modality: str, values: np.ndarray, resamples: int) -> list[Part]:
    """Spearman ρ and gap(5) − gap(0) of the mean gap curve of ``values`` (S, C, 6, N),
    resampling the N samples of each seed (the same indices at every severity)."""

    def curve(indices: list[np.ndarray]) -> np.ndarray:
        """(6,) mean gap over seeds, corruptions and the resampled samples."""
        per_seed = [values[s][..., idx].mean(axis=(0, 2)) for s, idx in enumerate(indices)]
        return np.asarray(np.mean(per_seed, axis=0))

    def rise(indices: list[np.ndarray]) -> float:
        c = curve(indices)
        return float(c[-1] - c[0])

    sizes = [values.shape[-1]] * values.shape[0]
    rho = bootstrap(lambda idx: _spearman(curve(idx)), sizes, resamples)
    return [
        Part.of(f"{modality}-corrupted gap: Spearman ρ(severity, gap)", rho, RHO_MIN),
        Part.of(
            f"{modality}-corrupted gap: gap at 5 − gap at 0", bootstrap(rise, sizes, resamples), 0.0
        ),
    ]


def criterion_parts(
    hits: Hits, gaps: Mapping[str, np.ndarray], resamples: int = RESAMPLES
) -> list[Part]:
    """The criterion's parts, each with its 95 % bootstrap interval.

    Args:
        hits: per-sample correctness (1.0 right, 0.0 wrong) of every method, one array
            per (corruption, seed) stream, in the same stream order for every method;
            every method needs the ``audio`` and ``image`` streams.
        gaps: ``{modality: (seeds, corruptions, 6, N)}`` per-sample attention gap of the
            source model at severities 0-5; the same N samples at every severity.
        resamples: bootstrap replicates.

    Returns:
        ABPEM − READ, READ − Tent and Tent − none (each > 0: the average of the
        audio- and image-corrupted accuracy differences, resampling each stream's items
        with the same indices for both methods), then for each modality Spearman
        ρ(severity, mean gap) > :data:`RHO_MIN` and gap(5) − gap(0) > 0 (resampling the
        gap sweep's samples, the same indices at every severity and corruption).
    """
    parts: list[Part] = []
    for ours, base in COMPARED:
        diffs, statistic = _modality_average(hits[ours], hits[base])
        interval = bootstrap(statistic, [len(d) for d in diffs], resamples)
        parts.append(Part.of(f"{NAMES[ours]} − {NAMES[base]} accuracy", interval, 0.0))
    for modality, per_sample in gaps.items():
        parts += _gap_parts(modality, np.asarray(per_sample, dtype=np.float64), resamples)
    return parts


def _accuracy_runs(
    model: nn.Module,
    config: ExperimentConfig,
    suite: Mapping[str, Sequence[str]],
    seeds: Sequence[int],
    clean_seeds: Sequence[int],
    progress: str,
) -> tuple[dict[str, dict[str, dict[str, list[np.ndarray]]]], dict[str, float]]:
    """Per-sample correctness ``{group: {corruption: {method: [(N,) per seed]}}}`` (clean
    data under ``"clean"``) and the seconds spent (``"data"``, ``"encode"``, per method).

    ``config`` names the stream build (its test split); ``progress``, when not empty,
    prefixes a line per corruption.

    Every seed streams the whole test build, corrupted and ordered by that seed; the four
    methods adapt on that one stream. Tent runs the full model on every batch; the others
    read the stream's encoder output, computed once (checked equal to a fresh encoding).
    """
    import torch

    from polymodal.methods.abpem.experiment import (
        corrupted_test_split,
        encode_stream,
        make_adapters,
        make_stream,
        run_stream,
    )

    adapters = make_adapters(model, METHODS)
    seconds = dict.fromkeys(["data", "encode", *METHODS], 0.0)
    jobs: list[tuple[str, str, Corruption | None, Sequence[int]]] = [
        ("clean", "clean", None, clean_seeds)
    ]
    jobs += [(m, n, Corruption(m, n, SEVERITY), seeds) for m, names in suite.items() for n in names]
    results: dict[str, dict[str, dict[str, list[np.ndarray]]]] = {}
    for group, name, spec, job_seeds in jobs:
        hits: dict[str, list[np.ndarray]] = {m: [] for m in METHODS}
        for seed in job_seeds:
            started = time.perf_counter()
            stream = make_stream(corrupted_test_split(config, spec, seed), seed, BATCH)
            encoding = time.perf_counter()
            encoded = encode_stream(model, stream)
            seconds["data"] += encoding - started
            seconds["encode"] += time.perf_counter() - encoding
            with torch.no_grad():  # the shortcut sees what a full forward would
                if not torch.equal(model.encode(stream.batches[0]).tokens, encoded[0].tokens):  # type: ignore[operator]
                    raise RuntimeError("encode_stream differs from the model's own encoding")
            for method, adapter in adapters.items():
                frozen = method != "tent"  # Tent adapts the encoders' norms
                run = run_stream(adapter, stream, encoded if frozen else None)
                if len(run.hits) != stream.size:
                    raise RuntimeError(f"{method} scored {len(run.hits)} of {stream.size} samples")
                hits[method].append(np.asarray(run.hits))
                seconds[method] += run.seconds
        results.setdefault(group, {})[name] = hits
        if progress:
            line = ", ".join(f"{m} {np.mean([h.mean() for h in v]):.3f}" for m, v in hits.items())
            print(f"{progress}: {spec or 'clean'}: {line}", flush=True)
    return results, seconds


def _gap_sweep(
    model: nn.Module,
    config: ExperimentConfig,
    suite: Mapping[str, Sequence[str]],
    indices: Sequence[int],
    seeds: Sequence[int],
) -> dict[str, dict[str, np.ndarray]]:
    """``{modality: {corruption: (seeds, 6, N)}}`` per-sample attention gap of the source
    model at severity 0 (clean) to 5, on the N test samples ``indices`` of ``config``."""
    import torch

    from polymodal.methods.abpem.experiment import corrupted_test_split
    from polymodal.methods.abpem.gap import attention_gap

    def gaps(spec: Corruption | None, seed: int) -> np.ndarray:
        data = corrupted_test_split(config, spec, seed, indices=indices)
        with torch.no_grad():
            batch = {"image": data["image"].float(), "audio": data["audio"].float()}
            out = model(batch, return_attention=True)
        return attention_gap(out.attention_logits, out.fused.segments).numpy()

    clean = gaps(None, 0)
    return {
        modality: {
            name: np.stack(
                [
                    np.stack(
                        [clean] + [gaps(Corruption(modality, name, s), seed) for s in range(1, 6)]
                    )
                    for seed in seeds
                ]
            )
            for name in names
        }
        for modality, names in suite.items()
    }


def _accuracy(hits: Sequence[np.ndarray]) -> list[float]:
    return [float(h.mean()) for h in hits]


def _tables(
    runs: dict[str, dict[str, dict[str, list[np.ndarray]]]],
    gaps: dict[str, dict[str, np.ndarray]],
    per_seed: dict[str, dict[str, list[float]]],
    seconds: dict[str, float],
    updates: int,
    streams: int,
) -> list[Table]:
    """Every compared quantity as mean ± std over seeds, and the cost."""
    tables = [
        table(
            f"Accuracy at severity {SEVERITY}, mean over corruption types (mean ± std over seeds)",
            ["corrupted modality", *(NAMES[m] for m in METHODS)],
            [
                [group, *(mean_std(per_seed[group][m]) for m in METHODS)]
                for group in [*MODALITIES, "average of the two"]
            ],
        )
    ]
    for modality in MODALITIES:
        rows = [
            [name, *(mean_std(_accuracy(v[m])) for m in METHODS)]
            for name, v in runs[modality].items()
        ]
        tables.append(
            table(
                f"{modality.capitalize()} corrupted, severity {SEVERITY}: accuracy "
                "(mean ± std over seeds)",
                ["corruption", *(NAMES[m] for m in METHODS)],
                rows,
            )
        )
    clean = runs["clean"]["clean"]
    change = {
        m: 100 * (np.mean(_accuracy(clean[m])) - np.mean(_accuracy(clean["none"]))) for m in METHODS
    }
    tables.append(
        table(
            "Clean test data: accuracy and change from no adaptation (points)",
            ["method", "accuracy", "change"],
            [[NAMES[m], mean_std(_accuracy(clean[m])), f"{change[m]:+.2f}"] for m in METHODS],
        )
    )
    curves = {  # (seeds, 6): per seed, mean over corruptions and samples
        m: np.mean([c.mean(axis=-1) for c in gaps[m].values()], axis=0) for m in gaps
    }
    tables.append(
        table(
            "Attention gap of the source model, mean over corruption types (mean ± std over seeds)",
            ["severity", *(f"{m} corrupted" for m in gaps)],
            [[s, *(mean_std(curves[m][:, s]) for m in gaps)] for s in range(6)],
        )
    )
    tables.append(
        table(
            f"Cost: {streams} streams of {updates} updates each (seconds, one thread)",
            ["what", "seconds", "ms per update"],
            [
                ["corrupt + batch the streams", f"{seconds['data']:.0f}", "—"],
                ["encode the streams (shared by none/READ/ABPEM)", f"{seconds['encode']:.0f}", "—"],
            ]
            + [
                [NAMES[m], f"{seconds[m]:.0f}", f"{1000 * seconds[m] / (streams * updates):.1f}"]
                for m in METHODS
            ],
        )
    )
    return tables


def run(context: Context, bench: AbpemBench = AV_DIGITS) -> Outcome:
    """Run the comparison on ``bench``'s data (see the module doc)."""
    import copy

    from polymodal.methods.abpem.adapt import select_parameters
    from polymodal.methods.abpem.experiment import source_model
    from polymodal.methods.abpem.plots import gap_vs_severity
    from polymodal.runtime import single_threaded

    suite_key = suite_name(context.quick)
    suite = SUITES[suite_key]
    seeds = SEEDS[:1] if context.quick else SEEDS
    samples = QUICK_STREAM_SAMPLES if context.quick else STREAM_SAMPLES
    gap_samples = QUICK_GAP_SAMPLES if context.quick else GAP_SAMPLES
    gap_suite = "quick" if context.quick else "full"
    started = time.perf_counter()
    with single_threaded():
        config, model, metrics = source_model(context.quick, bench, context.data_dir)
        trained = time.perf_counter()
        options = dict(config.data.options)
        streams_config = copy.deepcopy(config)  # the same data with a larger test split
        streams_config.data.options.update(bench.stream(samples))
        label = bench.name if context.progress else ""
        runs, seconds = _accuracy_runs(model, streams_config, suite, seeds, seeds[:1], label)
        adapted = time.perf_counter()
        gap_indices = bench.gap_indices(gap_samples)
        gaps = _gap_sweep(model, config, SUITES[gap_suite], gap_indices, seeds)
    finished = time.perf_counter()

    hits = {
        m: {g: [h for v in runs[g].values() for h in v[m]] for g in MODALITIES} for m in METHODS
    }
    per_seed: dict[str, dict[str, list[float]]] = {  # accuracy of each seed, mean over types
        g: {
            m: [
                float(np.mean([v[m][i].mean() for v in runs[g].values()]))
                for i in range(len(seeds))
            ]
            for m in METHODS
        }
        for g in MODALITIES
    }
    per_seed["average of the two"] = {
        m: [(a + b) / 2 for a, b in zip(per_seed["audio"][m], per_seed["image"][m], strict=True)]
        for m in METHODS
    }
    overall = {m: float(np.mean(per_seed["average of the two"][m])) for m in METHODS}
    parts = criterion_parts(hits, {m: np.stack(list(c.values()), axis=1) for m, c in gaps.items()})
    samples = len(hits["none"]["audio"][0])  # the stream build's actual size
    updates = -(-samples // BATCH)  # ceil: a last, smaller batch is an update too
    streams = len(seeds) * sum(len(n) for n in suite.values()) + 1
    plot = gap_vs_severity(
        {
            m: {n: c.mean(axis=(0, 2)).tolist() for n, c in curves.items()}
            for m, curves in gaps.items()
        },
        Path(context.out_dir) / f"{bench.name}_attention_gap.png",
        "Attention gap of the source model vs corruption severity",
    )
    clean = runs["clean"]["clean"]
    tent_before = sum(p.numel() for p in select_parameters(model, "fusion_norm").values())
    tent_after = sum(p.numel() for p in select_parameters(model, "norm").values())
    qkv = sum(p.numel() for p in select_parameters(model, "fusion_qkv").values())
    per_stream = (adapted - trained) / streams
    clean_change = 100 * (np.mean(_accuracy(clean["abpem"])) - np.mean(_accuracy(clean["none"])))
    full_streams = len(SEEDS) * sum(len(n) for n in SUITES["full"].values()) + 1
    described = {
        "samples": samples,
        "pairs": streams_config.data.options.get("pairs_per_recording"),
    }
    notes = (
        f"Source model: {config.out_dir} (clean test accuracy {metrics.get('test_acc', 0):.4f}"
        f", trained on {bench.title} with {options}). Streams: suite {suite_key!r}, "
        f"{bench.streams_note.format(**described)}, in batches of {BATCH}: "
        f"{updates} updates per stream for every method; order and corruption drawn from "
        f"each seed; clean data with seed {seeds[0]} only. Adapted parameters: Tent every "
        f"LayerNorm/BatchNorm/GroupNorm affine weight and bias, encoders included, as in the "
        f"Tent paper ({tent_after:,} parameters; {tent_before:,} when only the fusion-side "
        f"norms were adapted), full forward and backward per batch; READ and ABPEM the fusion "
        f"q/k/v ({qkv:,}), reading the shared encoder output. Losses (p_b = softmax of sample "
        "b's logits): Tent mean_b H(p_b); READ mean_b(−p_max,b log p_max,b) − "
        "H(softmax(Σ_b p_b)), as in READ's code; ABPEM mean_b PEM_k(p_b) − H(mean_b p_b) + "
        "w·L_AB with k = 2 of 10 classes, w = 1, 16 cached samples. Adaptation on clean data "
        f"changes ABPEM's accuracy by {clean_change:+.2f} points. Attention gap: "
        f"{bench.gap_note.format(n=gap_samples)}, seeds {list(seeds)}, every corruption of the "
        f"{gap_suite} suite. Intervals resample stream items; "
        f"{bench.items_note.format(**described)}. "
        f"Time: model {trained - started:.0f} s, adaptation {adapted - trained:.0f} s "
        f"({per_stream:.0f} s per stream; the full suite's {full_streams} streams would take "
        f"about {per_stream * full_streams * STREAM_SAMPLES / samples / 60:.0f} min), gap "
        f"sweep {finished - adapted:.0f} s."
    )
    if context.progress:
        print(f"{bench.name}: {notes}", flush=True)
    return Outcome(
        ours=overall["abpem"],
        baselines={NAMES[m]: overall[m] for m in ("none", "tent", "read")},
        parts=parts,
        seeds=list(seeds),
        tables=_tables(runs, gaps, per_seed, seconds, updates, streams),
        plots=[plot],
        notes=notes,
    )


METHOD = "ABPEM — attention bootstrapping + principal entropy minimisation"
CLAIM = (
    "With one modality corrupted at severity 5, ABPEM adapts an audio-visual fusion "
    "model better than READ, Tent and no adaptation, and the attention gap between "
    "cross- and self-attention grows with severity."
)
CRITERION = (
    "every part's 95 % interval (paired bootstrap over stream items, pooled over "
    "corruptions and seeds) must clear its margin: (1) ABPEM − READ > 0, (2) READ − "
    "Tent > 0, (3) Tent − no adaptation > 0 in online accuracy, each the average of "
    "the audio- and the image-corrupted mean difference (severity 5; margins 0, so "
    "the interval must lie above 0); (4) for audio- and for image-corrupted data, the "
    "source model's attention gap, averaged over corruption types, rises with severity "
    f"0-5: Spearman ρ(severity, gap) > {RHO_MIN} and gap at 5 − gap at 0 > 0 "
    "(intervals from resampling the gap sweep's samples)"
)

register(
    ClaimCheck(
        name="abpem",
        method=METHOD,
        paper="arXiv 2503.02221",
        claim=CLAIM,
        metric=(
            f"online accuracy on AV-Digits-C at severity {SEVERITY}, {STREAM_SAMPLES}-sample "
            f"streams ({STREAM_SAMPLES // BATCH} updates), mean over corruption types and 3 "
            "seeds, averaged over audio- and image-corrupted"
        ),
        criterion=CRITERION,
        run=run,
        default=False,
        skip_reason=(
            "about 11 min on two CPU cores (source model, a 4,800-sample test build and "
            "13 streams of 300 updates); run it with --only abpem"
        ),
    )
)
register(
    ClaimCheck(
        name="abpem_av_mnist",
        method=METHOD,
        paper="arXiv 2503.02221; AV-MNIST as in MultiBench",
        claim=CLAIM.replace("fusion model", "fusion model on real AV-MNIST"),
        metric=(
            f"online accuracy on AV-MNIST-C at severity {SEVERITY}, {STREAM_SAMPLES}-pair "
            f"streams (300 test recordings × 16 test-pool images; {STREAM_SAMPLES // BATCH} "
            "updates), mean over corruption types and 3 seeds, averaged over audio- and "
            "image-corrupted"
        ),
        criterion=CRITERION,
        run=lambda context: run(context, AV_MNIST),
        needs_data=True,
        default=False,
        skip_reason=(
            "about 6 min on two CPU cores (336 s measured: source model on AV-MNIST 60 s, "
            "13 streams of 300 updates 219 s, gap sweep 51 s); run it with --only "
            "abpem_av_mnist --data DIR"
        ),
    )
)
