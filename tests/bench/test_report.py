import json

import pytest

from polymodal.bench.claims import ClaimCheck, Context, Outcome, execute
from polymodal.bench.registry import select
from polymodal.bench.report import console_table, mean_std, table, write_report
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
