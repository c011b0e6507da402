"""Figures of the ``taste_music`` check: correspondence features and piano rolls."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from polymodal.data.synth.music_compose import TASTES
from polymodal.data.synth.music_events import Piece
from polymodal.methods.taste_music.judge import EXPECTED, FEATURES
from polymodal.plots import pyplot, save_figure


def feature_bars(
    values: Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]], path: Path
) -> Path:
    """One panel per correspondence feature: per taste, base vs fine-tuned mean ± std.

    Args:
        values: ``{model: {taste: {feature: per-clip values}}}`` (NaN ignored).
        path: the PNG to write.
    """
    plt = pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5))
    x = np.arange(len(TASTES))
    for ax, feature in zip(axes.flat, FEATURES, strict=True):
        for offset, model, color in ((-0.2, "base", "#999"), (0.2, "fine_tuned", "#c44")):
            per_taste = [np.asarray(values[model][t][feature], float) for t in TASTES]
            means = [np.nanmean(v) if np.isfinite(v).any() else np.nan for v in per_taste]
            stds = [np.nanstd(v) if np.isfinite(v).any() else 0 for v in per_taste]
            ax.bar(x + offset, means, 0.4, yerr=stds, color=color, label=model, capsize=2)
        labels = []
        for taste in TASTES:
            sign = EXPECTED[taste].get(feature)
            labels.append(taste + ("" if sign is None else " ↑" if sign > 0 else " ↓"))
        ax.set_xticks(x, labels)
        ax.set_title(feature)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle("Correspondence features per asked taste (arrow: expected move vs base)")
    return save_figure(fig, path)


def piano_rolls(pieces: Mapping[str, Sequence[Piece]], path: Path) -> Path:
    """A piano roll per taste (rows) for each model (columns).

    Args:
        pieces: ``{model: one piece per taste, in TASTES order}``.
        path: the PNG to write.
    """
    plt = pyplot()
    models = list(pieces)
    fig, axes = plt.subplots(len(TASTES), len(models), figsize=(5 * len(models), 2.2 * len(TASTES)))
    axes = np.asarray(axes).reshape(len(TASTES), len(models))
    for col, model in enumerate(models):
        for row, (taste, piece) in enumerate(zip(TASTES, pieces[model], strict=True)):
            ax = axes[row, col]
            tick = piece.seconds_per_tick
            for note in piece.notes:
                ax.broken_barh([(note.start * tick, note.duration * tick)], (note.pitch - 0.4, 0.8))
            ax.set_xlim(0, max(piece.seconds, 1.0))
            ax.set_ylim(34, 98)
            ax.set_title(f"{model}: {taste} ({piece.instrument}, {piece.tempo} bpm)", fontsize=9)
            ax.set_ylabel("MIDI pitch", fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("seconds")
    return save_figure(fig, path)
