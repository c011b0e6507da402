import pytest
import torch

from polymodal.bench import registry
from polymodal.bench.claims import ClaimCheck, Context, Outcome
from polymodal.bench.costs import MEASURED
from polymodal.bench.verdict import Part
from polymodal.cli import main


@pytest.fixture
def seen(monkeypatch) -> list[Context]:
    """Three toy checks (default, non-default, real-data) that record their contexts."""
    contexts: list[Context] = []

    def run(context: Context) -> Outcome:
        contexts.append(context)
        return Outcome(ours=1.0, baselines={}, parts=[Part("x", 1.0, 0.9, 1.1)], seeds=[0])

    monkeypatch.setattr(registry, "_PROVIDERS", ())
    monkeypatch.setattr(registry, "_CHECKS", {})
    for name, default, needs_data in (
        ("a", True, False),
        ("slow", False, False),
        ("real", True, True),
    ):
        registry.register(
            ClaimCheck(name, "T", "-", "c", "m", "k", run, default, "slow", needs_data)
        )
    return contexts


def test_all_runs_every_check_at_full_size(seen, tmp_path, capsys):
    assert main(["bench", "--all", "--device", "cpu", "--out", str(tmp_path)]) == 0
    assert [c.out_dir.name for c in seen] == ["a", "slow"]  # real data needs --data
    assert not any(c.quick for c in seen)
    assert "== real: not run (real data" in capsys.readouterr().out


def test_the_device_reaches_the_checks_and_auto_picks_cuda_when_there(seen, tmp_path, monkeypatch):
    assert main(["bench", "--only", "a", "--device", "cpu", "--out", str(tmp_path)]) == 0
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert main(["bench", "--only", "a", "--out", str(tmp_path)]) == 0  # auto
    assert [c.device for c in seen] == ["cpu", "cuda"]


def test_cuda_without_a_gpu_is_a_one_line_error(seen, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["bench", "--device", "cuda", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "device cuda asked for, but this machine has no GPU" in err
    assert seen == []


def test_list_names_every_check_once_with_its_default_flag(capsys):
    assert main(["bench", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    checks = registry.all_checks()
    rows = {line.split()[0]: line.split() for line in lines[1:-1]}
    assert len(rows) == len(lines) - 2 == len(checks)
    for name, check in checks.items():
        assert rows[name][1] == ("yes" if check.default else "no")
        assert rows[name][2] == ("yes" if check.needs_data else "no")
        assert name in MEASURED  # every check has a measured cost to show
    # seconds as the table holds them, thousands grouped, "?" where not measured
    fusion, aki = MEASURED["fusion"]["cpu"], MEASURED["aki"]["cpu"]
    assert rows["fusion"][3:5] == [f"{fusion:,.0f}", "?"]
    assert rows["aki"][3:5] == [f"{aki:,.0f}", "?"] and aki >= 1000
    assert "run it with --only abpem" in " ".join(rows["abpem"])
