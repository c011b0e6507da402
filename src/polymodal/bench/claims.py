"""Claim checks: a method's central claim, its criterion, and the measured outcome.

A check declares its claim, metric and criterion **before** it runs (they are
fields of :class:`ClaimCheck`, fixed at import time); its ``run`` function measures
and returns an :class:`Outcome` whose criterion parts (effects with 95 % intervals,
:mod:`polymodal.bench.verdict`) decide the verdict, never edited afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polymodal.bench.verdict import Part, Verdict, decide


@dataclass(frozen=True)
class Context:
    """Where and how big a check runs.

    Args:
        out_dir: folder for this check's plots and extra files.
        quick: smoke size (seconds) instead of the size the README quotes.
        progress: show progress bars.
        device: the torch device the check trains and evaluates on.
        data_dir: a folder of real data (FSDD recordings, MNIST IDX files) for the
            checks that need it (``polymodal bench --data DIR``); None skips them.
    """

    out_dir: Path
    quick: bool = False
    progress: bool = True
    device: str = "cpu"
    data_dir: Path | None = None


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
        parts: the criterion's parts, each an effect with its 95 % interval and
            margin; together they decide the verdict.
        seeds: the seeds the numbers average over.
        tables: per-model or per-condition detail for the report.
        plots: PNG files written into the context's ``out_dir``.
        notes: anything a reader needs to interpret the numbers.
    """

    ours: float
    baselines: dict[str, float]
    parts: list[Part]
    seeds: list[int]
    tables: list[Table] = field(default_factory=list)
    plots: list[Path] = field(default_factory=list)
    notes: str = ""

    @property
    def verdict(self) -> Verdict:
        return decide(self.parts)


@dataclass(frozen=True)
class ClaimCheck:
    """A registered check (see module doc).

    ``default=False`` leaves a check out of a plain ``polymodal bench`` (it still runs
    with ``--only`` and ``--quick``); ``skip_reason`` says why, and the report lists it.
    ``needs_data=True`` marks a check on real data: it runs only when the bench is
    given a data folder (:attr:`Context.data_dir`).

    ``higher_is_better`` and ``unit`` describe the metric (``ours`` and the baselines):
    its direction and what it counts (``"accuracy"``, ``"macro-F1"``, ``"seconds"``),
    so the report can word a lower-is-better metric or one outside [0, 1] right.
    ``honours_device`` says the check trains on :attr:`Context.device`; a check
    that does not always runs on the CPU, and its record says so. ``costs`` holds
    its last measured seconds per device at full size (None: not measured); when
    empty, :data:`polymodal.bench.costs.MEASURED` answers.
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
    needs_data: bool = False
    higher_is_better: bool = True
    unit: str = "accuracy"
    honours_device: bool = False
    costs: Mapping[str, float | None] = field(default_factory=dict)


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
    verdict: Verdict | None
    holds: bool | None
    """``verdict == "holds"`` (None when the check crashed)."""
    seeds: list[int]
    seconds: float
    quick: bool
    environment: dict[str, Any]
    """torch version, thread count and device: bit-reproducibility needs all three equal."""
    parts: list[Part] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    notes: str = ""
    error: str | None = None
    higher_is_better: bool = True
    """The metric's direction: ``ours`` and the baselines are better when higher."""
    unit: str = "accuracy"
    """What the metric counts (``"accuracy"``, ``"TPR"``, ``"seconds"``)."""


def environment(context: Context, honours_device: bool = True) -> dict[str, Any]:
    """What a float result depends on beyond the seed: reduction order changes with
    the torch build, the number of threads and the device.

    Args:
        context: the run's context (its ``device`` was asked for).
        honours_device: the check trains on ``context.device``; otherwise it ran on
            the CPU whatever was asked, and ``requested_device`` keeps the request.

    Returns:
        torch version, threads, device, ``deterministic`` (True, or ``"warn"`` on CUDA,
        where some kernels have no deterministic version), Python and machine.
    """
    import platform

    import torch

    device = context.device if honours_device else "cpu"
    env: dict[str, Any] = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": device,
        "deterministic": "warn" if device == "cuda" else True,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    if device != context.device:
        env["requested_device"] = context.device
    return env


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
        "higher_is_better": check.higher_is_better,
        "unit": check.unit,
        "quick": context.quick,
        "environment": environment(context, check.honours_device),
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
            verdict=None,
            holds=None,
            seeds=[],
            seconds=round(time.perf_counter() - started),
            error=f"{type(error).__name__}: {error}",
        )
    return Record(
        **base,
        ours=outcome.ours,
        baselines=outcome.baselines,
        verdict=outcome.verdict,
        holds=outcome.verdict == "holds",
        parts=list(outcome.parts),
        seeds=outcome.seeds,
        seconds=round(time.perf_counter() - started),
        tables=outcome.tables,
        plots=[str(p) for p in outcome.plots],
        notes=outcome.notes,
    )
