"""Figure of a text-bias probe: accuracy per condition and TPR per text, for one or more runs."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from polymodal.analysis.text_bias.metrics import TextBiasResult
from polymodal.bench.plots import pyplot, save_figure
from polymodal.data.synth.shapes_text import VARIANTS


def condition_bars(results: Mapping[str, TextBiasResult], path: Path, title: str) -> Path:
    """Grouped bars: accuracy under each condition (left) and TPR per text variant (right).

    Args:
        results: run label (e.g. ``"trusting, before"``) -> its result; one bar
            colour per run.
        path: PNG file to write.
        title: figure title.
    """
    import numpy as np

    plt = pyplot()
    labels = list(results)
    conditions = list(dict.fromkeys(c for r in results.values() for c in r.answers))
    width = 0.8 / len(labels)
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(0.9 * len(conditions) + 4.5, 3.8), gridspec_kw={"width_ratios": [2.2, 1]}
    )
    for k, label in enumerate(labels):
        result = results[label]
        offset = (k - (len(labels) - 1) / 2) * width
        accuracies = [result.accuracy(c) if c in result.answers else math.nan for c in conditions]
        left.bar(np.arange(len(conditions)) + offset, accuracies, width, label=label)
        tprs = [result.tpr(v) for v in VARIANTS]
        bars = right.bar(np.arange(len(VARIANTS)) + offset, tprs, width, label=label)
        right.bar_label(bars, fmt="%.2f", fontsize=7)
    left.set_xticks(range(len(conditions)), [c.replace("_", "\n", 1) for c in conditions])
    left.set_ylabel("accuracy")
    left.set_ylim(0, 1.05)
    right.set_xticks(range(len(VARIANTS)), VARIANTS)
    right.set_ylabel("TPR = text / (text + image)")
    right.set_ylim(0, 1.1)
    right.axhline(0.5, color="grey", lw=0.8, ls="--")
    for ax in (left, right):
        ax.grid(axis="y", alpha=0.3)
        ax.tick_params(axis="x", labelsize=8)
    left.legend(fontsize=8, loc="lower left")
    fig.suptitle(title)
    return save_figure(fig, path)
