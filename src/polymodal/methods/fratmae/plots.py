"""Figures of the ``fratmae`` check: metric vs label share, and masked reconstructions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from polymodal.plots import pyplot, save_figure


def fraction_plot(
    means: Mapping[tuple[str, str, float], Sequence[float]],
    fractions: Sequence[float],
    inits: Sequence[str],
    metrics: Mapping[str, str],
    path: Path,
) -> Path:
    """One panel per task: the mean over seeds (± std) of each initialisation
    against the share of training labels (log axis).

    Args:
        means: ``(task, init, fraction) -> per-seed means``.
        fractions: label shares, ascending.
        inits: initialisations, one line each.
        metrics: ``task -> metric name`` (the panels).
        path: the PNG to write.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6))
    for ax, (task, metric) in zip(np.atleast_1d(axes), metrics.items(), strict=True):
        for init in inits:
            values = [means[(task, init, f)] for f in fractions]
            ax.errorbar(
                [100 * f for f in fractions],
                [np.mean(v) for v in values],
                yerr=[np.std(v) for v in values],
                marker="o",
                capsize=3,
                label=init,
            )
        ax.set_xscale("log")
        ax.set_xlabel("training labels (%)")
        ax.set_ylabel(f"test {metric}")
        ax.set_title(f"{metric} vs label share")
        ax.legend()
    return save_figure(fig, path)


def reconstruction_plot(run_dir: str | Path, path: Path, case: int = 0) -> Path:
    """Middle axial slice of one test case: input, what the encoder saw (hidden
    patches grey) and the reconstruction, for PET and CT (rows).

    Args:
        run_dir: a finished FratMAE pre-training run.
        path: the PNG to write.
        case: index of the test case.
    """
    from polymodal.train.recipe import load_trained

    _, model, data = load_trained(run_dir)
    sample = data.dataset("test")[case]
    batch = {k: v[None] for k, v in sample.items()}
    torch.manual_seed(0)
    with torch.no_grad():
        out = model(batch)
    plt = pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(8, 5.5))
    for row, modality in enumerate(("pet", "ct")):
        volume = batch[modality][0]
        middle = volume.shape[0] // 2
        patch = model.patch  # (P_d, P_h, P_w)
        grid = [n // p for n, p in zip(volume.shape, patch, strict=True)]
        hidden = out.mask[modality][0].reshape(grid)  # (d, h, w) 1 = hidden
        hidden = hidden.repeat_interleave(patch[0], 0).repeat_interleave(patch[1], 1)
        hidden = hidden.repeat_interleave(patch[2], 2).bool()
        seen = volume.clone()
        seen[hidden] = float("nan")
        images = (volume, seen, out.reconstruction[modality][0])
        for col, (image, title) in enumerate(
            zip(images, ("input", "visible (25 %)", "reconstruction"), strict=True)
        ):
            ax = axes[row, col]
            ax.imshow(
                image[middle].numpy(),
                cmap="magma" if modality == "pet" else "gray",
                vmin=float(volume.min()),  # one scale per row: input and output comparable
                vmax=float(volume.max()),
            )
            ax.set_title(f"{modality.upper()} {title}")
            ax.axis("off")
    return save_figure(fig, path)
