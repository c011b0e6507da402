import pytest

from polymodal.bench import registry
from polymodal.bench.claims import ClaimCheck
from polymodal.errors import ConfigError


def toy(name: str, default: bool = True, needs_data: bool = False) -> ClaimCheck:
    return ClaimCheck(
        name,
        "Toy",
        "-",
        "claim",
        "metric",
        "criterion",
        lambda c: None,  # type: ignore[arg-type, return-value]
        default=default,
        skip_reason="slow",
        needs_data=needs_data,
    )


@pytest.fixture
def checks(monkeypatch):
    monkeypatch.setattr(registry, "_PROVIDERS", ())
    monkeypatch.setattr(registry, "_CHECKS", {})
    for check in (toy("a"), toy("slow", default=False), toy("real", needs_data=True)):
        registry.register(check)


def names(selected) -> list[str]:
    return [c.name for c in selected]


def test_default_run_skips_non_default_and_real_data_checks_saying_why(checks):
    run, skipped = registry.select(None)
    assert names(run) == ["a"]
    assert dict(skipped) == {
        "slow": "slow",
        "real": "real data: pass --data DIR or set POLYMODAL_DATA",
    }


def test_quick_runs_every_check_and_data_adds_the_real_data_ones(checks):
    assert names(registry.select(None, every=True)[0]) == ["a", "slow"]
    run, skipped = registry.select(None, every=True, data=True)
    assert names(run) == ["a", "slow", "real"] and skipped == []
    assert names(registry.select(None, data=True)[0]) == ["a", "real"]


def test_naming_a_real_data_check_without_data_says_how_to_give_it(checks):
    with pytest.raises(ConfigError, match="real data: pass --data DIR"):
        registry.select("a,real")
    assert names(registry.select("real,slow", data=True)[0]) == ["real", "slow"]


def test_a_name_registers_once(checks):
    with pytest.raises(ValueError, match="already registered"):
        registry.register(toy("a"))
