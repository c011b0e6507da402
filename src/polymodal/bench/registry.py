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
    "polymodal.methods.fratmae.claim",
    "polymodal.methods.abn_blip.claim",
    "polymodal.methods.av_ssl.claim",
    "polymodal.methods.taste_music.claim",
    "polymodal.methods.bit_align.claim",
    "polymodal.methods.nexus_o.claim",
    "polymodal.methods.ret.claim",
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

    def report_order(check: ClaimCheck) -> int:
        # Tests may import a provider early; the report keeps the providers' order.
        module = getattr(check.run, "__module__", "")
        return _PROVIDERS.index(module) if module in _PROVIDERS else len(_PROVIDERS)

    return {check.name: check for check in sorted(_CHECKS.values(), key=report_order)}


def select(
    names: str | None, every: bool = False, data: bool = False
) -> tuple[list[ClaimCheck], list[tuple[str, str]]]:
    """The checks to run and ``(name, reason)`` of the registered ones left out.

    Args:
        names: a comma-separated list of check names; None or empty picks the
            default checks (every check when ``every``).
        every: run the non-default checks too (``--quick``).
        data: a real-data folder was given; without it real-data checks are skipped.

    Raises:
        ConfigError: a name that is not registered (the message lists the valid ones),
            or a real-data check named without a data folder.
    """
    checks = all_checks()
    if names:
        wanted = [n.strip() for n in names.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in checks]
        if unknown:
            raise ConfigError(
                f"unknown claim check(s) {', '.join(unknown)}; available: {', '.join(checks)}"
            )
        needy = [n for n in wanted if checks[n].needs_data and not data]
        if needy:
            raise ConfigError(
                f"{', '.join(needy)} run(s) on real data: pass --data DIR (a folder with "
                "fsdd/recordings and mnist-t10k/) or set POLYMODAL_DATA"
            )
        return [checks[n] for n in wanted], []
    run, skipped = [], []
    for check in checks.values():
        if check.needs_data and not data:
            skipped.append((check.name, "real data: pass --data DIR or set POLYMODAL_DATA"))
        elif check.default or every:
            run.append(check)
        else:
            skipped.append((check.name, check.skip_reason))
    return run, skipped
