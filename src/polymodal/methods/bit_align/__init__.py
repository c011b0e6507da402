"""BiT-Align (arXiv 2503.02600): depth as bypass prompts into a frozen ViT, Text Feature
Guidance, weakly supervised affordance grounding."""

from polymodal.methods.bit_align.backbone import Backbone, HuggingFaceViT, OurViT, as_backbone
from polymodal.methods.bit_align.model import (
    VARIANTS,
    AffordanceHead,
    BiTAlign,
    GroundingOutput,
    build_bit_align,
    parameter_counts,
)
from polymodal.methods.bit_align.prompts import BypassPrompt, BypassPrompts
from polymodal.methods.bit_align.text import AffordanceTexts
from polymodal.methods.bit_align.tfg import TextFeatureGuidance
from polymodal.train.tasks.grounding_metrics import KLD, NSS, SIM

__all__ = [
    "KLD",
    "NSS",
    "SIM",
    "VARIANTS",
    "AffordanceHead",
    "AffordanceTexts",
    "Backbone",
    "BiTAlign",
    "BypassPrompt",
    "BypassPrompts",
    "GroundingOutput",
    "HuggingFaceViT",
    "OurViT",
    "TextFeatureGuidance",
    "as_backbone",
    "build_bit_align",
    "parameter_counts",
]
