"""Text bias of vision-language models (Words or Vision, arXiv 2503.02199).

When the text beside a question contradicts the image, does a VLM answer from
the text or from the image? The probe asks each item image-only, text-only and
image+text with a matching, a corrupted and an irrelevant text, and reports
accuracy per condition and the text preference ratio TPR.

Example::

    from polymodal.analysis.text_bias import SmallVLMAdapter, probe_items, run_probe
    from polymodal.data.synth.shapes_text import ShapesTexts

    items = probe_items(test, ShapesTexts(test, seed=0), range(1000))
    result = run_probe(SmallVLMAdapter(vlm), items, position="before")
    result.counts("corrupted")     # FollowCounts(text=.., image=.., same=.., neither=..)
    result.tpr("corrupted")        # text / (text + image)

Training data with texts: :class:`TextAugmentedVQA` with the ``trusting`` or
``sft`` mixtures (:mod:`.data`). Command line: ``polymodal analyze text-bias
CHECKPOINT`` (:mod:`.cli`).

The names below load on first use, so the command line can import the parser
without importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from polymodal.analysis.text_bias.conditions import (
        IMAGE_ONLY,
        PROBE_CONDITIONS,
        Condition,
    )
    from polymodal.analysis.text_bias.data import MIXTURES, TextAugmentedVQA, parse_mixture
    from polymodal.analysis.text_bias.metrics import (
        FollowCounts,
        TextBiasResult,
        accuracy,
        follow_counts,
        normalize_answer,
    )
    from polymodal.analysis.text_bias.probe import (
        LlavaAdapter,
        ProbeItem,
        Query,
        SmallVLMAdapter,
        VQAAdapter,
        probe_items,
        run_probe,
    )

_EXPORTS = {
    "IMAGE_ONLY": "conditions",
    "PROBE_CONDITIONS": "conditions",
    "Condition": "conditions",
    "MIXTURES": "data",
    "TextAugmentedVQA": "data",
    "parse_mixture": "data",
    "FollowCounts": "metrics",
    "TextBiasResult": "metrics",
    "accuracy": "metrics",
    "follow_counts": "metrics",
    "normalize_answer": "metrics",
    "LlavaAdapter": "probe",
    "ProbeItem": "probe",
    "Query": "probe",
    "SmallVLMAdapter": "probe",
    "VQAAdapter": "probe",
    "probe_items": "probe",
    "run_probe": "probe",
}

__all__ = [
    "Condition",
    "FollowCounts",
    "IMAGE_ONLY",
    "LlavaAdapter",
    "MIXTURES",
    "PROBE_CONDITIONS",
    "ProbeItem",
    "Query",
    "SmallVLMAdapter",
    "TextAugmentedVQA",
    "TextBiasResult",
    "VQAAdapter",
    "accuracy",
    "follow_counts",
    "normalize_answer",
    "parse_mixture",
    "probe_items",
    "run_probe",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
