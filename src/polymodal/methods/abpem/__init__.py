"""ABPEM (arXiv 2503.02221): multimodal test-time adaptation by attention bootstrapping.

Example::

    from polymodal.methods.abpem import ABPEM, TestTimeAdapter

    adapter = TestTimeAdapter(model, ABPEM())   # adapts the fusion layer's q/k/v
    for batch in test_batches:                  # unlabeled, one modality may be corrupted
        logits = adapter.step(batch).logits     # predictions after the online update
    adapter.reset()                             # back to the source model, bit for bit

Parts:

- :mod:`.model` — a CAV-MAE-style audio-visual model (modality encoders, one shared
  fusion layer exposing its pre-softmax attention) and its config builder;
- :mod:`.gap` — the attention gap and the attention-bootstrapping loss;
- :mod:`.methods` — none, Tent, READ and ABPEM objectives;
- :mod:`.adapt` — :class:`TestTimeAdapter` (the model interface it needs is in its
  module doc);
- :mod:`.experiment` — test streams and the cached source models (AV-Digits, AV-MNIST).

Corrupted data: :mod:`polymodal.data.corrupt`. Command line: ``polymodal adapt``
(:mod:`polymodal.cli.adapt`); claim checks ``abpem`` and ``abpem_av_mnist`` in :mod:`.claim`.

The names below load on first use, so the command line can import the parser
without importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polymodal.lazy import lazy_exports

if TYPE_CHECKING:
    from polymodal.methods.abpem.adapt import AdaptStep, TestTimeAdapter, select_parameters
    from polymodal.methods.abpem.gap import attention_gap, bootstrapping_loss, gaussian_kl
    from polymodal.methods.abpem.methods import (
        ABPEM,
        METHODS,
        READ,
        Method,
        NoAdaptation,
        Tent,
        make_method,
    )
    from polymodal.methods.abpem.model import (
        AVFusionOutput,
        AVFusionTransformer,
        FusionTokens,
        build_av_fusion_transformer,
    )

_EXPORTS = {
    "AdaptStep": ".adapt",
    "TestTimeAdapter": ".adapt",
    "select_parameters": ".adapt",
    "attention_gap": ".gap",
    "bootstrapping_loss": ".gap",
    "gaussian_kl": ".gap",
    "ABPEM": ".methods",
    "METHODS": ".methods",
    "READ": ".methods",
    "Method": ".methods",
    "NoAdaptation": ".methods",
    "Tent": ".methods",
    "make_method": ".methods",
    "AVFusionTransformer": ".model",
    "AVFusionOutput": ".model",
    "FusionTokens": ".model",
    "build_av_fusion_transformer": ".model",
}

__all__ = [
    "ABPEM",
    "AVFusionTransformer",
    "AdaptStep",
    "AVFusionOutput",
    "FusionTokens",
    "METHODS",
    "Method",
    "NoAdaptation",
    "READ",
    "Tent",
    "TestTimeAdapter",
    "attention_gap",
    "bootstrapping_loss",
    "build_av_fusion_transformer",
    "gaussian_kl",
    "make_method",
    "select_parameters",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
