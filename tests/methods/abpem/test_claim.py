import numpy as np
import pytest

from polymodal.bench.verdict import decide
from polymodal.methods.abpem.claim import COMPARED, criterion_parts

N = 200  # items per stream
STREAMS = {"audio": 2, "image": 3}


def hits(accuracies: dict[str, float]) -> dict[str, dict[str, list[np.ndarray]]]:
    """Every method right on a nested prefix of each stream's items (so differences are
    one-signed item by item)."""
    return {
        method: {
            m: [(np.arange(N) < acc * N).astype(float) for _ in range(n)]
            for m, n in STREAMS.items()
        }
        for method, acc in accuracies.items()
    }


def rising_gaps(slope: float = 1.0) -> dict[str, np.ndarray]:
    """(seeds 2, corruptions 3, severities 6, samples 50) gaps rising with severity."""
    rng = np.random.default_rng(0)
    severity = np.arange(6)[None, None, :, None]
    return {m: slope * severity + rng.normal(0, 0.5, (2, 3, 6, 50)) for m in STREAMS}


ORDERED = {"abpem": 0.8, "read": 0.6, "tent": 0.4, "none": 0.2}


def names(parts):
    return [p.name for p in parts]


def test_the_criterion_holds_when_every_difference_and_the_gap_trend_are_clear():
    parts = criterion_parts(hits(ORDERED), rising_gaps(), resamples=200)
    assert len(parts) == len(COMPARED) + 2 * len(STREAMS)
    assert parts[0].estimate == pytest.approx(0.2)
    assert decide(parts) == "holds"


def test_the_criterion_does_not_hold_when_read_beats_abpem_clearly():
    parts = criterion_parts(hits({**ORDERED, "abpem": 0.5}), rising_gaps(), resamples=200)
    assert parts[0].name == "ABPEM − READ accuracy" and parts[0].high < 0
    assert decide(parts) == "does not hold"


def test_the_criterion_is_inconclusive_when_abpem_and_read_tie():
    parts = criterion_parts(hits({**ORDERED, "abpem": 0.6}), rising_gaps(), resamples=200)
    assert parts[0].verdict == "inconclusive"
    assert all(p.verdict == "holds" for p in parts[1:])
    assert decide(parts) == "inconclusive"


def test_a_falling_gap_fails_its_parts():
    parts = criterion_parts(hits(ORDERED), rising_gaps(slope=-1.0), resamples=200)
    gap_parts = [p for p in parts if "gap" in p.name]
    assert [p.verdict for p in gap_parts] == ["does not hold"] * 4


def test_the_accuracy_parts_average_the_two_modalities_not_the_streams():
    accuracies = hits({"abpem": 0.5, "read": 0.5, "tent": 0.5, "none": 0.5})
    accuracies["abpem"]["audio"] = [np.ones(N)] * STREAMS["audio"]  # +0.5 on audio only
    parts = criterion_parts(accuracies, rising_gaps(), resamples=50)
    assert parts[0].estimate == pytest.approx(0.25)  # not 0.5 * 2 / 5 streams


def test_the_av_mnist_check_needs_data_and_shares_the_criterion():
    from polymodal.bench import registry

    checks = registry.all_checks()
    check = checks["abpem_av_mnist"]
    assert check.needs_data and not check.default
    assert check.criterion == checks["abpem"].criterion
    assert "min" in check.skip_reason and "--only abpem_av_mnist" in check.skip_reason
    _, skipped = registry.select(None)
    assert "--data" in dict(skipped)["abpem_av_mnist"]
    run, skipped = registry.select(None, data=True)
    assert dict(skipped)["abpem_av_mnist"] == check.skip_reason
    assert "abpem_av_mnist" not in [c.name for c in run]
