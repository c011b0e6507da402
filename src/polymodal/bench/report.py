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
from polymodal.bench.verdict import METHOD, Part, deciding_part


def verdict(record: Record) -> str:
    if record.error is not None or record.verdict is None:
        return "ERROR"
    return record.verdict


def deciding(record: Record, digits: int = 3) -> str:
    """The criterion part that decides the verdict, with its interval (a table cell)."""
    if not record.parts:
        return "—"
    return deciding_part(record.parts).describe(digits)


def parts_table(parts: Sequence[Part]) -> Table:
    """Every criterion part: estimate, 95 % interval, margin and its own verdict."""
    rows = [
        [
            p.name,
            f"{p.estimate:+.4f}",
            f"[{p.low:+.4f}, {p.high:+.4f}]",
            f"{'>' if p.above else '<'} {p.margin:+.4f}",
            p.verdict,
        ]
        for p in parts
    ]
    return Table(
        "Criterion parts (effect, 95 % interval, margin it must clear)",
        ["part", "effect", "95 % interval", "needs", "part verdict"],
        rows,
    )


def environment_line(record: Record) -> str:
    """Torch build, threads and device; says when CUDA ran with warn-only determinism
    or when the check ran on the CPU although another device was asked for."""
    env = record.environment
    line = f"torch {env.get('torch')}, {env.get('threads')} thread(s), device {env.get('device')}"
    if env.get("deterministic") == "warn":
        line += " (deterministic algorithms warn only: some CUDA kernels have none)"
    if env.get("requested_device"):
        line += f" (asked for {env['requested_device']}; this check runs on the CPU)"
    return line


def direction(record: Record) -> str:
    """``"higher is better"`` or ``"lower is better"`` for the record's metric."""
    return "higher is better" if record.higher_is_better else "lower is better"


def value_text(value: float) -> str:
    """A metric value for prose: 4 decimals, or thousands grouped for large values
    (seconds, counts) where decimals only add noise."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4f}"


def ours_cell(record: Record) -> str:
    """``ours`` with its unit and an arrow for its direction (a table cell)."""
    if record.ours is None:
        return "—"
    arrow = "↑" if record.higher_is_better else "↓"
    return f"{value_text(record.ours)} {record.unit} {arrow}"


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
        f"**Verdict: {verdict(record)}.** Metric: {record.metric} "
        f"({record.unit}, {direction(record)}); "
        f"seeds {record.seeds}; {record.seconds:.0f} s"
        + (" (quick size)" if record.quick else "")
        + f"; {environment_line(record)}.",
        "",
    ]
    if record.error:
        parts += [f"The check crashed: `{record.error}`", ""]
        return "\n".join(parts)
    assert record.ours is not None  # a record without an error has a value
    baselines = "; ".join(f"{k} {value_text(v)}" for k, v in record.baselines.items())
    ours = f"Ours: {value_text(record.ours)} {record.unit} ({direction(record)})."
    parts += [ours + (f" Baselines: {baselines}." if baselines else ""), ""]
    decisive = parts_table(record.parts)
    for table in [decisive, *record.tables]:
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
    for row, record in zip(rows, records, strict=True):
        for part_row, part in zip(row["parts"], record.parts, strict=True):
            part_row["verdict"] = part.verdict
    (out_dir / "results.json").write_text(json.dumps(rows, indent=2))
    summary = markdown_table(
        ["check", "method", "ours", "deciding part: effect [95 % interval]", "verdict", "seconds"],
        [
            [r.name, r.method, ours_cell(r), deciding(r), verdict(r), f"{r.seconds:.0f}"]
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
        f"Verdicts: **holds** when every criterion part's interval clears its margin, "
        "**does not hold** when some part's interval lies entirely on the wrong side, "
        f"**inconclusive** otherwise. {METHOD} Numbers are bit-reproducible only with the "
        "same torch build, thread count and device (each check lists its own); elsewhere "
        "they agree within their intervals.",
        "",
    ]
    if skipped:
        header += ["Not run here: " + "; ".join(f"`{n}` ({why})" for n, why in skipped), ""]
    text = "\n".join(header + [_section(r, out_dir) for r in records])
    path = out_dir / "report.md"
    path.write_text(text)
    return path


def console_table(records: Sequence[Record]) -> str:
    """A plain-text summary for the terminal: verdict, ours (unit, ↑ higher or ↓ lower
    is better) and the part that decides it."""
    lines = [f"{'check':<16}{'verdict':<15}{'seconds':>8}  {'ours':<24}deciding part"]
    for r in records:
        lines.append(
            f"{r.name:<16}{verdict(r):<15}{r.seconds:>8.0f}  {ours_cell(r):<24}{deciding(r)}"
        )
    return "\n".join(lines)


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    return Table(title, list(columns), [list(r) for r in rows])
