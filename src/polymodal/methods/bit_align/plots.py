"""Figures of the ``bit_align`` check: heatmaps side by side, and parameters vs KLD."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from polymodal.plots import pyplot, save_figure


def parameters_plot(
    trainable: Mapping[str, int], kld: Mapping[str, Sequence[np.ndarray]], path: Path
) -> Path:
    """Mean unseen KLD (± std over seeds) against trainable parameters, one point per
    model (log axis).

    Args:
        trainable: model -> its trainable parameters.
        kld: model -> per-seed arrays of per-image KLD.
        path: the PNG to write.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, count in trainable.items():
        means = [float(k.mean()) for k in kld[name]]
        ax.errorbar(count, np.mean(means), yerr=np.std(means), marker="o", capsize=3, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters")
    ax.set_ylabel("test KLD, unseen objects (lower is better)")
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def heatmap_plot(runs: Mapping[str, str], path: Path, count: int = 4) -> Path:
    """The first ``count`` unseen test views: RGB, depth, ground truth and every
    model's map (one row per view).

    Args:
        runs: model name -> a finished run folder (seed 0).
        path: the PNG to write.
        count: views to show.
    """
    from polymodal.data.contract import collate
    from polymodal.train.recipe import load_trained

    maps, batch = {}, None
    for name, run_dir in runs.items():
        _, model, data = load_trained(run_dir)
        if batch is None:
            test: Any = data.dataset("test")
            batch = collate([test[i] for i in range(min(count, len(test)))])
        with torch.no_grad():
            maps[name] = model(batch).heatmap.numpy()
    assert batch is not None
    columns = ["RGB", "depth", "ground truth", *maps]
    rows = len(batch["image"])
    plt = pyplot()
    fig, axes = plt.subplots(
        rows, len(columns), figsize=(1.6 * len(columns), 1.6 * rows), squeeze=False
    )
    for r in range(rows):
        shown = [
            batch["image"][r].permute(1, 2, 0).numpy(),
            batch["depth"][r, 0].numpy(),
            batch["heatmap"][r].numpy(),
            *(m[r] for m in maps.values()),
        ]
        for c, image in enumerate(shown):
            ax = axes[r, c]
            ax.imshow(image, cmap=None if c == 0 else "magma" if c > 1 else "gray_r")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(columns[c], fontsize=6)
    return save_figure(fig, path)
