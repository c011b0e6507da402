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
``sft`` mixtures (:mod:`polymodal.data.synth.shapes_text_vqa`, re-exported here,
as are the conditions). Command line: ``polymodal analyze text-bias CHECKPOINT``
(:mod:`polymodal.cli.analyze`).

The names below load on first use, so the command line can import the parser
without importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polymodal.lazy import lazy_exports

if TYPE_CHECKING:
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
    from polymodal.data.synth.shapes_text_vqa import (
        IMAGE_ONLY,
        MIXTURES,
        PROBE_CONDITIONS,
        Condition,
        TextAugmentedVQA,
        parse_mixture,
    )

_EXPORTS = {
    "FollowCounts": ".metrics",
    "TextBiasResult": ".metrics",
    "accuracy": ".metrics",
    "follow_counts": ".metrics",
    "normalize_answer": ".metrics",
    "LlavaAdapter": ".probe",
    "ProbeItem": ".probe",
    "Query": ".probe",
    "SmallVLMAdapter": ".probe",
    "VQAAdapter": ".probe",
    "probe_items": ".probe",
    "run_probe": ".probe",
    "IMAGE_ONLY": "polymodal.data.synth.shapes_text_vqa",
    "MIXTURES": "polymodal.data.synth.shapes_text_vqa",
    "PROBE_CONDITIONS": "polymodal.data.synth.shapes_text_vqa",
    "Condition": "polymodal.data.synth.shapes_text_vqa",
    "TextAugmentedVQA": "polymodal.data.synth.shapes_text_vqa",
    "parse_mixture": "polymodal.data.synth.shapes_text_vqa",
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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
