import dataclasses
import json

import pytest

from polymodal.bench.claims import ClaimCheck, Context, Outcome, Record, execute
from polymodal.bench.registry import select
from polymodal.bench.report import (
    console_table,
    environment_line,
    mean_std,
    ours_cell,
    table,
    value_text,
    write_report,
)
from polymodal.bench.verdict import Part
from polymodal.errors import ConfigError


def check(run) -> ClaimCheck:
    return ClaimCheck("toy", "Toy", "arXiv 0000.00000", "a beats b", "accuracy", "a > b", run)


def test_execute_records_outcome_and_report_lists_it(tmp_path):
    def run(context: Context) -> Outcome:
        return Outcome(
            ours=0.9,
            baselines={"b": 0.7},
            parts=[Part("a − b", 0.2, 0.1, 0.3), Part("a", 0.9, 0.85, 0.95, margin=0.8)],
            seeds=[0, 1],
            tables=[table("per seed", ["model", "acc"], [["a", 0.9], ["b", 0.7]])],
        )

    record = execute(check(run), Context(out_dir=tmp_path / "toy"))
    assert record.verdict == "holds" and record.holds is True and record.error is None
    assert record.environment["threads"] >= 1 and record.environment["device"] == "cpu"
    report = write_report([record], tmp_path, "polymodal bench")
    text = report.read_text()
    assert "**Verdict: holds.**" in text and "| a | 0.9000 |" in text
    # the summary shows the part that clears its margin by least: a, 0.85 − 0.8 = 0.05
    assert "a +0.900 [+0.850, +0.950] (needs > +0.800)" in text
    rows = json.loads((tmp_path / "results.json").read_text())
    assert rows[0]["criterion"] == "a > b" and rows[0]["ours"] == 0.9
    assert rows[0]["verdict"] == "holds" and rows[0]["holds"] is True
    assert rows[0]["parts"][0] == {
        "name": "a − b",
        "estimate": 0.2,
        "low": 0.1,
        "high": 0.3,
        "margin": 0.0,
        "above": True,
        "verdict": "holds",
    }


def test_console_table_shows_the_failing_part_beside_the_verdict(tmp_path):
    def run(context: Context) -> Outcome:
        parts = [Part("rho", 1.0, 0.9, 1.0, margin=0.8), Part("m", 0.11, 0.08, 0.14, 0.05, False)]
        return Outcome(ours=0.11, baselines={}, parts=parts, seeds=[0])

    record = execute(check(run), Context(out_dir=tmp_path))
    assert record.verdict == "does not hold" and record.holds is False
    assert "does not hold" in console_table([record]) and "m +0.110" in console_table([record])


def test_a_crashing_check_becomes_an_error_record(tmp_path):
    def run(context: Context) -> Outcome:
        raise RuntimeError("out of data")

    record = execute(check(run), Context(out_dir=tmp_path))
    assert record.holds is None and record.error == "RuntimeError: out of data"
    assert "ERROR" in write_report([record], tmp_path, "polymodal bench").read_text()


def test_unknown_check_name_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown claim check.*nope.*available: fusion"):
        select("nope")
    assert [c.name for c in select("fusion")[0]] == ["fusion"]


def test_mean_std_cells_use_population_or_sample_std() -> None:
    assert mean_std([1.0, 3.0]) == "2.0000 ± 1.0000"
    assert mean_std([1.0, 3.0], digits=2, ddof=1) == "2.00 ± 1.41"  # sqrt(2)


def record(**changes) -> Record:
    """A hand-made record of a finished check (fields not under test held fixed)."""
    values = dict(
        name="toy",
        method="Toy",
        paper="-",
        claim="c",
        metric="m",
        criterion="k",
        ours=0.9,
        baselines={"b": 0.7},
        verdict="holds",
        holds=True,
        seeds=[0],
        seconds=3.0,
        quick=False,
        environment={"torch": "2.x", "threads": 1, "device": "cpu", "deterministic": True},
        parts=[Part("a − b", 0.2, 0.1, 0.3)],
    )
    return Record(**{**values, **changes})


def test_a_lower_is_better_metric_is_worded_so(tmp_path):
    tpr = record(ours=0.11, baselines={"trusting": 0.83}, higher_is_better=False, unit="TPR")
    text = write_report([tpr], tmp_path, "polymodal bench").read_text()
    assert "Metric: m (TPR, lower is better)" in text
    assert "Ours: 0.1100 TPR (lower is better). Baselines: trusting 0.8300." in text
    assert "| 0.1100 TPR ↓ |" in text
    assert "0.1100 TPR ↓" in console_table([tpr])
    assert "0.9000 accuracy ↑" in console_table([record()])  # the defaults
    row = json.loads((tmp_path / "results.json").read_text())[0]
    assert row["higher_is_better"] is False and row["unit"] == "TPR"


def test_values_outside_zero_one_keep_their_size():
    assert value_text(2345.6) == "2,346" and value_text(-1.5) == "-1.5000"
    seconds = record(ours=2345.6, baselines={"b": 4000.0}, higher_is_better=False, unit="s")
    assert ours_cell(seconds) == "2,346 s ↓"


def test_the_environment_line_says_how_cuda_ran_and_when_a_request_was_ignored():
    cuda = {"torch": "2.x", "threads": 4, "device": "cuda", "deterministic": "warn"}
    assert environment_line(record(environment=cuda)) == (
        "torch 2.x, 4 thread(s), device cuda "
        "(deterministic algorithms warn only: some CUDA kernels have none)"
    )
    ignored = {"torch": "2.x", "threads": 1, "device": "cpu", "requested_device": "cuda"}
    assert environment_line(record(environment=ignored)).endswith(
        "device cpu (asked for cuda; this check runs on the CPU)"
    )


def test_the_record_keeps_the_device_only_when_the_check_honours_it(tmp_path):
    def run(context: Context) -> Outcome:
        return Outcome(ours=1.0, baselines={}, parts=[Part("x", 1.0, 0.9, 1.1)], seeds=[0])

    context = Context(out_dir=tmp_path, device="cuda")
    ignores = execute(check(run), context).environment
    assert ignores["device"] == "cpu" and ignores["requested_device"] == "cuda"
    honours = dataclasses.replace(check(run), honours_device=True)
    env = execute(honours, context).environment
    assert env["device"] == "cuda" and env["deterministic"] == "warn"
    assert "requested_device" not in env
