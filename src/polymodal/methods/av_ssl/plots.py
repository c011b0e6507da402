"""Figures of the ``av_ssl`` check: accuracy vs labels per class, localisation maps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from polymodal.plots import pyplot, save_figure


def accuracy_plot(
    means: Mapping[tuple[str, int], Sequence[float]],
    methods: Sequence[str],
    per_class: Sequence[int],
    path: Path,
) -> Path:
    """Test accuracy (mean ± std over seeds) of each method against labels per class.

    Args:
        means: ``(method, labels per class) -> per-seed accuracies``.
        methods: one line each.
        per_class: the x values, ascending.
        path: the PNG to write.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for method in methods:
        values = [means[(method, k)] for k in per_class]
        ax.errorbar(
            list(per_class),
            [np.mean(v) for v in values],
            yerr=[np.std(v) for v in values],
            marker="o",
            capsize=3,
            label=method,
        )
    ax.set_xscale("log")
    ax.set_xticks(list(per_class), [str(k) for k in per_class])
    ax.set_xlabel("labelled clips per class")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def localisation_plot(
    videos: torch.Tensor,
    maps: torch.Tensor,
    truth: torch.Tensor,
    found: torch.Tensor,
    labels: torch.Tensor,
    path: Path,
) -> Path:
    """Per clip (rows): the middle frame with the true (green) and localised (red)
    boxes, and the audio–patch similarity map of that frame's time slice.

    Args:
        videos: (K, T, C, S, S) clips.
        maps: (K, t, h, w) localisation maps.
        truth, found: (K, T, 4) true and localised boxes ``(y0, x0, y1, x1)``.
        labels: (K,) the sounding digits.
        path: the PNG to write.
    """
    plt = pyplot()
    count, frames, size = videos.shape[0], videos.shape[1], videos.shape[-1]
    middle = frames // 2
    slice_of = middle * maps.shape[1] // frames
    fig, axes = plt.subplots(count, 2, figsize=(4, 2 * count), squeeze=False)
    for k in range(count):
        frame = videos[k, middle].float().mean(dim=0)
        axes[k, 0].imshow(frame, cmap="gray", vmin=0, vmax=1)
        for box, colour in ((truth[k, middle], "lime"), (found[k, middle], "red")):
            y0, x0, y1, x1 = (float(v) for v in box)
            axes[k, 0].add_patch(
                plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, color=colour)
            )
        axes[k, 0].set_title(f"sounding: {int(labels[k])}", fontsize=8)
        heat = F.interpolate(
            maps[k, slice_of][None, None].float(), size=(size, size), mode="bilinear"
        )
        axes[k, 1].imshow(heat[0, 0], cmap="magma")
        axes[k, 1].set_title("audio–patch similarity", fontsize=8)
        for ax in axes[k]:
            ax.axis("off")
    return save_figure(fig, path)
