"""The testbed report: JSON with every hypothesis, a markdown table and a plot."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from polymodal.bench.asr_testbed.score import CLEAN, ConditionWER, TestbedScores

FILE_STEM = "asr_testbed"


def _cell(condition: ConditionWER) -> str:
    return f"{100 * condition.wer:.1f} [{100 * condition.low:.1f}, {100 * condition.high:.1f}]"


def wer_table(scores: Sequence[TestbedScores]) -> str:
    """Markdown: a row per recogniser x sentence set x scenario: WER % [95 % interval] clean,
    per severity; ρ."""
    levels = scores[0].severities()
    head = [
        "recognizer",
        "sentences",
        "scenario",
        "clean",
        *(f"severity {s}" for s in levels),
        "Spearman ρ",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for score in scores:
        clean = _cell(score.wer(*CLEAN))
        for name in score.scenarios():
            cells = [_cell(score.wer(name, s)) for s in levels]
            rho = f"{score.trend(name):.2f}"
            row = [score.recognizer, score.sentences, name, clean, *cells, rho]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def plot_wer(scores: Sequence[TestbedScores], path: Path) -> Path:
    """WER against severity, one panel per scenario, one line per recogniser (95 % bars)."""
    from polymodal.plots import pyplot, save_figure

    plt = pyplot()
    names = scores[0].scenarios()
    levels = scores[0].severities()
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.0), sharey=True)
    for ax, name in zip(list(fig.axes) if len(names) > 1 else [axes], names, strict=True):
        for score in scores:
            points = [score.wer(name, s) for s in levels]
            wer = [100 * p.wer for p in points]
            err = [
                [100 * (p.wer - p.low) for p in points],
                [100 * (p.high - p.wer) for p in points],
            ]
            label = f"{score.recognizer} ({score.sentences})"
            line = ax.errorbar(levels, wer, yerr=err, marker="o", capsize=3, label=label)
            ax.axhline(100 * score.wer(*CLEAN).wer, ls="--", lw=0.8, color=line[0].get_color())
        ax.set_title(name)
        ax.set_xlabel("severity")
        ax.set_xticks(levels)
    fig.axes[0].set_ylabel("WER % (dashed: clean)")
    fig.axes[0].legend(fontsize=7)
    return save_figure(fig, path)


def write_report(scores: Sequence[TestbedScores], out: Path) -> list[Path]:
    """Write ``asr_testbed.{json,md,png}`` into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    data = out / f"{FILE_STEM}.json"
    data.write_text(json.dumps([s.to_dict() for s in scores], indent=1) + "\n")
    table = out / f"{FILE_STEM}.md"
    table.write_text(wer_table(scores))
    return [data, table, plot_wer(scores, out / f"{FILE_STEM}.png")]
