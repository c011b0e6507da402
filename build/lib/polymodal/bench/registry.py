"""The registry of claim checks that ``polymodal bench`` runs."""

from __future__ import annotations

import importlib

from polymodal.bench.claims import ClaimCheck
from polymodal.errors import ConfigError

_CHECKS: dict[str, ClaimCheck] = {}

# Modules that register checks on import, in report order.
_PROVIDERS = (
    "polymodal.bench.fusion",
    "polymodal.methods.divprune.claim",
    "polymodal.methods.aki.claim",
    "polymodal.analysis.text_bias.claim",
    "polymodal.methods.subtype_fusion.claim",
    "polymodal.analysis.contribution.claim",
    "polymodal.methods.abpem.claim",
)


def register(check: ClaimCheck) -> ClaimCheck:
    """Add a check; names are unique."""
    if check.name in _CHECKS:
        raise ValueError(f"claim check {check.name!r} is already registered")
    _CHECKS[check.name] = check
    return check


def all_checks() -> dict[str, ClaimCheck]:
    """Every registered check by name, importing the modules that define them."""
    for module in _PROVIDERS:
        importlib.import_module(module)
    return dict(_CHECKS)


def select(names: str | None) -> list[ClaimCheck]:
    """The checks named in a comma-separated list (the default ones when None).

    Raises:
        ConfigError: a name that is not registered (the message lists the valid ones).
    """
    checks = all_checks()
    if not names:
        return [check for check in checks.values() if check.default]
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in checks]
    if unknown:
        raise ConfigError(
            f"unknown claim check(s) {', '.join(unknown)}; available: {', '.join(checks)}"
        )
    return [checks[n] for n in wanted]
