"""Modality contribution by occlusion (arXiv 2503.01904) for any model of a batch dict.

Example::

    from polymodal.analysis.contribution import Chunks, Patches, modality_contribution

    result = modality_contribution(
        model, batch, {"image": Patches(4), "audio": Chunks(count=16)}, fill="mean"
    )
    result.m              # {"image": 0.62, "audio": 0.38}, pooled m_i
    result.m_per_sample   # the per-sample-normalised variant
    result.importance_map("image")   # (7, 7) mean |Δp| per patch

Command line: ``polymodal analyze contribution RUN_DIR``
(:mod:`polymodal.cli.analyze`); claim check ``contribution`` in
:mod:`polymodal.analysis.contribution.claim`.

The names below load on first use, so the command line can import the parser
without importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polymodal.lazy import lazy_exports

if TYPE_CHECKING:
    from polymodal.analysis.contribution.measure import (
        ContributionResult,
        modality_contribution,
    )
    from polymodal.analysis.contribution.units import (
        Chunks,
        FillValue,
        Groups,
        Patches,
        Tiles,
        Units,
        Whole,
        default_units,
        parse_units,
    )

_EXPORTS = {
    "ContributionResult": ".measure",
    "modality_contribution": ".measure",
    "Chunks": ".units",
    "FillValue": ".units",
    "Groups": ".units",
    "Patches": ".units",
    "Tiles": ".units",
    "Units": ".units",
    "Whole": ".units",
    "default_units": ".units",
    "parse_units": ".units",
}

__all__ = [
    "Chunks",
    "ContributionResult",
    "FillValue",
    "Groups",
    "Patches",
    "Tiles",
    "Units",
    "Whole",
    "default_units",
    "modality_contribution",
    "parse_units",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
