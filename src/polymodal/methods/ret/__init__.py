"""ReT: recurrence-enhanced multimodal retrieval (arXiv 2503.01980).

Library: :class:`RecurrentCell`, :class:`ReTEncoder`, :func:`late_interaction`,
:func:`contrastive_loss`; frozen backbones tapped at every layer
(:mod:`polymodal.methods.ret.backbones`); serving: :class:`TokenIndex` (faiss
candidates, exact re-scoring) and :func:`save_searcher`/:func:`load_searcher`
(``polymodal retrieve``); data: :mod:`polymodal.data.synth.shapes_retrieval`.
"""

from polymodal.methods.ret.cell import CellGates, RecurrentCell
from polymodal.methods.ret.index import IndexSettings, TokenIndex, exact_search, load_index
from polymodal.methods.ret.model import (
    BackboneTokens,
    PooledEncoder,
    ReTEncoder,
    Retriever,
    contrastive_loss,
    late_interaction,
)

__all__ = [
    "BackboneTokens",
    "CellGates",
    "IndexSettings",
    "PooledEncoder",
    "ReTEncoder",
    "RecurrentCell",
    "Retriever",
    "TokenIndex",
    "contrastive_loss",
    "exact_search",
    "late_interaction",
    "load_index",
]
