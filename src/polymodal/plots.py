"""Plotting helpers on headless matplotlib, shared by claim checks and analyses.

Imports nothing from polymodal, so any layer may draw figures without importing
:mod:`polymodal.bench`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the headless Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path, dpi: int = 120) -> Path:
    """Lay out ``fig``, write it to ``path`` (folders created) and close it."""
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path


def y_limits(values: Mapping[str, Sequence[float]]) -> tuple[float, float]:
    """Y-axis limits that show every run and every ±1 std bar, padded by 10 % of their span.

    Values all within [0, 1] (accuracies, F1, rates) keep the axis inside [0, 1];
    others (seconds, losses, negative effects) are never clamped.

    Args:
        values: name -> one value per seed.

    Returns:
        ``(bottom, top)`` of the axis.
    """
    import numpy as np

    low, high = float("inf"), float("-inf")
    for runs in values.values():
        mean, std = float(np.mean(runs)), float(np.std(runs))
        low, high = min(low, min(runs), mean - std), max(high, max(runs), mean + std)
    pad = 0.1 * (high - low) or 0.1  # a flat chart still gets some room
    bottom, top = low - pad, high + pad
    if low >= 0.0 and high <= 1.0:
        bottom, top = max(0.0, bottom), min(1.0, top)
    return bottom, top


def bar_chart(
    values: Mapping[str, Sequence[float]],
    path: Path,
    title: str,
    ylabel: str,
    highlight: Sequence[str] = (),
    higher_is_better: bool | None = None,
) -> Path:
    """Bars of the mean per name with ±1 std error bars and the individual runs as dots.

    Args:
        values: name -> one value per seed.
        path: PNG file to write.
        highlight: names drawn in the accent colour (e.g. the fusion models).
        higher_is_better: the metric's direction, added to the y label
            (``"accuracy ↑"`` or ``"TPR ↓"``); None leaves the label as given.

    Returns:
        ``path``.
    """
    import numpy as np

    plt = pyplot()
    names = list(values)
    means = [float(np.mean(values[n])) for n in names]
    stds = [float(np.std(values[n])) for n in names]
    colors = ["tab:orange" if n in highlight else "tab:blue" for n in names]
    fig, ax = plt.subplots(figsize=(1.3 * len(names) + 2, 3.6))
    xs = np.arange(len(names))
    ax.bar(xs, means, yerr=stds, capsize=5, color=colors, alpha=0.85)
    for x, name in zip(xs, names, strict=True):
        ax.scatter([x] * len(values[name]), values[name], color="black", s=10, zorder=3)
    ax.set_ylim(*y_limits(values))
    ax.set_xticks(xs, names, rotation=15)
    if higher_is_better is not None:
        ylabel += " ↑ (higher is better)" if higher_is_better else " ↓ (lower is better)"
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)
