"""Figures for ABPEM: attention gap against severity, accuracy along a test stream."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from polymodal.bench.plots import pyplot, save_figure


def gap_vs_severity(
    gaps: Mapping[str, Mapping[str, Sequence[float]]], path: Path, title: str
) -> Path:
    """One panel per corrupted modality: a thin line per corruption (the three highest
    named), the mean in bold.

    Args:
        gaps: ``{modality: {corruption: [gap at severity 0, 1, ..., 5]}}``.
        path: PNG file to write.
    """
    import numpy as np

    plt = pyplot()
    fig, axes = plt.subplots(1, len(gaps), figsize=(5 * len(gaps), 3.6), squeeze=False)
    for ax, (modality, curves) in zip(axes[0], gaps.items(), strict=True):
        highest = sorted(curves, key=lambda n: curves[n][-1])[-3:]  # label only these
        for name, values in curves.items():
            ax.plot(range(len(values)), values, color="grey", lw=0.8, alpha=0.6)
            if name in highest:
                ax.annotate(name, (len(values) - 1, values[-1]), fontsize=7, color="dimgrey")
        mean = np.mean([list(v) for v in curves.values()], axis=0)
        ax.plot(range(len(mean)), mean, "o-", color="tab:red", lw=2.2, label="mean")
        ax.set_xlabel("severity")
        ax.set_ylabel("attention gap (nats)")
        ax.set_title(f"{modality} corrupted")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return save_figure(fig, path)


def stream_accuracy(
    runs: Mapping[str, Mapping[str, Sequence[float]]], path: Path, title: str
) -> Path:
    """Cumulative accuracy along the stream, one panel per corruption, a line per method.

    Args:
        runs: ``{corruption: {method: per-batch accuracy}}``.
        path: PNG file to write.
    """
    import numpy as np

    plt = pyplot()
    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3.6), squeeze=False)
    for ax, (corruption, methods) in zip(axes[0], runs.items(), strict=True):
        for method, accuracy in methods.items():
            steps = np.arange(1, len(accuracy) + 1)
            ax.plot(steps, np.cumsum(accuracy) / steps, label=method)
        ax.set_xlabel("batch")
        ax.set_ylabel("running mean of batch accuracy")
        ax.set_title(corruption)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return save_figure(fig, path)
