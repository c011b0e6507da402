import pytest

from polymodal.plots import bar_chart, pyplot, y_limits


def test_proportions_stay_inside_zero_one():
    # runs 0.5..0.9, mean ± std 0.85 ± 0.05 and 0.6 ± 0.1: span 0.4, pad 0.04
    assert y_limits({"a": [0.8, 0.9], "b": [0.5, 0.7]}) == pytest.approx((0.46, 0.94))
    # near the ends the padding is clamped: 0.95 ± 0.05 would reach 1.0 + 0.01
    assert y_limits({"a": [0.9, 1.0]}) == pytest.approx((0.89, 1.0))


def test_values_above_one_or_below_zero_are_not_clamped():
    # seconds 2 and 4: mean 3 ± 1 spans [2, 4], pad 0.2
    assert y_limits({"seconds": [2.0, 4.0]}) == pytest.approx((1.8, 4.2))
    # an effect of −1 or +1: span 2, pad 0.2
    assert y_limits({"effect": [-1.0, 1.0]}) == pytest.approx((-1.2, 1.2))
    # one flat value still gets room: ±0.1
    assert y_limits({"loss": [5.0]}) == pytest.approx((4.9, 5.1))


def test_the_bar_chart_shows_large_values_and_the_direction(tmp_path, monkeypatch):
    plt = pyplot()
    seen = {}
    monkeypatch.setattr(plt, "close", lambda fig: seen.update(ax=fig.axes[0]))
    path = bar_chart({"ours": [120.0, 140.0]}, tmp_path / "s.png", "cost", "seconds", (), False)
    assert path.is_file()
    assert seen["ax"].get_ylim() == pytest.approx((118.0, 142.0))
    assert seen["ax"].get_ylabel() == "seconds ↓ (lower is better)"
