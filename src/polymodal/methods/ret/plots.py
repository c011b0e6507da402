"""Figures of the ``ret`` check: recall against k, and the cell's gates per layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from polymodal.plots import pyplot, save_figure


def recall_plot(curves: Mapping[str, Sequence[np.ndarray]], path: Path) -> Path:
    """Recall@k for k = 1…K of each model, mean ± std over seeds.

    Args:
        curves: ``model -> per-seed (K,) recall@1..K``.
        path: the PNG to write.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for name, per_seed in curves.items():
        values = np.stack(per_seed)  # (S, K)
        ks = np.arange(1, values.shape[1] + 1)
        ax.errorbar(ks, values.mean(0), yerr=values.std(0), marker="o", ms=3, capsize=2, label=name)
    ax.set_xlabel("k")
    ax.set_ylabel("test recall@k")
    ax.set_title("Shapes-Retrieval: recall vs k")
    ax.legend()
    return save_figure(fig, path)


def gate_plot(gates: Mapping[str, np.ndarray], path: Path) -> Path:
    """Mean gate value per layer, one panel per side.

    Args:
        gates: ``side -> (3, K)`` mean text input gate, visual input gate and forget
            gate at each of K layers (averaged over rows that have the modality).
        path: the PNG to write.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, len(gates), figsize=(5 * len(gates), 3.6), squeeze=False)
    for ax, (side, values) in zip(axes[0], gates.items(), strict=True):
        layers = np.arange(1, values.shape[1] + 1)
        for row, label in enumerate(("text input i_t", "visual input i_v", "forget f")):
            ax.plot(layers, values[row], marker="o", label=label)
        ax.set_xlabel("backbone layer")
        ax.set_ylabel("mean gate value")
        ax.set_ylim(0, 1)
        ax.set_title(f"ReT gates, {side} encoder")
        ax.legend()
    return save_figure(fig, path)
