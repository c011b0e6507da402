import json

import pytest

from polymodal.bench.claims import ClaimCheck, Context, Outcome, execute
from polymodal.bench.registry import select
from polymodal.bench.report import mean_std, table, write_report
from polymodal.errors import ConfigError


def check(run) -> ClaimCheck:
    return ClaimCheck("toy", "Toy", "arXiv 0000.00000", "a beats b", "accuracy", "a > b", run)


def test_execute_records_outcome_and_report_lists_it(tmp_path):
    def run(context: Context) -> Outcome:
        return Outcome(
            ours=0.9,
            baselines={"b": 0.7},
            holds=0.9 > 0.7,
            seeds=[0, 1],
            tables=[table("per seed", ["model", "acc"], [["a", 0.9], ["b", 0.7]])],
        )

    record = execute(check(run), Context(out_dir=tmp_path / "toy"))
    assert record.holds is True and record.error is None and record.baselines == {"b": 0.7}
    report = write_report([record], tmp_path, "polymodal bench")
    text = report.read_text()
    assert "**Verdict: holds.**" in text and "| a | 0.9000 |" in text
    rows = json.loads((tmp_path / "results.json").read_text())
    assert rows[0]["criterion"] == "a > b" and rows[0]["ours"] == 0.9


def test_a_crashing_check_becomes_an_error_record(tmp_path):
    def run(context: Context) -> Outcome:
        raise RuntimeError("out of data")

    record = execute(check(run), Context(out_dir=tmp_path))
    assert record.holds is None and record.error == "RuntimeError: out of data"
    assert "ERROR" in write_report([record], tmp_path, "polymodal bench").read_text()


def test_unknown_check_name_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown claim check.*nope.*available: fusion"):
        select("nope")
    assert [c.name for c in select("fusion")] == ["fusion"]


def test_mean_std_cells_use_population_or_sample_std() -> None:
    assert mean_std([1.0, 3.0]) == "2.0000 ± 1.0000"
    assert mean_std([1.0, 3.0], digits=2, ddof=1) == "2.00 ± 1.41"  # sqrt(2)
