"""Claim checks: a method's central claim, its criterion, and the measured outcome.

A check declares its claim, metric and criterion **before** it runs (they are
fields of :class:`ClaimCheck`, fixed at import time); its ``run`` function measures
and returns an :class:`Outcome` whose ``holds`` is computed from the numbers by the
criterion, never edited afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Context:
    """Where and how big a check runs.

    Args:
        out_dir: folder for this check's plots and extra files.
        quick: smoke size (seconds) instead of the size the README quotes.
        progress: show progress bars.
    """

    out_dir: Path
    quick: bool = False
    progress: bool = True


@dataclass
class Table:
    """A small table for the report: a title, column names and rows."""

    title: str
    columns: list[str]
    rows: list[list[Any]]


@dataclass
class Outcome:
    """What a check measured.

    Args:
        ours: the method's value of the metric.
        baselines: each baseline's value of the metric.
        holds: whether the criterion is met.
        seeds: the seeds the numbers average over.
        tables: per-model or per-condition detail for the report.
        plots: PNG files written into the context's ``out_dir``.
        notes: anything a reader needs to interpret the numbers.
    """

    ours: float
    baselines: dict[str, float]
    holds: bool
    seeds: list[int]
    tables: list[Table] = field(default_factory=list)
    plots: list[Path] = field(default_factory=list)
    notes: str = ""


@dataclass(frozen=True)
class ClaimCheck:
    """A registered check (see module doc).

    ``default=False`` leaves a check out of a plain ``polymodal bench`` (it still runs
    with ``--only``); ``skip_reason`` says why, and the report lists it.
    """

    name: str
    method: str
    paper: str
    claim: str
    metric: str
    criterion: str
    run: Callable[[Context], Outcome]
    default: bool = True
    skip_reason: str = ""


@dataclass
class Record:
    """One row of ``results.json``."""

    name: str
    method: str
    paper: str
    claim: str
    metric: str
    criterion: str
    ours: float | None
    baselines: dict[str, float]
    holds: bool | None
    seeds: list[int]
    seconds: float
    quick: bool
    tables: list[Table] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    notes: str = ""
    error: str | None = None


def execute(check: ClaimCheck, context: Context) -> Record:
    """Run one check; a crash becomes a record with ``error`` set (and no verdict)."""
    started = time.perf_counter()
    base: dict[str, Any] = {
        "name": check.name,
        "method": check.method,
        "paper": check.paper,
        "claim": check.claim,
        "metric": check.metric,
        "criterion": check.criterion,
        "quick": context.quick,
    }
    context.out_dir.mkdir(parents=True, exist_ok=True)
    try:
        outcome = check.run(context)
    except Exception as error:  # report it, keep running the other checks
        import traceback

        traceback.print_exc()
        return Record(
            **base,
            ours=None,
            baselines={},
            holds=None,
            seeds=[],
            seconds=round(time.perf_counter() - started, 1),
            error=f"{type(error).__name__}: {error}",
        )
    return Record(
        **base,
        ours=outcome.ours,
        baselines=outcome.baselines,
        holds=bool(outcome.holds),
        seeds=outcome.seeds,
        seconds=round(time.perf_counter() - started, 1),
        tables=outcome.tables,
        plots=[str(p) for p in outcome.plots],
        notes=outcome.notes,
    )
