"""Writing the claims-suite results: ``results.json``, ``report.md`` and a console table."""

from __future__ import annotations

import dataclasses
import json
import platform
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from polymodal.bench.claims import Record, Table


def verdict(record: Record) -> str:
    if record.error is not None:
        return "ERROR"
    return "holds" if record.holds else "does not hold"


def mean_std(values: Sequence[float], digits: int = 4, ddof: int = 0) -> str:
    """``"mean ± std"`` of ``values`` for a table cell (``ddof=1``: sample std)."""
    import numpy as np

    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=ddof):.{digits}f}"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _section(record: Record, out_dir: Path) -> str:
    parts = [
        f"## {record.name} — {record.method} ({record.paper})",
        "",
        f"**Claim.** {record.claim}",
        "",
        f"**Criterion** (stated before running). {record.criterion}",
        "",
        f"**Verdict: {verdict(record)}.** Metric: {record.metric}; "
        f"seeds {record.seeds}; {record.seconds:.0f} s" + (" (quick size)" if record.quick else ""),
        "",
    ]
    if record.error:
        parts += [f"The check crashed: `{record.error}`", ""]
        return "\n".join(parts)
    baselines = "; ".join(f"{k} {v:.4f}" for k, v in record.baselines.items())
    parts += [f"Ours: {record.ours:.4f}. Baselines: {baselines}.", ""]
    for table in record.tables:
        parts += [f"**{table.title}**", "", markdown_table(table.columns, table.rows), ""]
    for plot in record.plots:
        parts += [f"![{Path(plot).stem}]({Path(plot).relative_to(out_dir)})", ""]
    if record.notes:
        parts += [record.notes, ""]
    return "\n".join(parts)


def write_report(
    records: Sequence[Record],
    out_dir: Path,
    command: str,
    skipped: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write ``results.json`` and ``report.md`` into ``out_dir``; return the report path.

    Args:
        records: the checks that ran.
        out_dir: the report folder.
        command: the command line, quoted in the report.
        skipped: ``(name, reason)`` of registered checks that did not run.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [dataclasses.asdict(r) for r in records]
    (out_dir / "results.json").write_text(json.dumps(rows, indent=2))
    summary = markdown_table(
        ["check", "method", "metric", "ours", "best baseline", "verdict", "seconds"],
        [
            [
                r.name,
                r.method,
                r.metric,
                "—" if r.ours is None else r.ours,
                max(r.baselines.items(), key=lambda kv: kv[1], default=("—", ""))[0]
                + ("" if not r.baselines else f" {max(r.baselines.values()):.4f}"),
                verdict(r),
                r.seconds,
            ]
            for r in records
        ],
    )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = [
        "# polymodal claims report",
        "",
        f"`{command}` — {stamp}, Python {platform.python_version()} on {platform.machine()}.",
        "",
        summary,
        "",
    ]
    if skipped:
        header += ["Not run here: " + "; ".join(f"`{n}` ({why})" for n, why in skipped), ""]
    text = "\n".join(header + [_section(r, out_dir) for r in records])
    path = out_dir / "report.md"
    path.write_text(text)
    return path


def console_table(records: Sequence[Record]) -> str:
    """A plain-text summary for the terminal."""
    lines = [f"{'check':<16}{'ours':>10}  {'verdict':<15}{'seconds':>8}"]
    for r in records:
        ours = "—" if r.ours is None else f"{r.ours:.4f}"
        lines.append(f"{r.name:<16}{ours:>10}  {verdict(r):<15}{r.seconds:>8.0f}")
    return "\n".join(lines)


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    return Table(title, list(columns), [list(r) for r in rows])
