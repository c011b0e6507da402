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


def bar_chart(
    values: Mapping[str, Sequence[float]],
    path: Path,
    title: str,
    ylabel: str,
    highlight: Sequence[str] = (),
) -> Path:
    """Bars of the mean per name with ±1 std error bars and the individual runs as dots.

    Args:
        values: name -> one value per seed.
        path: PNG file to write.
        highlight: names drawn in the accent colour (e.g. the fusion models).
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
    low = min(min(v) for v in values.values())
    ax.set_ylim(max(0.0, low - 0.1), min(1.0, max(means) + max(stds) + 0.05))
    ax.set_xticks(xs, names, rotation=15)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)
