"""Histopathology + gene-expression subtype fusion (arXiv 2503.02849).

Library: :class:`SubtypeFusionModel` and :func:`build_subtype_model`; recipe:
``polymodal cv configs/subtype_fusion.yaml --folds 5``; claim check
``subtype_fusion`` in :mod:`polymodal.methods.subtype_fusion.claim`.
"""

from polymodal.methods.subtype_fusion.model import (
    FUSIONS,
    AttentionPool,
    GeneEncoder,
    SubtypeFusionModel,
    SubtypeOutput,
    TileEncoder,
    build_subtype_model,
    tile_mask,
)

__all__ = [
    "FUSIONS",
    "AttentionPool",
    "GeneEncoder",
    "SubtypeFusionModel",
    "SubtypeOutput",
    "TileEncoder",
    "build_subtype_model",
    "tile_mask",
]
