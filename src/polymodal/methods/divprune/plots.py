"""Figures of the ``divprune`` claim check: accuracy vs keep ratio, and kept tokens."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from polymodal.hf.llava import image_features
from polymodal.methods.divprune.fastv import DEFAULT_LAYER, fastv_next_token_logits
from polymodal.methods.divprune.llava import last_token_attention
from polymodal.methods.divprune.select import keep_count, select_tokens
from polymodal.plots import pyplot, save_figure
from polymodal.train.vlm import TrainedVLM
from polymodal.train.vqa_batches import VQACollator

STYLE = {
    "divprune": ("tab:orange", "o"),
    "random": ("tab:blue", "s"),
    "fastv": ("tab:green", "^"),
    "uniform": ("tab:purple", "v"),
    "attention": ("tab:olive", "D"),
}


def accuracy_plot(
    curves: Mapping[str, Mapping[float, Sequence[float]]], path: Path, unpruned: float
) -> Path:
    """Accuracy vs keep ratio (log x), one line per method, ±1 std over seeds.

    Args:
        curves: method -> keep ratio -> accuracy per seed.
        path: PNG file to write.
        unpruned: accuracy at ratio 1.0, drawn as a dotted line with its 90 % mark.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for method, points in curves.items():
        ratios = sorted(points)
        means = np.array([np.mean(points[r]) for r in ratios])
        stds = np.array([np.std(points[r]) for r in ratios])
        color, marker = STYLE.get(method, ("black", "x"))
        ax.plot(ratios, means, marker=marker, color=color, label=method)
        if stds.any():
            ax.fill_between(ratios, means - stds, means + stds, color=color, alpha=0.2)
    ax.axhline(unpruned, color="grey", linestyle=":", label="unpruned")
    ax.axhline(0.9 * unpruned, color="grey", linestyle="--", linewidth=0.8, label="90 % of it")
    ax.set_xscale("log")
    ax.set_xticks(sorted({r for p in curves.values() for r in p}))
    ax.get_xaxis().set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("keep ratio (fraction of visual tokens kept)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Shapes-VQA accuracy under visual-token pruning")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


@torch.no_grad()
def kept_tokens_figure(
    vlm: TrainedVLM, dataset: Any, path: Path, ratio: float, scenes: int = 4
) -> Path:
    """The first ``scenes`` test images with each method's kept patches shown, the rest dimmed."""
    plt = pyplot()
    samples = [dataset[i] for i in range(scenes)]
    batch = VQACollator(vlm.fmt)(samples)
    prompt_ids, prompt_mask = batch.prompt()
    assert batch.pixel_values is not None  # every test sample has its image
    features = image_features(vlm.model, batch.pixel_values)
    M = features.shape[1]
    side = int(round(M**0.5))  # patches per image side
    keep = keep_count(M, ratio)
    scores = last_token_attention(vlm.model, prompt_ids, prompt_mask, features, DEFAULT_LAYER)
    methods = list(STYLE)
    kept = {
        m: select_tokens(m, features, keep, scores, torch.Generator().manual_seed(0))
        for m in methods
        if m != "fastv"
    }
    # FastV's tokens are those layers >= K see
    kept["fastv"] = fastv_next_token_logits(vlm.model, prompt_ids, prompt_mask, features, keep).kept
    fig, axes = plt.subplots(
        scenes, len(methods) + 1, figsize=(1.9 * (len(methods) + 1), 2.0 * scenes)
    )
    for row, sample in enumerate(samples):
        image = sample["image"].permute(1, 2, 0).numpy()  # (H, W, 3)
        patch = image.shape[0] // side
        axes[row, 0].imshow(image)
        axes[row, 0].set_title(dataset.question(row), fontsize=6)
        for col, method in enumerate(methods, start=1):
            mask = np.zeros(M, dtype=bool)
            mask[kept[method][row].numpy()] = True
            # (side, side) kept map -> (H, W) by repeating each cell over its patch
            shown = np.kron(mask.reshape(side, side), np.ones((patch, patch), dtype=bool))
            axes[row, col].imshow(np.where(shown[..., None], image, 0.25 * image))
            if row == 0:
                axes[row, col].set_title(f"{method} ({keep}/{M})", fontsize=8)
    for ax in axes.flat:
        ax.set_axis_off()
    return save_figure(fig, path)
