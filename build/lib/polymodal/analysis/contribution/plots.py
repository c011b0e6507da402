"""Figures of a contribution analysis: m_i bars, patch heatmaps, tile rankings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from polymodal.bench.plots import pyplot, save_figure


def _display(image: Tensor) -> tuple[Tensor, str | None]:
    """An (H, W) or (H, W, 3) array for imshow and its colour map."""
    image = image.detach().float().cpu()
    if image.dim() == 4:  # (T, C, H, W) video: first frame
        image = image[0]
    if image.shape[0] == 3:
        low, high = image.min(), image.max()
        rgb = (image - low) / (high - low) if high > low else image
        return rgb.permute(1, 2, 0), None
    return image[0], "gray"


def contribution_bars(
    pooled: Mapping[str, float], per_sample: Mapping[str, float], path: Path, title: str
) -> Path:
    """Bars of the pooled m_i beside the per-sample-normalised m_i, values printed on top."""
    plt = pyplot()
    names = list(pooled)
    xs = torch.arange(len(names)).float()
    fig, ax = plt.subplots(figsize=(1.6 * len(names) + 2.5, 3.4))
    for offset, (label, values, color) in enumerate(
        (("pooled m_i", pooled, "tab:orange"), ("per-sample m_i", per_sample, "tab:blue"))
    ):
        heights = [values[n] for n in names]
        bars = ax.bar(xs + (offset - 0.5) * 0.38, heights, width=0.36, label=label, color=color)
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_xticks(xs.tolist(), names)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("modality contribution")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)


def patch_heatmaps(
    images: Tensor,
    scores: Tensor,
    grid: Sequence[int],
    mean_map: Tensor,
    path: Path,
    titles: Sequence[str] = (),
) -> Path:
    """The mean patch importance, then each image with its own occlusion heatmap on top.

    Args:
        images: (n, C, H, W) (or (n, T, C, H, W)) images to show.
        scores: (n, U) per-patch |Δp| of those images.
        grid: (gh, gw) patch grid, gh * gw = U.
        mean_map: (gh, gw) importance averaged over all analysed samples.
        path: PNG file to write.
        titles: a title per image (e.g. label and prediction).
    """
    plt = pyplot()
    n = images.shape[0]
    fig, axes = plt.subplots(1, n + 1, figsize=(2.2 * (n + 1), 2.6), squeeze=False)
    ax = axes[0, 0]
    shown = ax.imshow(mean_map.cpu().numpy(), cmap="inferno")
    ax.set_title("mean |Δp| per patch", fontsize=8)
    fig.colorbar(shown, ax=ax, fraction=0.046)
    size = images.shape[-2:]
    for i in range(n):
        ax = axes[0, i + 1]
        picture, cmap = _display(images[i])
        heat = scores[i].view(1, 1, *grid).float()
        heat = F.interpolate(heat, size=tuple(size), mode="nearest")[0, 0]
        ax.imshow(picture.numpy(), cmap=cmap)
        ax.imshow(heat.numpy(), cmap="inferno", alpha=0.55)
        ax.set_title(titles[i] if i < len(titles) else f"sample {i}", fontsize=8)
    for ax in axes[0]:
        ax.axis("off")
    return save_figure(fig, path)


def tile_rankings(
    tiles: Tensor, scores: Tensor, valid: Tensor, path: Path, per_bag: int = 6
) -> Path:
    """For each bag, its most and least important tiles, titled with their |Δp|.

    Args:
        tiles: (n, N, C, H, W) bags of tiles.
        scores: (n, N) per-tile |Δp|.
        valid: (n, N) which tiles exist.
        path: PNG file to write.
        per_bag: tiles shown per bag (the top half and the bottom half by score).
    """
    plt = pyplot()
    n = tiles.shape[0]
    fig, axes = plt.subplots(n, per_bag, figsize=(1.5 * per_bag, 1.7 * n), squeeze=False)
    for b in range(n):
        real = valid[b].nonzero().flatten()
        order = real[scores[b, real].argsort(descending=True)]
        top = per_bag // 2
        picks = torch.cat([order[:top], order[-(per_bag - top) :]]) if len(order) else order
        for j, ax in enumerate(axes[b]):
            ax.axis("off")
            if j < len(picks):
                t = int(picks[j])
                picture, cmap = _display(tiles[b, t])
                ax.imshow(picture.numpy(), cmap=cmap)
                ax.set_title(f"tile {t}: {float(scores[b, t]):.3f}", fontsize=7)
    fig.suptitle("most (left) and least (right) important tiles per patient", fontsize=9)
    return save_figure(fig, path, dpi=110)
