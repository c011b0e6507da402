"""``polymodal bench --list``: every registered check, whether it runs by default, and its cost."""

from __future__ import annotations

from collections.abc import Iterable

from polymodal.bench.claims import ClaimCheck
from polymodal.bench.costs import costs


def seconds_cell(seconds: float | None) -> str:
    """A measured cost for the list: whole seconds grouped by thousands, ``?`` if unmeasured."""
    return "?" if seconds is None else f"{seconds:,.0f}"


def check_list(checks: Iterable[ClaimCheck]) -> str:
    """One line per check: name, default or not, real data or not, measured seconds
    at full size on CPU and GPU, and why a non-default check is left out.

    Args:
        checks: the registered checks, in report order.

    Returns:
        The table, then a line saying what the columns mean.
    """
    lines = [f"{'check':<17}{'default':<9}{'real data':<11}{'CPU s':>7}{'GPU s':>7}  not default"]
    for check in checks:
        cost = costs(check)
        lines.append(
            f"{check.name:<17}{'yes' if check.default else 'no':<9}"
            f"{'yes' if check.needs_data else 'no':<11}"
            f"{seconds_cell(cost.get('cpu')):>7}{seconds_cell(cost.get('cuda')):>7}"
            + (f"  {check.skip_reason}" if not check.default else "")
        )
    lines.append(
        "seconds: last measured full-size run (CPU: 2 cores; ? not measured yet). "
        "Real-data checks run only with --data DIR; --all runs every check at full size."
    )
    return "\n".join(lines)
